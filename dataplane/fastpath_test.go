package dataplane

import "testing"

// TestWarm: a connection gets flow entries from its fastAfter-th packet
// on, and the count lives in the data path's flag bits without touching
// the others.
func TestWarm(t *testing.T) {
	cp := connPath{flags: flagNoL2 | flagFastOut}
	for i := 1; i < fastAfter; i++ {
		if cp.warm() {
			t.Fatalf("warm after %d packets, want %d", i, fastAfter)
		}
	}
	for i := 0; i < 3; i++ {
		if !cp.warm() {
			t.Fatalf("not warm after %d packets", fastAfter+i)
		}
	}
	if cp.flags&^fastCountMask != flagNoL2|flagFastOut {
		t.Errorf("other flag bits changed: %#x", cp.flags)
	}
	if fastCountMask&(flagNoL2|flagFast|flagSynProxy|flagSynPending) != 0 {
		t.Errorf("the packet count's bits %#x overlap other flags", fastCountMask)
	}
	// Bits 0..7 are conntrack.Conn.Flags on the wire and in the records.
	if (flagNoL2|flagFast|fastCountMask|flagSynProxy|flagSynPending)&0xff != 0 {
		t.Error("a data path flag overlaps the table's byte")
	}
}
