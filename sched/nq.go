package sched

func init() { Register("nq", func(Flags) Scheduler { return &neverQueue{} }) }

// neverQueue is IPVS's nq: the first available destination with no active
// connection, in list order; when every one is busy, the sed choice
// (least (active+1)/weight, first minimum wins).
type neverQueue struct{ list destList }

func (s *neverQueue) Update(dests []*Dest) { s.list.store(dests) }

func (s *neverQueue) Pick(*Key) *Dest {
	var least *Dest
	var loh, lw int64
	for _, d := range s.list.load() {
		w := int64(d.Weight())
		if w <= 0 || d.Overloaded() {
			continue
		}
		active := d.ActiveConns()
		if active == 0 {
			return d // idle: no queue to wait in
		}
		doh := active + 1
		if least == nil || loh*w > doh*lw {
			least, loh, lw = d, doh, w
		}
	}
	return least
}
