package sched

func init() { Register("wlc", func(Flags) Scheduler { return &weightedLeastConn{} }) }

// weightedLeastConn is IPVS's wlc: the available destination with the least
// (active*256 + inactive)/weight. Loads are compared by cross-multiplication,
// loh*w > doh*lw, so there is no division; the first minimum in list order
// wins.
type weightedLeastConn struct{ list destList }

func (s *weightedLeastConn) Update(dests []*Dest) { s.list.store(dests) }

func (s *weightedLeastConn) Pick(*Key) *Dest { return pickWeightedLeastConn(s.list.load()) }
