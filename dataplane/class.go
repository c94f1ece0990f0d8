package dataplane

import (
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/sched"
)

// How a connection counts against its real server, for the schedulers
// (lc, wlc, ...) and ipvsadm's ActiveConn and InActConn columns. The
// connection table reports states (conntrack.Config.OnState); this is the
// one place that turns them into scheduler classes.

// activeState is IPVS's tcp_state_active_table (kernel >= 4.11): the
// handshake states count as active too, so a SYN flood towards one server
// shows up in its ActiveConns and lc/wlc steer away from it. UDP and ICMP
// connections are always inactive, as in IPVS.
var activeState = [256]bool{
	conntrack.StateEstablished: true,
	conntrack.StateSynSent:     true,
	conntrack.StateSynRecv:     true,
	conntrack.StateSynAck:      true,
}

// classOf returns how a connection in state s counts against its real
// server; ClassNone for StateAbsent (not in the table).
func classOf(s conntrack.State) sched.ConnClass {
	switch {
	case s == conntrack.StateAbsent:
		return sched.ClassNone
	case activeState[s]:
		return sched.ClassActive
	}
	return sched.ClassInactive
}

// countState is the tables' conntrack.Config.OnState: a state change that
// changes the connection's class moves it between its real server's
// counts.
func (d *Director) countState(dest uint32, from, to conntrack.State) {
	fc, tc := classOf(from), classOf(to)
	if fc == tc {
		return
	}
	if dst := d.state.Load().dest(dest); dst != nil {
		dst.Transition(fc, tc)
	}
}
