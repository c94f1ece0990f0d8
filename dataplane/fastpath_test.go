package dataplane

import (
	"testing"

	"github.com/govs/govs/conntrack"
)

// TestWarm: a connection gets flow entries from its fastAfter-th packet
// on, and the count lives in the dataplane's flag bits without touching
// the others.
func TestWarm(t *testing.T) {
	c := conntrack.Conn{Flags: flagNoL2 | conntrack.FlagNoOutput | flagFastOut}
	for i := 1; i < fastAfter; i++ {
		if warm(&c) {
			t.Fatalf("warm after %d packets, want %d", i, fastAfter)
		}
	}
	for i := 0; i < 3; i++ {
		if !warm(&c) {
			t.Fatalf("not warm after %d packets", fastAfter+i)
		}
	}
	if c.Flags&^fastCountMask != flagNoL2|conntrack.FlagNoOutput|flagFastOut {
		t.Errorf("other flag bits changed: %#x", c.Flags)
	}
	if fastCountMask&(flagNoL2|flagFast|conntrack.FlagsTable) != 0 {
		t.Errorf("the packet count's bits %#x overlap other flags", fastCountMask)
	}
}
