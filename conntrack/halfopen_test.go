package conntrack

import (
	"errors"
	"github.com/govs/govs/lvs"
	"slices"
	"testing"
	"time"
)

func TestStateHalfOpen(t *testing.T) {
	for s := State(0); s < 255; s++ {
		want := s == StateSynRecv || s == StateSynSent || s == StateSynAck
		if s.HalfOpen() != want {
			t.Errorf("%v.HalfOpen() = %v", s, !want)
		}
	}
}

// hoOrder returns the Service ids of the half-open list, head first, and
// checks its links.
func hoOrder(t *testing.T, tb *Table) []uint32 {
	t.Helper()
	var out []uint32
	prev := uint32(0)
	for r := tb.hoHead; r != 0; r = tb.slab[r-1].hoNext {
		c := &tb.slab[r-1]
		if c.hoPrev != prev || !c.live() || c.bits&bitHalfOpen == 0 || !c.State.HalfOpen() {
			t.Fatalf("half-open list broken at slot %d (%v, prev %d, want %d)", r-1, c.State, c.hoPrev, prev)
		}
		out = append(out, c.Service)
		prev = r
		if len(out) > len(tb.slab) {
			t.Fatal("half-open list loops")
		}
	}
	if tb.hoTail != prev || len(out) != tb.HalfOpen() {
		t.Fatalf("half-open list: tail %d want %d, %d entries, HalfOpen %d", tb.hoTail, prev, len(out), tb.HalfOpen())
	}
	return out
}

// Eviction takes the connection that entered a half-open state first;
// moving between half-open states keeps a connection's place, leaving and
// coming back puts it last.
func TestEvictionOrder(t *testing.T) {
	cc := newClassCounter(t)
	var removed []uint32
	tb := New(Config{Capacity: 8, OnState: cc.onState, OnRemove: func(c *Conn) { removed = append(removed, c.Service) }})
	now := int64(100 * sec)
	conns := make([]*Conn, 8)
	for i := range 8 {
		c := natConn(i, lvs.ProtoTCP)
		c.Service = uint32(i)
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = p
	}
	in, out := DirOriginal, DirReply
	tb.Track(conns[5], in, lvs.TCPSyn, now)            // 5: SYN_RECV
	tb.Track(conns[2], in, lvs.TCPSyn, now)            // 2: SYN_RECV
	tb.Restore(conns[7], StateSynSent, now+100*sec)    // 7: SYN_SENT
	tb.Track(conns[0], in, lvs.TCPSyn, now)            // 0: SYN_RECV
	tb.Track(conns[0], in, lvs.TCPAck, now)            // 0: ESTABLISHED, leaves
	tb.Track(conns[3], out, lvs.TCPSyn, now)           // 3: SYN_SENT (the server's SYN)
	tb.Restore(conns[5], StateSynAck, now+100*sec)     // 5: SYNACK, keeps its place
	tb.Track(conns[2], in, lvs.TCPAck, now)            // 2: ESTABLISHED
	tb.Restore(conns[2], StateSynRecv, now+100*sec)    // 2: back to SYN_RECV, now last
	tb.Track(conns[1], in, lvs.TCPSyn|lvs.TCPFin, now) // 1: SYN wins over FIN: SYN_RECV
	tb.Track(conns[1], in, lvs.TCPRst, now)            // 1: RST in SYN_RECV stays SYN_RECV
	tb.Track(conns[4], in, lvs.TCPAck, now)            // 4: ESTABLISHED
	tb.Track(conns[6], in, lvs.TCPFin, now)            // 6: CLOSE
	if got, want := hoOrder(t, tb), []uint32{5, 7, 3, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("half-open order %v, want %v", got, want)
	}
	cc.check(t, tb)

	// Each insert into the full table evicts the head.
	for i := range 5 {
		c := natConn(100+i, lvs.ProtoTCP)
		c.Service = uint32(100 + i)
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		tb.Track(p, in, lvs.TCPSyn, now) // the newcomers are half-open too, behind the old ones
	}
	if want := []uint32{5, 7, 3, 2, 1}; !slices.Equal(removed, want) {
		t.Fatalf("evicted %v, want %v", removed, want)
	}
	if got, want := hoOrder(t, tb), []uint32{100, 101, 102, 103, 104}; !slices.Equal(got, want) {
		t.Fatalf("half-open order %v, want %v", got, want)
	}
	if st := tb.Stats(); st.EvictedHalfOpen != 5 || st.Refused != 0 || st.Expired != 0 || st.Deleted != 0 {
		t.Fatalf("stats %+v", st)
	}
	cc.check(t, tb)
	for _, i := range []int{0, 4, 6} {
		c := natConn(i, lvs.ProtoTCP)
		if _, _, ok := tb.Lookup(&c.Orig, now); !ok {
			t.Fatalf("connection %d (not half-open) lost", i)
		}
	}
}

