package conntrack

import (
	"fmt"
	"github.com/govs/govs/lvs"
	"testing"
)

// ipvsTCPStates is IPVS's tcp_states table, written out cell by cell from
// the kernel source as a fact to test against, not derived from state.go:
//
//	net/netfilter/ipvs/ip_vs_proto_tcp.c, static struct tcp_states_t
//	tcp_states[] (not tcp_states_dos, the secure_tcp variant), as in the
//	Linux 4.11+ file (the one with tcp_state_active_table, read from a
//	5.x-era tree); a 3.x-era copy (with cp->daf) has the same cells.
//	Older kernels (e.g. torvalds/linux 0134e89c) had sCL for an ACK in
//	sNO in the INPUT and INPUT-ONLY tables; govs follows the later sES (a
//	connection picked up mid-stream, e.g. after a sync, becomes
//	ESTABLISHED on its next ACK).
//
// Rows are the kernel's: INPUT (offset 0), OUTPUT (4), INPUT-ONLY (8), each
// with the rows syn, fin, ack, rst (tcp_state_idx: RST wins, then SYN, then
// FIN, then ACK), each row indexed by the current state in the kernel's
// order sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA.
//
// govs deliberately differs from IPVS around this table, never in it:
//   - A client SYN on a connection in TIME_WAIT or CLOSE (or FIN_WAIT while
//     no reply was seen) does not go through the table at all: Reusable
//     reports it and the dataplane replaces the connection at once, without
//     IPVS's conn_reuse_mode one-second SYN drop (no netfilter conntrack
//     entry has to die first). TestReusableNotTable pins that.
//   - A state outside the TCP states (a corrupted or synced UDP/ICMP state
//     on a TCP tuple) gives CLOSE; the kernel would index past its table.
var ipvsTCPStates = [3][4][11]State{
	// INPUT
	{
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	// OUTPUT
	{
		/*syn*/ {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	// INPUT-ONLY
	{
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// The kernel's order of states and rows, spelled out so that a change of
// govs's enum order cannot silently re-index the facts above.
var (
	ipvsStateOrder = [11]State{StateNone, StateEstablished, StateSynSent, StateSynRecv, StateFinWait,
		StateTimeWait, StateClose, StateCloseWait, StateLastAck, StateListen, StateSynAck}
	ipvsTableNames = [3]string{"INPUT", "OUTPUT", "INPUT-ONLY"}
	ipvsRowNames   = [4]string{"syn", "fin", "ack", "rst"}
)

// rowFlags are TCP flag bytes that select each row: the bare flag and the
// combinations real traffic carries (SYN-ACK is a syn, FIN-ACK a fin, RST
// with anything a rst, PSH-ACK an ack).
var rowFlags = [4][]lvs.TCPFlags{
	{lvs.TCPSyn, lvs.TCPSyn | lvs.TCPAck, lvs.TCPSyn | lvs.TCPFin, lvs.TCPSyn | lvs.TCPPsh},
	{lvs.TCPFin, lvs.TCPFin | lvs.TCPAck, lvs.TCPFin | lvs.TCPPsh | lvs.TCPAck},
	{lvs.TCPAck, lvs.TCPPsh | lvs.TCPAck},
	{lvs.TCPRst, lvs.TCPRst | lvs.TCPAck, lvs.TCPRst | lvs.TCPSyn, lvs.TCPRst | lvs.TCPFin | lvs.TCPAck, lvs.TCPRst | lvs.TCPSyn | lvs.TCPFin | lvs.TCPAck},
}

// TestTCPStateTableCells asserts every one of the 132 cells of the three
// tables, for every flag combination that selects its row.
func TestTCPStateTableCells(t *testing.T) {
	modes := [3]tcpMode{modeInput, modeOutput, modeInputOnly}
	for ti, mode := range modes {
		for row := 0; row < 4; row++ {
			for col, cur := range ipvsStateOrder {
				want := ipvsTCPStates[ti][row][col]
				for _, f := range rowFlags[row] {
					if got := nextTCPState(mode, cur, f); got != want {
						t.Errorf("%s %s (flags %#02x) in %s: got %s, want %s (ip_vs_proto_tcp.c tcp_states)",
							ipvsTableNames[ti], ipvsRowNames[row], f, cur, got, want)
					}
				}
			}
		}
	}
}

// TestTCPStateNoFlags: a segment with none of SYN, FIN, ACK, RST
// (tcp_state_idx -1) moves any state to CLOSE, as set_tcp_state does; so
// does a state the TCP tables do not have.
func TestTCPStateNoFlags(t *testing.T) {
	for _, mode := range []tcpMode{modeInput, modeOutput, modeInputOnly} {
		for _, cur := range ipvsStateOrder {
			for _, f := range []lvs.TCPFlags{0, lvs.TCPPsh, 0x20 /* URG */, 0x40 /* ECE */, 0x80 /* CWR */} {
				if got := nextTCPState(mode, cur, f); got != StateClose {
					t.Errorf("mode %d, %s, flags %#02x: got %s, want CLOSE", mode, cur, f, got)
				}
			}
		}
		for _, cur := range []State{StateUDP, StateICMP, State(200)} {
			if got := nextTCPState(mode, cur, lvs.TCPAck); got != StateClose {
				t.Errorf("mode %d, state %d: got %s, want CLOSE", mode, cur, got)
			}
		}
	}
}

// TestTCPStateTableThroughTrack drives every cell through Table.Track, so
// that the choice of table is pinned too: NAT and full-NAT requests use
// INPUT, their replies OUTPUT; DR and TUN requests use INPUT-ONLY until a
// reply is seen (IPVS's IP_VS_CONN_F_NOOUTPUT), replies OUTPUT.
func TestTCPStateTableThroughTrack(t *testing.T) {
	type path struct {
		fwd   lvs.Fwd
		dir   Direction
		table int // index into ipvsTCPStates
	}
	paths := []path{
		{lvs.FwdNAT, DirOriginal, 0},
		{lvs.FwdNAT, DirReply, 1},
		{lvs.FwdFullNAT, DirOriginal, 0},
		{lvs.FwdFullNAT, DirReply, 1},
		{lvs.FwdDR, DirOriginal, 2},
		{lvs.FwdTun, DirOriginal, 2},
		{lvs.FwdDR, DirReply, 1},
	}
	tb := New(Config{Capacity: 64})
	now := sec
	for _, p := range paths {
		for row := 0; row < 4; row++ {
			for col, cur := range ipvsStateOrder {
				want := ipvsTCPStates[p.table][row][col]
				name := fmt.Sprintf("%s %s %s in %s", p.fwd, p.dir, ipvsRowNames[row], cur)
				c := natConn(row*11+col, lvs.ProtoTCP)
				c.Fwd = p.fwd
				if p.fwd == lvs.FwdFullNAT {
					c.Reply.Dst, c.Reply.DstPort = lip, 2000
				}
				n, err := tb.Insert(&c, now)
				if err != nil {
					t.Fatalf("%s: insert: %v", name, err)
				}
				tb.Restore(n, cur, now+sec)
				tb.Track(n, p.dir, rowFlags[row][0], now)
				if n.State != want {
					t.Errorf("%s: got %s, want %s", name, n.State, want)
				}
				if n.Expires != now+int64(tb.Timeout(want)) {
					t.Errorf("%s: expires in %d ns, want the %s timeout %v", name, n.Expires-now, want, tb.Timeout(want))
				}
				tb.Delete(n)
			}
		}
	}
	// After one reply, a DR connection's requests use INPUT, not
	// INPUT-ONLY: a FIN in ESTABLISHED then gives CLOSE_WAIT, not FIN_WAIT.
	c := drConn(1, lvs.ProtoTCP)
	n, _ := tb.Insert(&c, now)
	tb.Restore(n, StateEstablished, now+sec)
	tb.Track(n, DirReply, lvs.TCPAck, now)
	tb.Track(n, DirOriginal, lvs.TCPFin|lvs.TCPAck, now)
	if n.State != StateCloseWait {
		t.Errorf("DR after a reply, FIN in ESTABLISHED: got %s, want CLOSE_WAIT (INPUT table)", n.State)
	}
}

// TestTCPStateRealTraffic names the transitions issue 21 found untested,
// so that a failure reads as the behaviour it breaks.
func TestTCPStateRealTraffic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  tcpMode
		cur   State
		flags lvs.TCPFlags
		want  State
	}{
		{"ACK in NONE (connection picked up mid-stream) is established", modeInput, StateNone, lvs.TCPAck, StateEstablished},
		{"ACK in NONE, DR", modeInputOnly, StateNone, lvs.TCPAck, StateEstablished},
		{"SYN while ESTABLISHED stays established", modeInput, StateEstablished, lvs.TCPSyn, StateEstablished},
		{"server SYN-ACK while ESTABLISHED stays established", modeOutput, StateEstablished, lvs.TCPSyn | lvs.TCPAck, StateEstablished},
		{"client FIN in CLOSE_WAIT stays CLOSE_WAIT", modeInput, StateCloseWait, lvs.TCPFin | lvs.TCPAck, StateCloseWait},
		{"server FIN in CLOSE_WAIT is TIME_WAIT", modeOutput, StateCloseWait, lvs.TCPFin | lvs.TCPAck, StateTimeWait},
		{"client ACK in LAST_ACK closes", modeInput, StateLastAck, lvs.TCPAck, StateClose},
		{"server RST in TIME_WAIT stays TIME_WAIT", modeOutput, StateTimeWait, lvs.TCPRst, StateTimeWait},
		{"client RST in SYN_RECV stays SYN_RECV", modeInput, StateSynRecv, lvs.TCPRst, StateSynRecv},
		{"client RST in SYNACK: SYN_RECV (INPUT) but CLOSE (INPUT-ONLY)", modeInputOnly, StateSynAck, lvs.TCPRst, StateClose},
		{"server RST in SYN_SENT stays SYN_SENT", modeOutput, StateSynSent, lvs.TCPRst, StateSynSent},
	} {
		if got := nextTCPState(tc.mode, tc.cur, tc.flags); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestReusableNotTable pins govs's deliberate difference: a client SYN on
// a finished connection is reported as a new connection (the dataplane
// deletes and reschedules it) instead of being run through the table and
// dropped for a second as IPVS's conn_reuse_mode does. Anything else is not
// reusable.
func TestReusableNotTable(t *testing.T) {
	tb := New(Config{Capacity: 16})
	for _, tc := range []struct {
		fwd   lvs.Fwd
		state State
		dir   Direction
		flags lvs.TCPFlags
		want  bool
	}{
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn, true},
		{lvs.FwdNAT, StateClose, DirOriginal, lvs.TCPSyn, true},
		{lvs.FwdNAT, StateFinWait, DirOriginal, lvs.TCPSyn, false}, // a reply was possible: not the DR ending
		{lvs.FwdDR, StateFinWait, DirOriginal, lvs.TCPSyn, true},
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn | lvs.TCPAck, false},
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn | lvs.TCPRst, false},
		{lvs.FwdNAT, StateTimeWait, DirReply, lvs.TCPSyn, false},
		{lvs.FwdNAT, StateEstablished, DirOriginal, lvs.TCPSyn, false},
		{lvs.FwdNAT, StateCloseWait, DirOriginal, lvs.TCPSyn, false},
		{lvs.FwdNAT, StateLastAck, DirOriginal, lvs.TCPSyn, false},
		{lvs.FwdNAT, StateSynRecv, DirOriginal, lvs.TCPSyn, false},
	} {
		c := natConn(1, lvs.ProtoTCP)
		if tc.fwd == lvs.FwdDR {
			c = drConn(1, lvs.ProtoTCP)
		}
		n, err := tb.Insert(&c, sec)
		if err != nil {
			t.Fatal(err)
		}
		tb.Restore(n, tc.state, 2*sec)
		if got := tb.Reusable(n, tc.dir, tc.flags); got != tc.want {
			t.Errorf("%s %s %s flags %#02x: Reusable %v, want %v", tc.fwd, tc.state, tc.dir, tc.flags, got, tc.want)
		}
		tb.Delete(n)
	}
	c := natConn(1, lvs.ProtoUDP)
	n, _ := tb.Insert(&c, sec)
	if tb.Reusable(n, DirOriginal, lvs.TCPSyn) {
		t.Errorf("a UDP connection is reusable")
	}
}

// TestTCPStateActiveTable pins IPVS's tcp_state_active_table (Linux 4.11+):
// ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK are active, every other state
// inactive; UDP and ICMP inactive.
