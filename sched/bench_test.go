package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchDests returns n destinations with weights 1..5 and some connections,
// so that the least-connection loops do real comparisons.
func benchDests(n int) []*Dest {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	d := make([]*Dest, n)
	for i := range d {
		d[i] = NewDest(testAddr(i), 80, 1+i%5)
		setConns(d[i], r.IntN(20), r.IntN(40))
	}
	return d
}

// BenchmarkPick measures one Pick per op for every scheduler with 3 and 1000
// real servers. Keys cycle through 4096 random clients; the locality
// schedulers see 256 distinct destination addresses, so their cache hits.
func BenchmarkPick(b *testing.B) {
	keys := randomKeys(4096, 9)
	for i := range keys {
		keys[i].Dst = testAddr(1000 + i%256)
	}
	for _, name := range allNames {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				s := newSched(b, name, FlagFallback, benchDests(n))
				key := &Key{}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					*key = keys[i&4095]
					if s.Pick(key) == nil {
						b.Fatal("no destination")
					}
				}
			})
		}
	}
}

// BenchmarkPickParallel is Pick from every P at once on one scheduler, the
// data path's shape (one worker per RX queue).
func BenchmarkPickParallel(b *testing.B) {
	keys := randomKeys(4096, 10)
	for _, name := range allNames {
		b.Run(name, func(b *testing.B) {
			s := newSched(b, name, FlagFallback, benchDests(100))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := &Key{}
				i := 0
				for pb.Next() {
					*key = keys[i&4095]
					i++
					s.Pick(key)
				}
			})
		})
	}
}

// BenchmarkUpdate is the control-plane cost of rebuilding a scheduler's
// tables (mh populates 65537 slots).
func BenchmarkUpdate(b *testing.B) {
	for _, name := range []string{"mh", "sh", "wrr", "lblc"} {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				s := newSched(b, name, 0, nil)
				d := benchDests(n)
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					s.Update(d)
				}
			})
		}
	}
}
