package dataplane

import "time"

// sweepStep is how often a worker takes the next slice of a periodic
// sweep (tableSweep) at most.
const sweepStep = 10 * time.Millisecond

// tableSweep visits every slot of a worker's connection table once per
// period, a slice at a time as the loop runs, for the periodic work over
// all connections (the mirror's and the sync's refresh). A whole walk
// holds the worker for tens of milliseconds at a million connections, in
// which its receive rings would overflow; a slice every sweepStep holds it
// for a thousandth of that at most per period of 10 s.
type tableSweep struct {
	next int   // the slot the next slice starts at
	last int64 // when the last slice was taken (nanotime); 0: never
}

// due returns how many slots the sweep owes since its last slice, at the
// rate of size slots per period (the whole table at the first call), and
// 0 within sweepStep of it.
func (s *tableSweep) due(now int64, period time.Duration, size int) int {
	el := now - s.last
	if s.last != 0 && el < int64(sweepStep) {
		return 0
	}
	s.last = now
	if el >= int64(period) {
		return size
	}
	return int((int64(size)*el + int64(period) - 1) / int64(period))
}
