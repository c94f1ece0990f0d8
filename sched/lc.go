package sched

func init() { Register("lc", func(Flags) Scheduler { return &leastConn{} }) }

// leastConn is IPVS's lc: the available destination with the least
// overhead, active*256 + inactive (ip_vs_dest_conn_overhead), ignoring
// weights other than 0. The first minimum in list order wins.
type leastConn struct{ list destList }

func (s *leastConn) Update(dests []*Dest) { s.list.store(dests) }

func (s *leastConn) Pick(*Key) *Dest {
	var least *Dest
	var loh int64
	for _, d := range s.list.load() {
		if d.Weight() <= 0 || d.Overloaded() {
			continue
		}
		if doh := connOverhead(d); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
