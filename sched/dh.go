package sched

import "sync/atomic"

func init() { Register("dh", func(Flags) Scheduler { return &destinationHash{} }) }

// destinationHash is IPVS's dh: the connection's destination address (the
// VIP, or with a firewall-mark service the address the client asked for)
// hashed onto a 256-bucket table, so that one origin address always goes to
// the same cache server. An unavailable server makes its keys unschedulable;
// dh has no fallback flag.
//
// The bucket is the kernel's (fold(addr) * 2654435761) mod 256. Unlike the
// kernel, which gives every destination one bucket in turn whatever its
// weight, the table is filled by weight as sh's is, so weights steer dh too;
// with equal weights of 1 the two tables are the same.
type destinationHash struct {
	state atomic.Pointer[bucketState]
}

func (s *destinationHash) Update(dests []*Dest) {
	next := compactDests(dests)
	s.state.Store(&bucketState{dests: next, table: fillBuckets(next)})
}

func (s *destinationHash) Pick(k *Key) *Dest {
	st := s.state.Load()
	if st == nil {
		return nil
	}
	k = keyOrZero(k)
	b := fold32(&k.Dst) * 2654435761
	return lookupBuckets(st.table, b, false, st.dests)
}