// A table full of connections past their handshake refuses new ones and
// removes nothing; a duplicate never evicts; an expired owner of the new
// tuple is reclaimed rather than a half-open connection evicted.
func TestFullOfEstablishedRefuses(t *testing.T) {
	cc := newClassCounter(t)
	removed := 0
	tb := New(Config{Capacity: 16, OnState: cc.onState, OnRemove: func(*Conn) { removed++ }})
	now := int64(sec)
	for i := range 16 {
		c := natConn(i, lvs.ProtoTCP)
		p, _ := tb.Insert(&c, now)
		tb.Track(p, DirOriginal, lvs.TCPSyn, now)
		tb.Track(p, DirReply, lvs.TCPSyn|lvs.TCPAck, now)
		tb.Track(p, DirOriginal, lvs.TCPAck, now)
		if p.State != StateEstablished {
			t.Fatalf("state %v", p.State)
		}
	}
	for i := 16; i < 32; i++ {
		c := natConn(i, lvs.ProtoTCP)
		if _, err := tb.Insert(&c, now); !errors.Is(err, ErrFull) {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if st := tb.Stats(); st.Refused != 16 || st.EvictedHalfOpen != 0 || removed != 0 || tb.HalfOpen() != 0 {
		t.Fatalf("stats %+v removed %d", st, removed)
	}

	// One of them is reset by the client and its SYN starts over:
	// SYN_RECV again (RST: CLOSE, then a reusing SYN replaces it).
	c3 := natConn(3, lvs.ProtoTCP)
	p, dir, _ := tb.Lookup(&c3.Orig, now)
	tb.Track(p, dir, lvs.TCPRst, now)
	if !tb.Reusable(p, dir, lvs.TCPSyn) {
		t.Fatalf("not reusable in %v", p.State)
	}
	tb.Delete(p)
	p, _ = tb.Insert(&c3, now)
	tb.Track(p, DirOriginal, lvs.TCPSyn, now)
	if tb.HalfOpen() != 1 || removed != 1 {
		t.Fatalf("half-open %d removed %d", tb.HalfOpen(), removed)
	}
	// A duplicate of a live tuple evicts nothing.
	dup := natConn(5, lvs.ProtoTCP)
	if _, err := tb.Insert(&dup, now); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if tb.HalfOpen() != 1 || removed != 1 || tb.Stats().EvictedHalfOpen != 0 {
		t.Fatal("a refused duplicate evicted a connection")
	}
	// The next new connection takes the half-open one's slot; the one after
	// is refused.
	c := natConn(40, lvs.ProtoTCP)
	if _, err := tb.Insert(&c, now); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := tb.Lookup(&c3.Orig, now); ok || tb.Stats().EvictedHalfOpen != 1 || tb.HalfOpen() != 0 {
		t.Fatal("the half-open connection was not evicted")
	}
	c = natConn(41, lvs.ProtoTCP)
	if _, err := tb.Insert(&c, now); !errors.Is(err, ErrFull) {
		t.Fatalf("insert with only established entries left: %v", err)
	}
	for i := range 16 {
		c := natConn(i, lvs.ProtoTCP)
		if _, _, ok := tb.Lookup(&c.Reply, now); ok != (i != 3) {
			t.Fatalf("connection %d: found %v", i, ok)
		}
	}
	cc.check(t, tb)
}

// Insert into a full table reclaims an expired owner of its tuple instead
// of evicting a live half-open connection.
func TestFullReclaimBeforeEvict(t *testing.T) {
	tb := New(Config{Capacity: 4, PressureTimeout: -1})
	now := int64(sec)
	for i := range 4 {
		c := natConn(i, lvs.ProtoTCP)
		if i == 0 {
			c.State = StateClose // 10 s
		} else {
			c.State = StateSynRecv // 60 s
		}
		tb.Insert(&c, now)
	}
	now += 20 * sec
	c := natConn(0, lvs.ProtoTCP) // connection 0's tuples, which expired
	if _, err := tb.Insert(&c, now); err != nil {
		t.Fatal(err)
	}
	if st := tb.Stats(); st.Expired != 1 || st.EvictedHalfOpen != 0 || tb.HalfOpen() != 3 {
		t.Fatalf("stats %+v half-open %d", st, tb.HalfOpen())
	}
}

// Under pressure the half-open timeout shortens, for connections entering
// a half-open state and for half-open connections refreshed; other states
// keep theirs, and the full timeout returns with the pressure's end.
func TestPressureTimeout(t *testing.T) {
	const capacity = 256 // pressure at 192 connections or more than 32 half-open
	tb := New(Config{Capacity: capacity})
	now := int64(1000 * sec)
	syn := func(i int) *Conn {
		t.Helper()
		c := natConn(i, lvs.ProtoTCP)
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		tb.Track(p, DirOriginal, lvs.TCPSyn, now)
		return p
	}
	var first *Conn
	for i := range 32 {
		p := syn(i)
		if p.Expires != now+60*sec || tb.UnderPressure() {
			t.Fatalf("conn %d: expires in %v, pressure %v", i, time.Duration(p.Expires-now), tb.UnderPressure())
		}
		if i == 0 {
			first = p
		}
	}
	// The 33rd half-open connection brings the pressure.
	p := syn(32)
	if !tb.UnderPressure() || p.Expires != now+3*sec {
		t.Fatalf("33rd: pressure %v, expires in %v", tb.UnderPressure(), time.Duration(p.Expires-now))
	}
	// Its deadline holds to the nanosecond.
	if _, _, ok := tb.Lookup(&p.Orig, now+3*sec-1); !ok {
		t.Fatal("gone before 3 s")
	}
	if _, _, ok := tb.Lookup(&p.Orig, now+3*sec); ok {
		t.Fatal("alive at 3 s")
	}
	// A retransmitted SYN refreshes the first one with the short timeout;
	// its server's SYN-ACK keeps it half-open (3 s).
	now += sec
	tb.Track(first, DirOriginal, lvs.TCPSyn, now)
	if first.Expires != now+3*sec {
		t.Fatalf("refreshed half-open: expires in %v", time.Duration(first.Expires-now))
	}
	tb.Track(first, DirReply, lvs.TCPSyn|lvs.TCPAck, now)
	if first.State != StateSynRecv || first.Expires != now+3*sec {
		t.Fatalf("after SYN-ACK: %v in %v", first.State, time.Duration(first.Expires-now))
	}
	// Touch (fast-path traffic) and Restore (synchronisation) of a
	// half-open connection get the short timeout too.
	c1 := natConn(1, lvs.ProtoTCP)
	p1, _, _ := tb.Lookup(&c1.Orig, now)
	tb.Restore(p1, StateSynSent, now+100*sec)
	if p1.Expires != now+3*sec {
		t.Fatalf("Restore under pressure: expires in %v", time.Duration(p1.Expires-now))
	}
	tb.Restore(p1, StateSynRecv, now+sec)
	if p1.Expires != now+sec {
		t.Fatalf("Restore under pressure, earlier expiry: in %v", time.Duration(p1.Expires-now))
	}
	tb.Touch(p1, now+sec)
	if p1.Expires != now+4*sec {
		t.Fatalf("Touch under pressure: expires in %v", time.Duration(p1.Expires-now))
	}
	// The client's ACK establishes the first one (15 min, pressure or not).
	tb.Track(first, DirOriginal, lvs.TCPAck, now)
	if first.State != StateEstablished || first.Expires != now+15*60*sec {
		t.Fatalf("established: %v in %v", first.State, time.Duration(first.Expires-now))
	}
	// 32 half-open left (33 minus the established one): the pressure is
	// gone, and refreshes get the full timeout again.
	if tb.HalfOpen() != 32 || tb.UnderPressure() {
		t.Fatalf("half-open %d, pressure %v", tb.HalfOpen(), tb.UnderPressure())
	}
	tb.Track(p1, DirOriginal, lvs.TCPSyn, now)
	if p1.Expires != now+60*sec {
		t.Fatalf("no pressure: expires in %v", time.Duration(p1.Expires-now))
	}
	tb.Restore(p1, StateSynSent, now+100*sec)
	if p1.Expires != now+100*sec {
		t.Fatalf("Restore without pressure: expires in %v", time.Duration(p1.Expires-now))
	}

	// Fill pressure: 3/4 of the table full of established connections.
	tb.Flush()
	for i := range 191 {
		c := natConn(i, lvs.ProtoTCP)
		c.State = StateEstablished
		tb.Insert(&c, now)
	}
	if tb.UnderPressure() {
		t.Fatal("pressure at 191 of 256")
	}
	p = syn(191) // the 192nd
	if !tb.UnderPressure() || p.Expires != now+3*sec || tb.HalfOpen() != 1 {
		t.Fatalf("192nd: pressure %v, expires in %v", tb.UnderPressure(), time.Duration(p.Expires-now))
	}
	c := natConn(192, lvs.ProtoUDP)
	p, _ = tb.Insert(&c, now)
	tb.Track(p, DirOriginal, 0, now)
	if p.Expires != now+300*sec {
		t.Fatalf("UDP under pressure: expires in %v", time.Duration(p.Expires-now))
	}
	// Inserted directly in a half-open state.
	c = natConn(193, lvs.ProtoTCP)
	c.State = StateSynAck
	p, _ = tb.Insert(&c, now)
	if p.Expires != now+3*sec {
		t.Fatalf("inserted SYNACK under pressure: expires in %v", time.Duration(p.Expires-now))
	}
}

func TestPressureTimeoutConfig(t *testing.T) {
	tests := []struct {
		name     string
		pressure time.Duration
		synRecv  time.Duration
		want     time.Duration
	}{
		{"default", 0, 0, DefaultPressureTimeout},
		{"longer", 10 * time.Second, 0, 10 * time.Second},
		{"configured shorter", 5 * time.Second, 2 * time.Second, 2 * time.Second},
		{"off", -1, 0, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{Capacity: 8, PressureTimeout: tc.pressure, Timeouts: Timeouts{SynRecv: tc.synRecv}})
			var p *Conn
			for i := range 6 { // 6 >= 3/4 of 8
				c := natConn(i, lvs.ProtoTCP)
				c.State = StateSynRecv
				p, _ = tb.Insert(&c, 0)
			}
			if !tb.UnderPressure() || p.Expires != int64(tc.want) {
				t.Fatalf("pressure %v, expires in %v, want %v", tb.UnderPressure(), time.Duration(p.Expires), tc.want)
			}
			// Restore caps only while the timeout is actually shortened.
			want := int64(tc.want)
			if tc.want == tb.Timeout(StateSynRecv) {
				want = 1000 * sec
			}
			tb.Restore(p, StateSynRecv, 1000*sec)
			if p.Expires != want {
				t.Fatalf("Restore: expires in %v, want %v", time.Duration(p.Expires), time.Duration(want))
			}
		})
	}
}

