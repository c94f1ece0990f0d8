package sched

import "sync/atomic"

func init() { Register("sh", func(f Flags) Scheduler { return &sourceHash{flags: f} }) }

// sourceHash is IPVS's sh: the client address (plus its port with sh-port)
// hashed onto a 256-bucket table filled in list order by weight. The same
// client keeps the same server for as long as the table does not change. An
// unavailable server makes its clients unschedulable unless sh-fallback is
// set, which then walks the table to the next available one.
//
// The hash is the kernel's, hash_32(port + fold(addr), 8), so for IPv4 an sh
// table built from the same list maps clients exactly as IPVS does.
type sourceHash struct {
	flags Flags
	state atomic.Pointer[bucketState]
}

// bucketState is an immutable table with the list it was built from.
type bucketState struct {
	dests []*Dest
	table *bucketTable
}

func (s *sourceHash) Update(dests []*Dest) {
	next := compactDests(dests)
	s.state.Store(&bucketState{dests: next, table: fillBuckets(next)})
}

func (s *sourceHash) Pick(k *Key) *Dest {
	st := s.state.Load()
	if st == nil {
		return nil
	}
	k = keyOrZero(k)
	var port uint32
	if s.flags&FlagPort != 0 {
		port = uint32(k.SrcPort)
	}
	b := hash32(port+fold32(&k.Src), bucketTabBits)
	return lookupBuckets(st.table, b, s.flags&FlagFallback != 0, st.dests)
}
