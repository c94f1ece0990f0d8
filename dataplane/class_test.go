package dataplane

import (
	"testing"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/sched"
)

// TestClassOf: IPVS's tcp_state_active_table, the handshake states
// included; ClassNone for a connection not in the table.
func TestClassOf(t *testing.T) {
	active := map[conntrack.State]bool{conntrack.StateEstablished: true, conntrack.StateSynSent: true,
		conntrack.StateSynRecv: true, conntrack.StateSynAck: true}
	for s := conntrack.StateNone; s <= conntrack.StateICMP; s++ {
		want := sched.ClassInactive
		if active[s] {
			want = sched.ClassActive
		}
		if got := classOf(s); got != want {
			t.Errorf("%s: class %v, want %v", s, got, want)
		}
	}
	if classOf(conntrack.StateAbsent) != sched.ClassNone {
		t.Error("StateAbsent is not ClassNone")
	}
}