// A spoofed SYN flood many times the table's size: the oldest half-open
// entry always makes room, established connections all survive, and the
// half-open entries are gone a short timeout after the flood.
func TestFloodKeepsRoom(t *testing.T) {
	const capacity = 1 << 12
	cc := newClassCounter(t)
	tb := New(Config{Capacity: capacity, OnState: cc.onState})
	now := int64(sec)
	const established = capacity / 2
	for i := range established {
		c := natConn(i, lvs.ProtoTCP)
		p, _ := tb.Insert(&c, now)
		tb.Track(p, DirOriginal, lvs.TCPSyn, now)
		tb.Track(p, DirReply, lvs.TCPSyn|lvs.TCPAck, now)
		tb.Track(p, DirOriginal, lvs.TCPAck, now)
	}
	for i := range 10 * capacity {
		c := natConn(established+i, lvs.ProtoTCP)
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatalf("flood SYN %d: %v", i, err)
		}
		tb.Track(p, DirOriginal, lvs.TCPSyn, now)
		if i%64 == 0 {
			now += sec / 100 // 6400 SYN/s
			tb.Expire(now, capacity/100)
		}
	}
	if tb.Len() != capacity || tb.HalfOpen() != capacity-established {
		t.Fatalf("len %d half-open %d", tb.Len(), tb.HalfOpen())
	}
	for i := range established {
		c := natConn(i, lvs.ProtoTCP)
		if p, _, ok := tb.Lookup(&c.Orig, now); !ok || p.State != StateEstablished {
			t.Fatalf("established connection %d lost", i)
		}
	}
	// A legitimate client during the flood gets in and completes.
	c := natConn(1<<21, lvs.ProtoTCP)
	p, err := tb.Insert(&c, now)
	if err != nil {
		t.Fatal(err)
	}
	tb.Track(p, DirOriginal, lvs.TCPSyn, now)
	tb.Track(p, DirReply, lvs.TCPSyn|lvs.TCPAck, now)
	tb.Track(p, DirOriginal, lvs.TCPAck, now)
	if p.State != StateEstablished {
		t.Fatalf("legitimate connection: %v", p.State)
	}
	cc.check(t, tb)
	// After the flood: within the short timeout and one sweep, no half-open
	// entry is left.
	now += int64(DefaultPressureTimeout)
	tb.Expire(now, capacity)
	if tb.HalfOpen() != 0 || tb.Len() != established+1 {
		t.Fatalf("after the flood: len %d half-open %d", tb.Len(), tb.HalfOpen())
	}
	cc.check(t, tb)
}
