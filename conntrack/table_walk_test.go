package conntrack

import (
	"testing"

	"github.com/govs/govs/lvs"
)

// TestWalkSlots: slices of a walk visit every live connection exactly once
// per pass, wrap at the end of the table, and never visit a slot twice in
// one call.
func TestWalkSlots(t *testing.T) {
	tb := New(Config{Capacity: 64, Timeouts: DefaultTimeouts()})
	want := map[*Conn]bool{}
	for i := range 20 {
		nc := natConn(i, lvs.ProtoTCP)
		c, err := tb.Insert(&nc, 1)
		if err != nil {
			t.Fatal(err)
		}
		want[c] = true
	}
	seen := map[*Conn]int{}
	next := 5
	for _, n := range []int{7, 0, 30, 1, 26} { // 64 slots in all, from slot 5
		next = tb.WalkSlots(next, n, func(c *Conn) { seen[c]++ })
	}
	if next != 5 {
		t.Errorf("after a whole pass the walk is at slot %d, want 5", next)
	}
	for c := range want {
		if seen[c] != 1 {
			t.Errorf("connection in slot %d visited %d times in one pass, want 1", tb.Slot(c), seen[c])
		}
	}
	clear(seen)
	if next = tb.WalkSlots(3, 1000, func(c *Conn) { seen[c]++ }); next != 3 {
		t.Errorf("a slice longer than the table ends at slot %d, want 3 (one pass)", next)
	}
	for c := range want {
		if seen[c] != 1 {
			t.Errorf("a slice longer than the table visited a connection %d times, want 1", seen[c])
		}
	}
}
