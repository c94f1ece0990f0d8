package sched

import (
	"math"
	"testing"
)

// shareWithin fails unless every destination's share of picks is within tol
// (absolute) of want[i].
func shareWithin(t *testing.T, what string, got map[int]int, total int, want []float64, tol float64) {
	t.Helper()
	for i, w := range want {
		share := float64(got[i]) / float64(total)
		if math.Abs(share-w) > tol {
			t.Errorf("%s: server %c share %.4f, want %.4f ± %.3f (counts %v)", what, 'A'+i, share, w, tol, got)
		}
	}
}

func weightShares(weights ...int) []float64 {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	out := make([]float64, len(weights))
	for i, w := range weights {
		out[i] = float64(w) / float64(sum)
	}
	return out
}

func TestWRRConvergesExactly(t *testing.T) {
	weights := []int{5, 3, 2, 7, 1}
	d := mkDests(weights...)
	s := newSched(t, "wrr", 0, d)
	counts := map[*Dest]int{}
	for i := 0; i < 18*100; i++ { // 100 full cycles of sum(weights)
		counts[s.Pick(nil)]++
	}
	for i, w := range weights {
		if counts[d[i]] != 100*w {
			t.Errorf("server %c: %d picks, want %d", 'A'+i, counts[d[i]], 100*w)
		}
	}
}

// TestWLCWithCountsFollowsWeights: each pick opens an active connection, as
// the data path does; wlc then keeps active/weight level.
func TestWLCWithCountsFollowsWeights(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	for _, name := range []string{"wlc", "sed", "lblc"} {
		d := mkDests(weights...)
		s := newSched(t, name, 0, d)
		for i := 0; i < 1000; i++ {
			// lblc: every pick a new destination address, so it is wlc.
			p := s.Pick(&Key{Dst: testAddr(10000 + i)})
			p.Transition(ClassNone, ClassActive)
		}
		for i, w := range weights {
			want := int64(100 * w)
			if got := d[i].ActiveConns(); got < want-2 || got > want+2 {
				t.Errorf("%s: server %c has %d active, want %d±2", name, 'A'+i, got, want)
			}
		}
	}
}

func TestTwosFollowsWeights(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	// Without connections both draws tie and the first is kept: a
	// weighted random choice. As in the kernel a draw is uniform over
	// [0, total] (here 0..10), and both 0 and 1 land on A: A gets 2/11,
	// the others w/11.
	d := mkDests(weights...)
	s := newSched(t, "twos", 0, d)
	n := 100000
	shareWithin(t, "twos idle", shares(s, d, randomKeys(n, 11)), n, []float64{2.0 / 11, 2.0 / 11, 3.0 / 11, 4.0 / 11}, 0.01)
	// With realistic weights the bias vanishes.
	big := []int{100, 200, 300, 400}
	d = mkDests(big...)
	s = newSched(t, "twos", 0, d)
	shareWithin(t, "twos idle", shares(s, d, randomKeys(n, 11)), n, weightShares(big...), 0.01)

	// With picks opening connections, the least loaded of the two draws
	// wins and the active counts level out by weight.
	d = mkDests(weights...)
	s = newSched(t, "twos", 0, d)
	for i := 0; i < 20000; i++ {
		s.Pick(nil).Transition(ClassNone, ClassActive)
	}
	got := map[int]int{}
	for i := range d {
		got[i] = int(d[i].ActiveConns())
	}
	shareWithin(t, "twos loaded", got, 20000, weightShares(weights...), 0.02)
}

func TestHashSchedulersFollowWeights(t *testing.T) {
	n := 200000
	keys := randomKeys(n, 12)

	// mh: turns are weight/gcd, so the table shares are the weights'.
	w := []int{1, 2, 3, 4}
	d := mkDests(w...)
	shareWithin(t, "mh", shares(newSched(t, "mh", 0, d), d, keys), n, weightShares(w...), 0.01)

	// sh and dh fill 256 buckets in runs of weight: 4,3,2 repeats 28
	// times plus A's 4, so 116/84/56 of 256, within 0.01 of 4/9,3/9,2/9.
	w = []int{4, 3, 2}
	for _, name := range []string{"sh", "dh"} {
		d = mkDests(w...)
		shareWithin(t, name, shares(newSched(t, name, 0, d), d, keys), n, weightShares(w...), 0.02)
	}
}

