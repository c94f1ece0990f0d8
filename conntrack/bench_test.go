package conntrack

import (
	"fmt"
	"github.com/govs/govs/lvs"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fillTable inserts n established NAT connections (tuples natConn(0..n-1)).
func fillTable(tb testing.TB, t *Table, n int) {
	for i := range n {
		c := natConn(i, lvs.ProtoTCP)
		p, err := t.Insert(&c, 0)
		if err != nil {
			tb.Fatalf("fill %d: %v", i, err)
		}
		t.Track(p, DirOriginal, lvs.TCPSyn, 0)
		t.Track(p, DirOriginal, lvs.TCPAck, 0)
	}
}

// cpuMeter reports the thread CPU time per operation (cpu-ns/op) next to
// ns/op, which on a shared machine includes time spent waiting for a core.
type cpuMeter struct {
	start int64
	ok    bool
}

func startCPU() cpuMeter {
	runtime.LockOSThread()
	ns, ok := threadCPU()
	return cpuMeter{start: ns, ok: ok}
}

func (m cpuMeter) report(b *testing.B, ops int) {
	ns, ok := threadCPU()
	runtime.UnlockOSThread()
	if m.ok && ok && ops > 0 {
		b.ReportMetric(float64(ns-m.start)/float64(ops), "cpu-ns/op")
	}
}

var (
	table1MOnce sync.Once
	table1M     *Table
)

// shared1M is a full table of 1M connections, built once per test binary.
func shared1M(b *testing.B) *Table {
	table1MOnce.Do(func() {
		table1M = New(Config{Capacity: 1 << 20})
		fillTable(b, table1M, 1<<20)
	})
	return table1M
}

// BenchmarkLookup1M: random hits (both directions) in a table of 1M
// connections, so most lookups miss the CPU caches.
func BenchmarkLookup1M(b *testing.B) {
	t := shared1M(b)
	rng := rand.New(rand.NewPCG(1, 1))
	keys := make([]Tuple, 1<<16)
	for j := range keys {
		c := natConn(rng.IntN(1<<20), lvs.ProtoTCP)
		keys[j] = c.Orig
		if j&1 == 1 {
			keys[j] = c.Reply
		}
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := t.Lookup(&keys[i&(len(keys)-1)], 1); !ok {
			b.Fatal("miss")
		}
	}
	cpu.report(b, b.N)
}

// BenchmarkLookupHot: a table small enough to stay in cache, which shows
// the cost of the hashing and probing alone.
func BenchmarkLookupHot(b *testing.B) {
	t := New(Config{Capacity: 4096})
	fillTable(b, t, 4096)
	keys := make([]Tuple, 4096)
	for j := range keys {
		keys[j] = natConn(j, lvs.ProtoTCP).Reply
	}
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := t.Lookup(&keys[i&(len(keys)-1)], 1); !ok {
			b.Fatal("miss")
		}
	}
	cpu.report(b, b.N)
}

// BenchmarkLookupMiss1M: tuples that are not in a table of 1M.
func BenchmarkLookupMiss1M(b *testing.B) {
	t := shared1M(b)
	keys := make([]Tuple, 1<<16)
	for j := range keys {
		keys[j] = natConn((1<<20)+j, lvs.ProtoTCP).Orig
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := t.Lookup(&keys[i&(len(keys)-1)], 1); ok {
			b.Fatal("hit")
		}
	}
	cpu.report(b, b.N)
}

// BenchmarkTrack1M: one state update on a random connection of 1M.
func BenchmarkTrack1M(b *testing.B) {
	t := shared1M(b)
	rng := rand.New(rand.NewPCG(2, 2))
	conns := make([]*Conn, 1<<16)
	for j := range conns {
		c := natConn(rng.IntN(1<<20), lvs.ProtoTCP)
		conns[j], _, _ = t.Lookup(&c.Orig, 1)
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t.Track(conns[i&(len(conns)-1)], DirOriginal, lvs.TCPAck, 1)
	}
	cpu.report(b, b.N)
}

