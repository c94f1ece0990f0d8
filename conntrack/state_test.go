package conntrack

import (
	"github.com/govs/govs/lvs"
	"testing"
	"time"
)

const (
	in  = DirOriginal
	out = DirReply
)

type step struct {
	dir   Direction
	flags lvs.TCPFlags
	want  State
}

func TestTCPStateMachine(t *testing.T) {
	SA := lvs.TCPSyn | lvs.TCPAck
	FA := lvs.TCPFin | lvs.TCPAck
	PA := lvs.TCPPsh | lvs.TCPAck
	tests := []struct {
		name  string
		fwd   lvs.Fwd
		steps []step
	}{
		{"nat client closes", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, PA, StateEstablished},
			{out, PA, StateEstablished},
			{in, FA, StateCloseWait},
			{out, lvs.TCPAck, StateCloseWait},
			{out, FA, StateTimeWait},
			{in, lvs.TCPAck, StateTimeWait},
		}},
		{"nat server closes", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{out, FA, StateFinWait},
			{in, lvs.TCPAck, StateFinWait},
			{in, FA, StateTimeWait},
			{out, lvs.TCPAck, StateTimeWait},
		}},
		{"nat client reset", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, lvs.TCPRst, StateClose},
			{in, lvs.TCPAck, StateClose},
		}},
		{"nat server reset", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{out, lvs.TCPRst | lvs.TCPAck, StateClose},
		}},
		{"nat server refuses", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, lvs.TCPRst | lvs.TCPAck, StateClose},
		}},
		// IPVS ignores a client RST in SYN_RECV (it may be spoofed).
		{"nat client rst in syn_recv", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPRst, StateSynRecv},
		}},
		// A packet without SYN, FIN, ACK or RST closes the connection, as in IPVS.
		{"nat no flags", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, lvs.TCPPsh, StateClose},
		}},
		{"nat server opens", lvs.FwdNAT, []step{
			{out, lvs.TCPSyn, StateSynSent},
			{in, SA, StateEstablished},
		}},
		{"nat close_wait then server fin", lvs.FwdNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, FA, StateCloseWait},
			{in, lvs.TCPSyn, StateSynRecv},
		}},
		{"fullnat like nat", lvs.FwdFullNAT, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{out, SA, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, FA, StateCloseWait},
			{out, FA, StateTimeWait},
		}},
		{"dr client closes", lvs.FwdDR, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, PA, StateEstablished},
			{in, FA, StateFinWait},
			{in, lvs.TCPAck, StateFinWait},
		}},
		{"dr fin in syn_recv", lvs.FwdDR, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, FA, StateTimeWait},
		}},
		{"tun reset", lvs.FwdTun, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{in, lvs.TCPRst, StateClose},
		}},
		// Input-only: a RST in SYN_RECV keeps SYN_RECV, in SYNACK closes.
		{"dr rst in syn_recv", lvs.FwdDR, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPRst, StateSynRecv},
		}},
		// A reply seen on a DR connection switches it to the in/out tables,
		// as IPVS clears IP_VS_CONN_F_NOOUTPUT.
		{"dr sees a reply", lvs.FwdDR, []step{
			{in, lvs.TCPSyn, StateSynRecv},
			{in, lvs.TCPAck, StateEstablished},
			{out, FA, StateFinWait},
			{in, FA, StateTimeWait},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{Capacity: 16})
			now := int64(1000 * sec)
			var c Conn
			if tc.fwd == lvs.FwdDR || tc.fwd == lvs.FwdTun {
				c = drConn(1, lvs.ProtoTCP)
			} else {
				c = natConn(1, lvs.ProtoTCP)
			}
			c.Fwd = tc.fwd
			p, err := tb.Insert(&c, now)
			if err != nil {
				t.Fatal(err)
			}
			to := DefaultTimeouts()
			for i, s := range tc.steps {
				now += sec
				tb.Track(p, s.dir, s.flags, now)
				if p.State != s.want {
					t.Fatalf("step %d (%v flags %#x): state %v, want %v", i, s.dir, s.flags, p.State, s.want)
				}
				if want := now + int64(to.For(s.want)); p.Expires != want {
					t.Fatalf("step %d: expires %d, want %d", i, p.Expires, want)
				}
			}
			// The last state's timeout: alive one nanosecond before, gone at it.
			deadline := p.Expires
			if _, _, ok := tb.Lookup(&c.Orig, deadline-1); !ok {
				t.Fatal("connection gone before its timeout")
			}
			if _, _, ok := tb.Lookup(&c.Orig, deadline); ok {
				t.Fatal("connection still found at its timeout")
			}
		})
	}
}