func TestHashSchedulersAreStablePerKey(t *testing.T) {
	keys := randomKeys(5000, 13)
	for _, name := range []string{"sh", "dh", "mh"} {
		for _, flags := range []Flags{0, FlagPort} {
			a := newSched(t, name, flags, mkDests(1, 2, 3, 4, 5))
			first := make([]*Dest, len(keys))
			for i := range keys {
				first[i] = a.Pick(&keys[i])
			}
			for i := range keys {
				if p := a.Pick(&keys[i]); p != first[i] {
					t.Fatalf("%s: key %d moved between picks", name, i)
				}
			}
		}
	}
}

// TestPortFlag: with the port flag the same client spreads over servers by
// source port; without it every port of a client goes to one server.
func TestPortFlag(t *testing.T) {
	for _, name := range []string{"sh", "mh"} {
		d := mkDests(1, 1, 1, 1)
		plain := newSched(t, name, 0, d)
		port := newSched(t, name, FlagPort, d)
		k := Key{Src: testAddr(500)}
		seenPlain, seenPort := map[*Dest]bool{}, map[*Dest]bool{}
		for p := 1000; p < 1200; p++ {
			k.SrcPort = uint16(p)
			seenPlain[plain.Pick(&k)] = true
			seenPort[port.Pick(&k)] = true
		}
		if len(seenPlain) != 1 {
			t.Errorf("%s: one client went to %d servers without the port flag", name, len(seenPlain))
		}
		if len(seenPort) != 4 {
			t.Errorf("%s: one client's ports reached %d of 4 servers with the port flag", name, len(seenPort))
		}
	}
}

// TestDHHashesDestination: dh keys on the destination address only.
func TestDHHashesDestination(t *testing.T) {
	d := mkDests(1, 1, 1, 1)
	s := newSched(t, "dh", 0, d)
	k := Key{Dst: testAddr(42)}
	want := s.Pick(&k)
	for i := 0; i < 100; i++ {
		k.Src = testAddr(1000 + i)
		k.SrcPort = uint16(i)
		if s.Pick(&k) != want {
			t.Fatal("dh moved with the source")
		}
	}
}

// TestHashFallback: clients of an unavailable server get another one with
// sh-fallback / mh-fallback, and nil without; the others do not move.
func TestHashFallback(t *testing.T) {
	keys := randomKeys(20000, 14)
	for _, name := range []string{"sh", "mh"} {
		d := mkDests(1, 1, 1, 1)
		strict := newSched(t, name, 0, d)
		fb := newSched(t, name, FlagFallback, d)
		before := make([]*Dest, len(keys))
		for i := range keys {
			before[i] = strict.Pick(&keys[i])
		}
		d[2].SetWeight(0)
		// sh rebuilds on Update (weight 0 keeps one bucket), so skip the
		// Update here: the tables stay, only availability changes.
		lost := 0
		for i := range keys {
			s, f := strict.Pick(&keys[i]), fb.Pick(&keys[i])
			if before[i] == d[2] {
				lost++
				if s != nil {
					t.Fatalf("%s: key of quiescent C got %c without fallback", name, letterOf(d, s))
				}
				if f == nil || f == d[2] {
					t.Fatalf("%s: key of quiescent C got %c with fallback", name, letterOf(d, f))
				}
				continue
			}
			if s != before[i] || f != before[i] {
				t.Fatalf("%s: key of an available server moved", name)
			}
		}
		if lost == 0 {
			t.Fatalf("%s: no key hashed to C", name)
		}
	}
}
