package sched

func init() { Register("ovf", func(Flags) Scheduler { return &overflow{} }) }

// overflow is IPVS's ovf: the highest-weight available destination whose
// active connections do not exceed its weight (the kernel skips a server only
// when active > weight, so it takes weight+1 active connections before
// overflowing to the next); on a tie the first in list order.
type overflow struct{ list destList }

func (s *overflow) Update(dests []*Dest) { s.list.store(dests) }

func (s *overflow) Pick(*Key) *Dest {
	var best *Dest
	hw := 0
	for _, d := range s.list.load() {
		w := d.Weight()
		if w <= 0 || d.Overloaded() || d.ActiveConns() > int64(w) {
			continue
		}
		if best == nil || w > hw {
			best, hw = d, w
		}
	}
	return best
}
