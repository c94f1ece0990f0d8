package sched

import "math/rand/v2"

func init() { Register("twos", func(Flags) Scheduler { return &powerOfTwo{} }) }

// powerOfTwo is IPVS's twos: draw two destinations at random, each with
// probability proportional to its weight, and keep the one with the lower
// overhead/weight (the first draw on a tie). The draws come from
// math/rand/v2's global source, which is safe for concurrent use and does not
// allocate. As in the kernel, a draw is uniform over [0, total weight], so the
// first available destination gets one extra chance in total+1.
type powerOfTwo struct{ list destList }

func (s *powerOfTwo) Update(dests []*Dest) { s.list.store(dests) }

func (s *powerOfTwo) Pick(*Key) *Dest {
	dests := s.list.load()
	var total int64
	var fallback *Dest
	for _, d := range dests {
		if w := d.Weight(); w > 0 && !d.Overloaded() {
			total += int64(w)
			fallback = d
		}
	}
	if fallback == nil {
		return nil
	}
	r1 := int64(rand.Uint64N(uint64(total + 1)))
	r2 := int64(rand.Uint64N(uint64(total + 1)))

	var choice1, choice2 *Dest
	var w1, w2, oh1, oh2 int64
	for _, d := range dests {
		w := int64(d.Weight())
		if w <= 0 || d.Overloaded() {
			continue
		}
		r1 -= w
		r2 -= w
		if r1 <= 0 && choice1 == nil {
			choice1, w1, oh1 = d, w, connOverhead(d)
		}
		if r2 <= 0 && choice2 == nil {
			choice2, w2, oh2 = d, w, connOverhead(d)
		}
		if choice1 != nil && choice2 != nil {
			break
		}
	}
	switch {
	case choice1 == nil && choice2 == nil:
		// Weights changed between the two walks; keep the kernel's
		// fallback, the last destination that was available.
		return fallback
	case choice1 == nil:
		return choice2
	case choice2 != nil && w2*oh1 > w1*oh2:
		return choice2
	}
	return choice1
}
