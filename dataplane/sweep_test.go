package dataplane

import (
	"testing"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/lvs"
)

// TestTableSweepDue: the whole table at the first call and after a whole
// period, a proportional slice (rounded up) in between, nothing within
// sweepStep of the last slice.
func TestTableSweepDue(t *testing.T) {
	var s tableSweep
	base := int64(100 * time.Second)
	for _, c := range []struct {
		at   time.Duration
		want int
	}{
		{0, 4096},                    // first call: the whole table
		{5 * time.Millisecond, 0},    // within sweepStep
		{time.Second, 410},           // a tenth of the period (1 s after the first call)
		{time.Second + sweepStep, 5}, // 10 ms: 4.1 slots, rounded up
		{time.Minute, 4096},          // more than a period: one pass
		{time.Minute + sweepStep, 5},
	} {
		if got := s.due(base+int64(c.at), 10*time.Second, 4096); got != c.want {
			t.Errorf("due at +%v: %d slots, want %d", c.at, got, c.want)
		}
	}
}

// TestMirrorRefreshInSlices: the mirror's refresh takes the table a slice
// per tick: ten ticks a second apart (a tenth of mirrorRefresh each)
// record each connection that needs it exactly once, about a tenth of them
// per tick, instead of all of them in one tick.
func TestMirrorRefreshInSlices(t *testing.T) {
	store := newFakeStore()
	l := mirrored(newLab(t, lvs.FwdNAT, false), store)
	w, d := l.w, l.w.d
	const n = 1000
	for i := range n {
		l.mustForward(t, 0, l.request(uint16(20000+i), lvs.TCPSyn, 0), 0, 1, 1)
		if w.mir.n > mirrorBatchLen/2 {
			w.pushMirror()
			d.drainMirror()
		}
	}
	base := int64(time.Second)         // the connections, SYN_RECV since 1 ns, live 60 s
	w.tickMirror(base, d.state.Load()) // the first tick: one whole pass
	w.pushMirror()
	d.drainMirror()
	recorded := map[int]int{}
	w.ct.Walk(func(c *conntrack.Conn) bool {
		w.path(c).mirExpires = 0 // every connection needs a record again
		return true
	})
	step := int64(mirrorRefresh) / 10
	for tick := 1; tick <= 10; tick++ {
		w.mirSync = func(b *mirrorBatch) { recorded[tick] += b.n } // what each tick records
		w.tickMirror(base+int64(tick)*step, d.state.Load())
		if w.mir.n > 0 {
			w.pushMirror()
		}
		w.mirSync = nil
		if got, most := recorded[tick], w.ct.Cap()/10+1; got > most {
			t.Errorf("tick %d recorded %d connections, want a tenth of the table's %d slots at most (%d)", tick, got, w.ct.Cap(), most)
		}
	}
	total := 0
	for _, k := range recorded {
		total += k
	}
	if total != n {
		t.Errorf("ten ticks over a refresh period recorded %d connections, want each of the %d once", total, n)
	}
}
