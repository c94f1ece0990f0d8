package sched

import "sync"

func init() { Register("wrr", func(Flags) Scheduler { return &weightedRoundRobin{cl: -1} }) }

// weightedRoundRobin is IPVS's wrr. Passes over the list pick every available
// destination whose weight is at least the current weight cw; after each pass
// cw drops by di, the gcd of the weights, and when it falls to 0 or below it
// starts again from mw. mw is the maximum weight less (di-1), so that the last
// pass runs with cw = 1 and still catches a destination whose weight was cut
// below di since the last Update. Weights 4,3,2 thus give A A B A B C A B C.
//
// The position (cl, cw) is shared state; Pick serialises on a mutex exactly
// where the kernel takes its sched_lock.
type weightedRoundRobin struct {
	mu    sync.Mutex
	dests []*Dest
	cl    int // index of the last pick; -1 is the list head
	cw    int // current weight
	mw    int // maximum weight - (di - 1)
	di    int // decreasing interval: gcd of the positive weights
}

func (s *weightedRoundRobin) Update(dests []*Dest) {
	next := compactDests(dests)
	g, maxW := 0, 0
	for _, d := range next {
		w := d.Weight()
		if w > 0 {
			g = gcd(w, g)
		}
		if w > maxW {
			maxW = w
		}
	}
	if g == 0 {
		g = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// As ip_vs_wrr_dest_changed: restart from the head, keep cw where it
	// still makes sense, realigned on the new step.
	s.dests = next
	s.cl = -1
	s.di = g
	s.mw = maxW - (g - 1)
	if s.cw > s.mw || s.cw == 0 {
		s.cw = s.mw
	} else if s.di > 1 {
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

func (s *weightedRoundRobin) Pick(*Key) *Dest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mw <= 0 {
		return nil // no positive weight at the last Update
	}
	n := len(s.dests)
	last := s.cl
	stop := -2 // index that ends the search once reached; none yet
	lastPass, restarted := false, false
	i := s.cl
	// Terminates: every outer round lowers cw by di >= 1; the second time cw
	// runs out, or one full pass after the last pass has begun, it stops.
	for {
		for i++; i < n; i++ {
			d := s.dests[i]
			if !d.Overloaded() && d.Weight() >= s.cw {
				s.cl = i
				return d
			}
			if i == stop {
				s.cl = i
				return nil
			}
		}
		i = -1 // the next pass starts at the head
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// Done if a pass with cw <= di already covered every
			// destination, or if this search began at the head.
			if lastPass || last == -1 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			// The first low pass only covered what followed last;
			// cover the rest, up to and including last.
			stop = last
		}
	}
}
