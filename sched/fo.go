package sched

func init() { Register("fo", func(Flags) Scheduler { return &weightedFailover{} }) }

// weightedFailover is IPVS's fo: every new connection goes to the available
// destination with the highest weight; on a tie the first in list order.
// Lowering a server's weight below another's fails traffic over to it.
type weightedFailover struct{ list destList }

func (s *weightedFailover) Update(dests []*Dest) { s.list.store(dests) }

func (s *weightedFailover) Pick(*Key) *Dest {
	var best *Dest
	hw := 0
	for _, d := range s.list.load() {
		// Weight first: only a new leader needs its overload flag read.
		if w := d.Weight(); w > hw && !d.Overloaded() {
			best, hw = d, w
		}
	}
	return best
}
