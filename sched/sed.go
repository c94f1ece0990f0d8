package sched

func init() { Register("sed", func(Flags) Scheduler { return &shortestExpectedDelay{} }) }

// shortestExpectedDelay is IPVS's sed: the available destination with the
// least (active+1)/weight, the delay the new connection would see there.
// Inactive connections do not count. The first minimum in list order wins.
type shortestExpectedDelay struct{ list destList }

func (s *shortestExpectedDelay) Update(dests []*Dest) { s.list.store(dests) }

func (s *shortestExpectedDelay) Pick(*Key) *Dest {
	var least *Dest
	var loh, lw int64
	for _, d := range s.list.load() {
		w := int64(d.Weight())
		if w <= 0 || d.Overloaded() {
			continue
		}
		doh := d.ActiveConns() + 1
		if least == nil || loh*w > doh*lw {
			least, loh, lw = d, doh, w
		}
	}
	return least
}
