//go:build unix

package conntrack

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/govs/govs/lvs"
)

// Scaling of the connection table with workers (issue #19, goal 3). Run
// them under several P counts:
//
//	go test -run '^$' -bench 'Parallel' -cpu 1,2 ./conntrack
//
// Every op is one whole TCP connection of a NAT service, as the worker that
// owns it sees its nine segments (connLife). ns/op is wall time over all
// goroutines together, so it halves from -cpu 1 to -cpu 2 when the
// goroutines share nothing; cpu-ns/op is the process's CPU time per op
// (user+system, getrusage), the per-goroutine cost, which then stays the
// same.
//
//   - owned: the design. Each goroutine has a table of its own, as each
//     worker has; nothing is written by two goroutines.
//   - owned-mutex: the same with a mutex per table taken per packet, never
//     contended: what the lock instructions cost alone.
//   - shared-mutex: THE ANTI-PATTERN, for contrast only. One table for all
//     goroutines behind one mutex taken per packet: the lock's cache line
//     and the table's own counters and free list move between cores.

// parallelResident is how many established connections each table holds
// besides the ones the benchmark opens and closes, so that the index is
// populated; with parallelWindow in flight it fits a core's L2, which keeps
// the benchmark on sharing rather than on memory bandwidth.
const (
	parallelResident = 1 << 13
	parallelWindow   = 1 << 12
)

// BenchmarkTableParallel: see above.
func BenchmarkTableParallel(b *testing.B) {
	b.Run("owned", func(b *testing.B) { benchTableParallel(b, false, false) })
	b.Run("owned-mutex", func(b *testing.B) { benchTableParallel(b, false, true) })
	b.Run("shared-mutex", func(b *testing.B) { benchTableParallel(b, true, true) })
}

// parallelTable is a table and the lock that guards it (when locked).
type parallelTable struct {
	mu sync.Mutex
	t  *Table
	_  [64]byte // tables of different goroutines off each other's lines
}

func (pt *parallelTable) lock(on bool) {
	if on {
		pt.mu.Lock()
	}
}

func (pt *parallelTable) unlock(on bool) {
	if on {
		pt.mu.Unlock()
	}
}

func benchTableParallel(b *testing.B, shared, locked bool) {
	procs := parallelGoroutines()
	tables := make([]*parallelTable, procs)
	capacity := parallelResident + parallelWindow
	if shared {
		capacity = parallelResident + procs*parallelWindow
	}
	for g := range tables {
		if shared && g > 0 {
			tables[g] = tables[0]
			continue
		}
		pt := &parallelTable{t: New(Config{Capacity: capacity})}
		fillTable(b, pt.t, parallelResident)
		tables[g] = pt
	}
	// Goroutine g opens connections natConn(base + j) for j in its own
	// window, so that in a shared table they never collide.
	var next atomic.Int32
	b.ReportAllocs()
	cpu0 := procCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1)) - 1
		pt := tables[g]
		base := parallelResident
		if shared {
			base += g * parallelWindow
		}
		conns := make([]Conn, parallelWindow)
		for j := range conns {
			conns[j] = natConn(base+j, lvs.ProtoTCP)
		}
		now := int64(1)
		for j := 0; pb.Next(); j++ {
			now += 1000
			if !connLife(pt, locked, &conns[j&(parallelWindow-1)], now) {
				b.Error("connection lost")
				return
			}
		}
	})
	b.StopTimer()
	if cpu1 := procCPU(); cpu0 >= 0 && cpu1 >= 0 && b.N > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	for g, pt := range tables {
		if (!shared || g == 0) && pt.t.Len() != parallelResident {
			b.Errorf("table %d holds %d connections after the run, want %d", g, pt.t.Len(), parallelResident)
		}
	}
}

// connLife runs connection c through table pt as its owner worker sees it,
// one lock per packet when locked: the SYN inserts it, then SYN-ACK, ACK,
// request, response, the server's FIN, the client's ACK and FIN, and the
// last ACK removes it (as expiry would, without the wait). It reports
// whether every lookup hit.
func connLife(pt *parallelTable, locked bool, c *Conn, now int64) bool {
	t := pt.t
	pt.lock(locked)
	p, err := t.Insert(c, now)
	if err == nil {
		t.Track(p, DirOriginal, lvs.TCPSyn, now)
	}
	pt.unlock(locked)
	if err != nil {
		return false
	}
	steps := [...]struct {
		reply bool
		flags lvs.TCPFlags
	}{
		{true, lvs.TCPSyn | lvs.TCPAck},
		{false, lvs.TCPAck},
		{false, lvs.TCPAck | 0x08},
		{true, lvs.TCPAck | 0x08},
		{true, lvs.TCPFin | lvs.TCPAck},
		{false, lvs.TCPAck},
		{false, lvs.TCPFin | lvs.TCPAck},
	}
	for _, s := range steps {
		k := &c.Orig
		if s.reply {
			k = &c.Reply
		}
		pt.lock(locked)
		p, dir, ok := t.Lookup(k, now)
		if ok {
			t.Track(p, dir, s.flags, now)
		}
		pt.unlock(locked)
		if !ok {
			return false
		}
	}
	pt.lock(locked)
	p, dir, ok := t.Lookup(&c.Reply, now)
	if ok {
		t.Track(p, dir, lvs.TCPAck, now)
		t.Delete(p)
	}
	pt.unlock(locked)
	return ok
}

// parallelGoroutines is how many goroutines RunParallel starts (its
// parallelism is left at 1).
func parallelGoroutines() int { return runtime.GOMAXPROCS(0) }

// procCPU is the CPU time the process has used (user+system), or -1.
func procCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
