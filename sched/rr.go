package sched

import "sync"

func init() { Register("rr", func(Flags) Scheduler { return &roundRobin{last: -1} }) }

// roundRobin is IPVS's rr: starting after the last destination picked, the
// next available one in list order. The position is shared state, so Pick
// serialises on a mutex exactly where the kernel takes its sched_lock.
type roundRobin struct {
	mu    sync.Mutex
	dests []*Dest
	// last is the index of the last pick; -1 is the list head, from which
	// the walk starts at the first destination.
	last int
}

func (s *roundRobin) Update(dests []*Dest) {
	next := compactDests(dests)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = carryPosition(s.dests, next, s.last)
	s.dests = next
}

// carryPosition maps the last-pick index across an Update. If the last pick
// survives, the walk goes on after it. If it was removed, IPVS steps the
// position back to its predecessor, so the walk goes on with the server that
// followed it; with the list otherwise unchanged, that is the one now at the
// removed server's index.
func carryPosition(old, next []*Dest, last int) int {
	if last < 0 || last >= len(old) {
		return -1
	}
	for i, d := range next {
		if d == old[last] {
			return i
		}
	}
	if last > len(next) {
		last = len(next)
	}
	return last - 1
}

func (s *roundRobin) Pick(*Key) *Dest {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.dests)
	// One full lap at most, ending with the last pick itself: after the
	// head that is every destination once.
	for step := 1; step <= n; step++ {
		i := (s.last + step) % n
		if d := s.dests[i]; d.Available() {
			s.last = i
			return d
		}
	}
	return nil
}