// BenchmarkInsert1M: inserting NAT connections (two index cells each) into
// a table that holds 1M, in rounds of 64K whose deletion is not timed.
func BenchmarkInsert1M(b *testing.B) {
	const base, round = 1 << 20, 1 << 16
	t := New(Config{Capacity: base + round})
	fillTable(b, t, base)
	conns := make([]Conn, round)
	for j := range conns {
		conns[j] = natConn(base+j, lvs.ProtoTCP)
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	j := 0
	for b.Loop() {
		if j == round {
			b.StopTimer()
			p0, _ := threadCPU()
			for k := range conns {
				if c, _, ok := t.Lookup(&conns[k].Orig, 0); ok {
					t.Delete(c)
				}
			}
			p1, _ := threadCPU()
			cpu.start += p1 - p0 // not part of the measurement
			j = 0
			b.StartTimer()
		}
		if _, err := t.Insert(&conns[j], 0); err != nil {
			b.Fatal(err)
		}
		j++
	}
	cpu.report(b, b.N)
}

// BenchmarkInsertEvict1M: a SYN flood's steady state. The table of 1M is
// full of half-open connections, and each new one (Insert, then Track with
// its SYN) evicts the oldest.
func BenchmarkInsertEvict1M(b *testing.B) {
	const n = 1 << 20
	t := New(Config{Capacity: n})
	// 2n tuples used in turn: the previous user of a tuple was evicted n
	// inserts ago.
	conns := make([]Conn, 2*n)
	for j := range conns {
		conns[j] = natConn(j, lvs.ProtoTCP)
	}
	for j := range n {
		p, _ := t.Insert(&conns[j], 1)
		t.Track(p, DirOriginal, lvs.TCPSyn, 1)
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	j := n
	for b.Loop() {
		p, err := t.Insert(&conns[j], 1)
		if err != nil {
			b.Fatal(err)
		}
		t.Track(p, DirOriginal, lvs.TCPSyn, 1)
		if j++; j == len(conns) {
			j = 0
		}
	}
	cpu.report(b, b.N)
	if t.Stats().EvictedHalfOpen < uint64(b.N) {
		b.Fatal("no eviction")
	}
}

// BenchmarkExpire1M: the sweep's cost per slot over a full table with
// nothing to expire (the common case between expiries).
func BenchmarkExpire1M(b *testing.B) {
	t := shared1M(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t.Expire(1, 1024)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/slot")
}

var memResults sync.Map // capacity -> bytes per entry

// BenchmarkMemory reports the bytes per connection a table of 1M and 4M
// allocates (runtime.MemStats before and after New; all of it is
// preallocated, so filling the table adds nothing).
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("%dM", n>>20), func(b *testing.B) {
			v, ok := memResults.Load(n)
			if !ok {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				t := New(Config{Capacity: n})
				runtime.ReadMemStats(&m1)
				fillTable(b, t, n)
				var m2 runtime.MemStats
				runtime.ReadMemStats(&m2)
				if m2.TotalAlloc != m1.TotalAlloc {
					b.Errorf("filling allocated %d bytes", m2.TotalAlloc-m1.TotalAlloc)
				}
				runtime.KeepAlive(t)
				v = float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n)
				memResults.Store(n, v)
			}
			for b.Loop() {
			}
			b.ReportMetric(v.(float64), "B/entry")
		})
	}
}

var (
	gcTableOnce sync.Once
	gcTable     *Table
	gcMapOnce   sync.Once
	gcMap       map[Tuple]*Conn
)

// BenchmarkGCPause4M: a full garbage collection (runtime.GC, ns/op) and its
// stop-the-world pauses (pause-ns) with a table of 4M live connections.
func BenchmarkGCPause4M(b *testing.B) {
	gcTableOnce.Do(func() {
		gcTable = New(Config{Capacity: 4 << 20})
		fillTable(b, gcTable, 4<<20)
	})
	benchGC(b)
	runtime.KeepAlive(gcTable)
}

// BenchmarkGCPauseMap4M is the same with the naive layout, a map of 4M
// *Conn, for comparison.
func BenchmarkGCPauseMap4M(b *testing.B) {
	gcMapOnce.Do(func() {
		gcMap = make(map[Tuple]*Conn, 4<<20)
		for i := range 4 << 20 {
			c := natConn(i, lvs.ProtoTCP)
			gcMap[c.Orig] = &c
		}
	})
	benchGC(b)
	runtime.KeepAlive(gcMap)
}

func benchGC(b *testing.B) {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		runtime.GC()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	if gcs := m1.NumGC - m0.NumGC; gcs > 0 {
		b.ReportMetric(float64(m1.PauseTotalNs-m0.PauseTotalNs)/float64(gcs), "pause-ns")
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(gcs), "gc-ns")
	}
	b.ReportMetric(float64(m1.HeapAlloc)/(1<<20), "heap-MiB")
}
