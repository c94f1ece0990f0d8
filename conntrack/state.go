package conntrack

import (
	"time"

	"github.com/govs/govs/lvs"
)

// Direction says which way a packet travels relative to its connection.
type Direction uint8

const (
	// DirOriginal: client -> VIP side (IPVS's input direction).
	DirOriginal Direction = iota
	// DirReply: real server -> client side (IPVS's output direction).
	DirReply
)

func (d Direction) String() string {
	if d == DirReply {
		return "reply"
	}
	return "original"
}

// State is a connection state. The TCP states are IPVS's, in IPVS's order;
// UDP and ICMP have one state each, as in IPVS.
type State uint8

const (
	StateNone State = iota
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynAck
	StateUDP
	StateICMP

	numTCPStates = int(StateSynAck) + 1
	numStates    = int(StateICMP) + 1

	// StateAbsent is no state: what OnState reports as the state before
	// Insert and after removal. No connection is ever in it.
	StateAbsent State = 0xff
)

var stateNames = [numStates]string{
	StateNone:        "NONE",
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN_SENT",
	StateSynRecv:     "SYN_RECV",
	StateFinWait:     "FIN_WAIT",
	StateTimeWait:    "TIME_WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE_WAIT",
	StateLastAck:     "LAST_ACK",
	StateListen:      "LISTEN",
	StateSynAck:      "SYNACK",
	StateUDP:         "UDP",
	StateICMP:        "ICMP",
}

// String returns the state as ipvsadm -Lc spells it.
func (s State) String() string {
	if int(s) < numStates {
		return stateNames[s]
	}
	if s == StateAbsent {
		return "ABSENT"
	}
	return "ERR!"
}

// tcpEvent is the row of the transition table a packet selects.
type tcpEvent uint8

const (
	evSyn tcpEvent = iota
	evFin
	evAck
	evRst
	numEvents
	evNone // no SYN, FIN, ACK or RST: IPVS moves such a connection to CLOSE
)

// eventOf classifies TCP flags the way IPVS does: RST wins, then SYN, then
// FIN, then ACK.
func eventOf(flags lvs.TCPFlags) tcpEvent {
	switch {
	case flags&lvs.TCPRst != 0:
		return evRst
	case flags&lvs.TCPSyn != 0:
		return evSyn
	case flags&lvs.TCPFin != 0:
		return evFin
	case flags&lvs.TCPAck != 0:
		return evAck
	}
	return evNone
}

// tcpMode selects one of IPVS's three tables.
type tcpMode uint8

const (
	modeInput     tcpMode = iota // NAT/full-NAT, client -> server
	modeOutput                   // NAT/full-NAT, server -> client
	modeInputOnly                // DR/TUN: only client -> server is seen
	numModes
)

// Short names so that the table below reads like a matrix.
const (
	sNO = StateNone
	sES = StateEstablished
	sSS = StateSynSent
	sSR = StateSynRecv
	sFW = StateFinWait
	sTW = StateTimeWait
	sCL = StateClose
	sCW = StateCloseWait
	sLA = StateLastAck
	sLI = StateListen
	sSA = StateSynAck
)

// tcpNext[mode][event][current] is the next state. The transitions are those
// of IPVS's tcp_states (not the secure_tcp tcp_states_dos variant), as in
// current kernels, where an ACK in NONE gives ESTABLISHED.
var tcpNext = [numModes][numEvents][numTCPStates]State{
	modeInput: {
		//        sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		evSyn: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFin: {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRst: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	modeOutput: {
		evSyn: {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		evFin: {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		evRst: {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	modeInputOnly: {
		evSyn: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFin: {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRst: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// nextTCPState applies one packet to a TCP state.
func nextTCPState(mode tcpMode, cur State, flags lvs.TCPFlags) State {
	ev := eventOf(flags)
	if ev == evNone || int(cur) >= numTCPStates {
		return StateClose
	}
	return tcpNext[mode][ev][cur]
}

// Timeouts holds the idle timeout of every state: a connection expires when
// no packet refreshed it for the timeout of the state it is in. A zero field
// means the default (DefaultTimeouts).
type Timeouts struct {
	None, Established, SynSent, SynRecv, FinWait, TimeWait time.Duration
	Close, CloseWait, LastAck, Listen, SynAck              time.Duration
	UDP, ICMP                                              time.Duration
}

// DefaultTimeouts returns IPVS's defaults: the tcp_timeouts table of
// ip_vs_proto_tcp.c, 300 s for UDP (ip_vs_proto_udp.c) and 60 s for ICMP.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		None:        2 * time.Second,
		Established: 15 * time.Minute,
		SynSent:     2 * time.Minute,
		SynRecv:     1 * time.Minute,
		FinWait:     2 * time.Minute,
		TimeWait:    2 * time.Minute,
		Close:       10 * time.Second,
		CloseWait:   60 * time.Second,
		LastAck:     30 * time.Second,
		Listen:      2 * time.Minute,
		SynAck:      2 * time.Minute,
		UDP:         5 * time.Minute,
		ICMP:        60 * time.Second,
	}
}

// Set applies ipvsadm --set tcp tcpfin udp: tcp is the ESTABLISHED timeout,
// tcpfin the FIN_WAIT timeout, udp the UDP timeout. A zero (or negative)
// value leaves that timeout unchanged, as ipvsadm does with 0.
func (t *Timeouts) Set(tcp, tcpfin, udp time.Duration) {
	if tcp > 0 {
		t.Established = tcp
	}
	if tcpfin > 0 {
		t.FinWait = tcpfin
	}
	if udp > 0 {
		t.UDP = udp
	}
}

// For returns the timeout of state s (zero for an unknown state).
func (t *Timeouts) For(s State) time.Duration {
	if p := t.field(s); p != nil {
		return *p
	}
	return 0
}

func (t *Timeouts) field(s State) *time.Duration {
	switch s {
	case StateNone:
		return &t.None
	case StateEstablished:
		return &t.Established
	case StateSynSent:
		return &t.SynSent
	case StateSynRecv:
		return &t.SynRecv
	case StateFinWait:
		return &t.FinWait
	case StateTimeWait:
		return &t.TimeWait
	case StateClose:
		return &t.Close
	case StateCloseWait:
		return &t.CloseWait
	case StateLastAck:
		return &t.LastAck
	case StateListen:
		return &t.Listen
	case StateSynAck:
		return &t.SynAck
	case StateUDP:
		return &t.UDP
	case StateICMP:
		return &t.ICMP
	}
	return nil
}

// table converts t into nanoseconds per state, filling zero (or negative)
// fields with the defaults.
func (t Timeouts) table() [numStates]int64 {
	def := DefaultTimeouts()
	var out [numStates]int64
	for s := State(0); int(s) < numStates; s++ {
		d := t.For(s)
		if d <= 0 {
			d = def.For(s)
		}
		out[s] = int64(d)
	}
	return out
}