// Every state's timeout is applied, and Lookup honours it to the nanosecond.
func TestEveryStateTimeout(t *testing.T) {
	to := DefaultTimeouts()
	want := map[State]time.Duration{
		StateNone: 2 * time.Second, StateEstablished: 15 * time.Minute,
		StateSynSent: 2 * time.Minute, StateSynRecv: time.Minute,
		StateFinWait: 2 * time.Minute, StateTimeWait: 2 * time.Minute,
		StateClose: 10 * time.Second, StateCloseWait: time.Minute,
		StateLastAck: 30 * time.Second, StateListen: 2 * time.Minute,
		StateSynAck: 2 * time.Minute, StateUDP: 5 * time.Minute, StateICMP: time.Minute,
	}
	for s := State(0); int(s) < numStates; s++ {
		if got := to.For(s); got != want[s] {
			t.Errorf("default timeout of %v = %v, want %v", s, got, want[s])
		}
		tb := New(Config{Capacity: 4})
		c := natConn(7, lvs.ProtoTCP)
		c.State = s
		now := int64(5 * sec)
		if _, err := tb.Insert(&c, now); err != nil {
			t.Fatal(err)
		}
		d := int64(want[s])
		if _, _, ok := tb.Lookup(&c.Reply, now+d-1); !ok {
			t.Errorf("%v: gone before %v", s, want[s])
		}
		if _, _, ok := tb.Lookup(&c.Reply, now+d); ok {
			t.Errorf("%v: alive at %v", s, want[s])
		}
		if n := tb.Expire(now+d-1, 4); n != 0 {
			t.Errorf("%v: Expire removed %d before the timeout", s, n)
		}
		if n := tb.Expire(now+d, 4); n != 1 || tb.Len() != 0 {
			t.Errorf("%v: Expire removed %d at the timeout, len %d", s, n, tb.Len())
		}
	}
}

func TestUDPAndICMP(t *testing.T) {
	tb := New(Config{Capacity: 8})
	now := int64(sec)
	u := natConn(1, lvs.ProtoUDP)
	p, _ := tb.Insert(&u, now)
	tb.Track(p, in, 0, now)
	if p.State != StateUDP || p.Expires != now+300*sec {
		t.Fatalf("udp: state %v expires %d", p.State, p.Expires)
	}
	now += 299 * sec
	c, dir, ok := tb.Lookup(&u.Reply, now)
	if !ok || dir != out || c != p {
		t.Fatal("udp reply not found")
	}
	tb.Track(c, dir, 0xff, now) // flags mean nothing for UDP
	if p.State != StateUDP || p.Expires != now+300*sec {
		t.Fatalf("udp refresh: state %v expires %d", p.State, p.Expires)
	}
	if _, _, ok := tb.Lookup(&u.Orig, now+300*sec); ok {
		t.Fatal("udp alive past its timeout")
	}

	ic := natConn(2, lvs.ProtoICMP)
	p, _ = tb.Insert(&ic, now)
	tb.Track(p, in, 0, now)
	if p.State != StateICMP || p.Expires != now+60*sec {
		t.Fatalf("icmp: state %v expires %d", p.State, p.Expires)
	}
}

func TestSetTimeouts(t *testing.T) {
	to := DefaultTimeouts()
	to.Set(time.Hour, 0, 0)
	if to.Established != time.Hour || to.FinWait != 2*time.Minute || to.UDP != 5*time.Minute {
		t.Fatalf("Set(tcp): %+v", to)
	}
	to.Set(0, 30*time.Second, 10*time.Second)
	if to.Established != time.Hour || to.FinWait != 30*time.Second || to.UDP != 10*time.Second {
		t.Fatalf("Set(tcpfin, udp): %+v", to)
	}

	tb := New(Config{Capacity: 4, Timeouts: Timeouts{Established: time.Hour}})
	if got := tb.Timeouts(); got.Established != time.Hour || got.SynRecv != time.Minute {
		t.Fatalf("zero fields should take defaults: %+v", got)
	}
	c := natConn(1, lvs.ProtoUDP)
	p, _ := tb.Insert(&c, 0)
	tb.Track(p, in, 0, 0)
	if p.Expires != 300*sec {
		t.Fatalf("udp expires %d", p.Expires)
	}
	var nt Timeouts
	nt.Set(0, 0, 7*time.Second)
	tb.SetTimeouts(nt)
	if p.Expires != 300*sec {
		t.Fatal("SetTimeouts changed an existing deadline")
	}
	tb.Track(p, in, 0, sec)
	if p.Expires != 8*sec {
		t.Fatalf("after SetTimeouts: expires %d, want %d", p.Expires, 8*sec)
	}
}

func TestStateStrings(t *testing.T) {
	want := "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK UDP ICMP"
	got := ""
	for s := State(0); int(s) < numStates; s++ {
		if s > 0 {
			got += " "
		}
		got += s.String()
	}
	if got != want {
		t.Fatalf("got %q", got)
	}
	if State(200).String() != "ERR!" {
		t.Fatal("unknown state")
	}
}

// The class callbacks follow a connection's life exactly.
func TestClassCallbacksLifecycle(t *testing.T) {
	cc := newClassCounter(t)
	tb := New(Config{Capacity: 4, OnState: cc.onState})
	c := natConn(3, lvs.ProtoTCP) // dest 3
	p, _ := tb.Insert(&c, 0)
	if cc.inactive[3] != 1 || cc.active[3] != 0 {
		t.Fatalf("after insert: %d/%d", cc.active[3], cc.inactive[3])
	}
	tb.Track(p, in, lvs.TCPSyn, 0)
	if cc.active[3] != 1 || cc.inactive[3] != 0 {
		t.Fatalf("after syn: %d/%d", cc.active[3], cc.inactive[3])
	}
	tb.Track(p, in, lvs.TCPAck, 0)
	tb.Track(p, in, lvs.TCPFin|lvs.TCPAck, 0)
	if cc.active[3] != 0 || cc.inactive[3] != 1 {
		t.Fatalf("after fin: %d/%d", cc.active[3], cc.inactive[3])
	}
	tb.Delete(p)
	if cc.active[3] != 0 || cc.inactive[3] != 0 {
		t.Fatalf("after delete: %d/%d", cc.active[3], cc.inactive[3])
	}
}
