package conntrack

import (
	"cmp"
	"errors"
	"github.com/govs/govs/lvs"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/govs/govs/inet"
)

// Conn, Tuple and the template entry must stay pointer-free: that is what
// keeps the slab out of the garbage collector's mark phase.
func TestNoPointers(t *testing.T) {
	var check func(path string, ty reflect.Type)
	check = func(path string, ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.String, reflect.Interface,
			reflect.Chan, reflect.Func, reflect.UnsafePointer:
			t.Errorf("%s is a %v", path, ty.Kind())
		case reflect.Array:
			check(path+"[]", ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				f := ty.Field(i)
				check(path+"."+f.Name, f.Type)
			}
		}
	}
	check("Conn", reflect.TypeFor[Conn]())
	check("tmplEntry", reflect.TypeFor[tmplEntry]())
}

// The slab's footprint is documented (doc.go, "Layout"): growing Conn must
// be deliberate.
func TestConnSize(t *testing.T) {
	if got := unsafe.Sizeof(Conn{}); got != 144 {
		t.Fatalf("Conn is %d bytes; update doc.go (and this test) if that is meant", got)
	}
}

func TestLookupBothDirections(t *testing.T) {
	tb := New(Config{Capacity: 8})
	c := natConn(1, lvs.ProtoTCP)
	c.LAddr, c.LPort = lip, 4000
	p, err := tb.Insert(&c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Orig != c.Orig || p.Reply != c.Reply || p.LAddr != lip || p.LPort != 4000 {
		t.Fatal("Insert did not copy the connection")
	}
	if got, dir, ok := tb.Lookup(&c.Orig, 1); !ok || got != p || dir != DirOriginal {
		t.Fatalf("orig: %v %v %v", got, dir, ok)
	}
	if got, dir, ok := tb.Lookup(&c.Reply, 1); !ok || got != p || dir != DirReply {
		t.Fatalf("reply: %v %v %v", got, dir, ok)
	}
	// The swapped original tuple is not the reply tuple under NAT.
	sw := Tuple{Src: c.Orig.Dst, Dst: c.Orig.Src, SrcPort: c.Orig.DstPort, DstPort: c.Orig.SrcPort, Proto: lvs.ProtoTCP}
	if _, _, ok := tb.Lookup(&sw, 1); ok {
		t.Fatal("swapped tuple found")
	}
	udp := c.Orig
	udp.Proto = lvs.ProtoUDP
	if _, _, ok := tb.Lookup(&udp, 1); ok {
		t.Fatal("protocol ignored")
	}

	d := drConn(2, lvs.ProtoTCP)
	pd, _ := tb.Insert(&d, 0)
	if pd.Flags&FlagNoOutput == 0 {
		t.Fatal("DR connection without FlagNoOutput")
	}
	if got, _, ok := tb.Lookup(&d.Orig, 1); !ok || got != pd {
		t.Fatal("dr not found")
	}
	if tb.Len() != 2 {
		t.Fatalf("len %d", tb.Len())
	}

	// IPv6 tuples.
	c6 := Conn{Orig: Tuple{Src: inet.AddrFromSlice16([]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}), Dst: vip6, SrcPort: 5, DstPort: 443, Proto: lvs.ProtoTCP}, Fwd: lvs.FwdDR}
	p6, _ := tb.Insert(&c6, 0)
	if got, _, ok := tb.Lookup(&c6.Orig, 1); !ok || got != p6 {
		t.Fatal("ipv6 not found")
	}
}

func TestInsertDuplicates(t *testing.T) {
	var removed []uint32
	tb := New(Config{Capacity: 8, OnRemove: func(c *Conn) { removed = append(removed, c.Service) }})
	a := natConn(1, lvs.ProtoTCP)
	a.Service = 100
	if _, err := tb.Insert(&a, 0); err != nil {
		t.Fatal(err)
	}
	b := a
	b.Service = 101
	if _, err := tb.Insert(&b, sec); !errors.Is(err, ErrExists) {
		t.Fatalf("same orig: %v", err)
	}
	// A different original tuple whose reply tuple is taken.
	b.Orig.SrcPort++
	if _, err := tb.Insert(&b, sec); !errors.Is(err, ErrExists) {
		t.Fatalf("same reply: %v", err)
	}
	// Reply == Orig is refused.
	b.Reply = b.Orig
	if _, err := tb.Insert(&b, sec); !errors.Is(err, ErrExists) {
		t.Fatalf("reply == orig: %v", err)
	}
	if tb.Stats().Duplicates != 3 || len(removed) != 0 {
		t.Fatalf("stats %+v removed %v", tb.Stats(), removed)
	}
	// Once a has expired (NONE: 2 s), its tuples are reclaimed by Insert.
	b = a
	b.Service = 102
	p, err := tb.Insert(&b, 2*sec)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != 100 || tb.Len() != 1 || p.Service != 102 {
		t.Fatalf("reclaim: removed %v len %d", removed, tb.Len())
	}
	if got, _, ok := tb.Lookup(&a.Reply, 2*sec); !ok || got.Service != 102 {
		t.Fatal("new connection not found by its reply tuple")
	}
}

// A full table makes room by evicting half-open connections, oldest first,
// and refuses new connections once only connections past their handshake
// remain; those keep working throughout.
func TestCapacity(t *testing.T) {
	cc := newClassCounter(t)
	var removed []int
	tb := New(Config{
		Capacity: 100, OnState: cc.onState,
		OnRemove:        func(c *Conn) { removed = append(removed, int(c.Service)) },
		PressureTimeout: -1, // the 60 s SYN_RECV timeout throughout
	})
	now := int64(0)
	for i := range 100 {
		c := natConn(i, lvs.ProtoTCP)
		c.Service = uint32(i)
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		tb.Track(p, DirOriginal, lvs.TCPSyn, now) // SYN_RECV: 60 s
	}
	if tb.HalfOpen() != 100 {
		t.Fatalf("half-open %d, want 100", tb.HalfOpen())
	}
	// Half of them (the older half) get established and stay for 15 min.
	now += 30 * sec
	for i := range 50 {
		c := natConn(i, lvs.ProtoTCP)
		p, dir, ok := tb.Lookup(&c.Reply, now)
		if !ok {
			t.Fatalf("existing connection %d lost", i)
		}
		tb.Track(p, dir, lvs.TCPSyn|lvs.TCPAck, now)
		tb.Track(p, DirOriginal, lvs.TCPAck, now)
	}
	if tb.HalfOpen() != 50 {
		t.Fatalf("half-open %d, want 50", tb.HalfOpen())
	}
	cc.check(t, tb)
	// Full: 50 new connections (in NONE, not half-open) replace the 50
	// half-open ones, oldest first.
	for i := 100; i < 150; i++ {
		c := natConn(i, lvs.ProtoTCP)
		c.Service = uint32(i)
		if _, err := tb.Insert(&c, now); err != nil {
			t.Fatalf("insert %d into a full table with half-open entries: %v", i, err)
		}
	}
	for k, id := range removed {
		if id != 50+k {
			t.Fatalf("eviction %d removed connection %d, want %d", k, id, 50+k)
		}
	}
	if st := tb.Stats(); len(removed) != 50 || st.EvictedHalfOpen != 50 || st.Refused != 0 || tb.Len() != 100 || tb.HalfOpen() != 0 {
		t.Fatalf("removed %d, stats %+v, len %d, half-open %d", len(removed), st, tb.Len(), tb.HalfOpen())
	}
	cc.check(t, tb)
	// No half-open entry left: refused, and nothing is removed.
	for i := 150; i < 200; i++ {
		c := natConn(i, lvs.ProtoTCP)
		if _, err := tb.Insert(&c, now); !errors.Is(err, ErrFull) {
			t.Fatalf("insert %d into a table without half-open entries: %v", i, err)
		}
	}
	if st := tb.Stats(); st.Refused != 50 || len(removed) != 50 {
		t.Fatalf("stats %+v removed %d", st, len(removed))
	}
	// After the NONE timeout (2 s) and one sweep, room for 50 again.
	now += 3 * sec
	if n := tb.Expire(now, 100); n != 50 {
		t.Fatalf("expired %d, want 50", n)
	}
	cc.check(t, tb)
	for i := 150; i < 200; i++ {
		c := natConn(i, lvs.ProtoTCP)
		if _, err := tb.Insert(&c, now); err != nil {
			t.Fatalf("insert %d after expiry: %v", i, err)
		}
	}
	c := natConn(200, lvs.ProtoTCP)
	if _, err := tb.Insert(&c, now); !errors.Is(err, ErrFull) {
		t.Fatalf("table should be full again: %v", err)
	}
	for i := range 50 {
		c := natConn(i, lvs.ProtoTCP)
		if p, _, ok := tb.Lookup(&c.Orig, now); !ok || p.State != StateEstablished {
			t.Fatalf("established connection %d lost", i)
		}
	}
	cc.check(t, tb)
	tb.Flush()
	cc.check(t, tb)
	if tb.Len() != 0 || tb.HalfOpen() != 0 {
		t.Fatalf("flush left %d connections, %d half-open", tb.Len(), tb.HalfOpen())
	}
}

func TestExpireIsIncremental(t *testing.T) {
	tb := New(Config{Capacity: 1000})
	for i := range 1000 {
		c := natConn(i, lvs.ProtoUDP)
		tb.Insert(&c, 0) // NONE: 2 s
	}
	now := 10 * sec
	total := 0
	for call := range 10 {
		n := tb.Expire(now, 100)
		if n != 100 {
			t.Fatalf("call %d removed %d, want 100 (budget)", call, n)
		}
		total += n
	}
	if total != 1000 || tb.Len() != 0 {
		t.Fatalf("total %d len %d", total, tb.Len())
	}
	if tb.Expire(now, 0) != 0 {
		t.Fatal("zero budget removed something")
	}
}

func TestReusable(t *testing.T) {
	tb := New(Config{Capacity: 4})
	tests := []struct {
		fwd   lvs.Fwd
		state State
		dir   Direction
		flags lvs.TCPFlags
		proto lvs.Proto
		want  bool
	}{
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		{lvs.FwdNAT, StateClose, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		{lvs.FwdDR, StateTimeWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		{lvs.FwdDR, StateClose, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		// DR/TUN end in FIN_WAIT when the client closes.
		{lvs.FwdDR, StateFinWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		{lvs.FwdTun, StateFinWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, true},
		// NAT in FIN_WAIT: the server closed, the client still has to.
		{lvs.FwdNAT, StateFinWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateCloseWait, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateEstablished, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateSynRecv, DirOriginal, lvs.TCPSyn, lvs.ProtoTCP, false}, // SYN retransmission
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn | lvs.TCPAck, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPSyn | lvs.TCPRst, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateTimeWait, DirOriginal, lvs.TCPAck, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateTimeWait, DirReply, lvs.TCPSyn, lvs.ProtoTCP, false},
		{lvs.FwdNAT, StateUDP, DirOriginal, lvs.TCPSyn, lvs.ProtoUDP, false},
	}
	for i, tc := range tests {
		c := natConn(i, tc.proto)
		if tc.fwd == lvs.FwdDR || tc.fwd == lvs.FwdTun {
			c = drConn(i, tc.proto)
		}
		c.Fwd = tc.fwd
		c.State = tc.state
		p, err := tb.Insert(&c, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := tb.Reusable(p, tc.dir, tc.flags); got != tc.want {
			t.Errorf("%v %v %v flags %#x: Reusable %v, want %v", tc.fwd, tc.state, tc.dir, tc.flags, got, tc.want)
		}
		tb.Delete(p)
	}
}

// A client reuses its port: the caller deletes the old connection and a new
// one starts at once with the same tuples.
func TestReuseFlow(t *testing.T) {
	cc := newClassCounter(t)
	tb := New(Config{Capacity: 4, OnState: cc.onState})
	c := natConn(1, lvs.ProtoTCP)
	p, _ := tb.Insert(&c, 0)
	for _, s := range []step{{in, lvs.TCPSyn, 0}, {in, lvs.TCPAck, 0}, {in, lvs.TCPFin | lvs.TCPAck, 0}, {out, lvs.TCPFin | lvs.TCPAck, 0}} {
		tb.Track(p, s.dir, s.flags, 0)
	}
	if p.State != StateTimeWait {
		t.Fatalf("state %v", p.State)
	}
	old, dir, ok := tb.Lookup(&c.Orig, sec)
	if !ok || !tb.Reusable(old, dir, lvs.TCPSyn) {
		t.Fatal("not reusable")
	}
	tb.Delete(old)
	c.Dest = 2
	p, err := tb.Insert(&c, sec)
	if err != nil {
		t.Fatal(err)
	}
	tb.Track(p, DirOriginal, lvs.TCPSyn, sec)
	if p.State != StateSynRecv || p.Dest != 2 || tb.Len() != 1 {
		t.Fatalf("new connection: %v dest %d len %d", p.State, p.Dest, tb.Len())
	}
	cc.check(t, tb)
}

func TestDeleteForeignPointer(t *testing.T) {
	tb := New(Config{Capacity: 4})
	other := New(Config{Capacity: 4})
	c := natConn(1, lvs.ProtoTCP)
	p, _ := tb.Insert(&c, 0)
	q, _ := other.Insert(&c, 0)
	cp := *p
	tb.Delete(&cp) // a copy
	tb.Delete(q)   // another table's
	tb.Delete(nil)
	if tb.Len() != 1 || other.Len() != 1 {
		t.Fatal("foreign pointer deleted something")
	}
	tb.Delete(p)
	tb.Delete(p) // twice: the slot is free now
	if tb.Len() != 0 {
		t.Fatal("len")
	}
}

func TestNewClampsCapacity(t *testing.T) {
	if New(Config{}).Cap() != DefaultCapacity {
		t.Fatal("default capacity")
	}
	if tb := New(Config{Capacity: 1}); tb.Cap() != 1 || tb.TemplateCap() != 16 {
		t.Fatal("tiny capacity")
	}
}

// Property test: random inserts, deletes, refreshes, restores, expiry
// sweeps, flushes and clock jumps against a map model; every removal must be
// one the model allows (an expired connection, a Delete, or the eviction of
// the model's oldest half-open connection by an Insert into a full table),
// every lookup must agree with the model, every deadline must be the one
// the state and the pressure give, and HalfOpen and the half-open list must
// match the model after every operation.
func TestRandomAgainstModel(t *testing.T) {
	for seed := range uint64(8) {
		runModel(t, seed, 50000, sparse)
		runModel(t, seed, 50000, crowded)
	}
}

// modelShape sets how often tuples clash and how fast the clock runs.
type modelShape struct {
	addrs, ports int   // client addresses and source ports tuples are drawn from
	maxJump      int64 // the most the clock advances in one step
	full         bool  // the run must fill the table: evictions and refusals
}

var (
	// sparse: few tuples, long clock jumps: duplicates, cross-direction
	// clashes, reuse and expiry all the time; the table rarely fills.
	sparse = modelShape{addrs: 6, ports: 8, maxJump: 3 * 60 * sec}
	// crowded: many tuples, a slow clock: the table is often full and
	// under pressure, so Insert evicts and refuses.
	crowded = modelShape{addrs: 64, ports: 64, maxJump: 4 * sec, full: true}
)

type modelConn struct {
	orig, reply Tuple
	hasReply    bool
	expires     int64
	state       State
	hoSeq       uint64 // when it last entered a half-open state
}

func runModel(t *testing.T, seed uint64, ops int, shape modelShape) {
	rng := rand.New(rand.NewPCG(seed, 99))
	const capacity = 64
	var (
		now       int64
		model     = map[uint32]*modelConn{} // by Service (the id)
		owner     = map[Tuple]uint32{}
		deleting  uint32
		evictOK   uint32 // the connection Insert may evict
		flushing  bool
		nextID    uint32 = 1
		hoSeq     uint64
		pressured int
	)
	cc := newClassCounter(t)
	tb := New(Config{
		Capacity: capacity,
		OnState:  cc.onState,
		OnRemove: func(c *Conn) {
			m := model[c.Service]
			if m == nil {
				t.Fatalf("seed %d: removed unknown connection %d", seed, c.Service)
			}
			if c.Service != deleting && c.Service != evictOK && !flushing && m.expires > now {
				t.Fatalf("seed %d: live connection %d removed (expires %d, now %d)", seed, c.Service, m.expires, now)
			}
			delete(owner, m.orig)
			if m.hasReply {
				delete(owner, m.reply)
			}
			delete(model, c.Service)
		},
	})
	// A small tuple space, shared by original and reply tuples, so that
	// duplicates, cross-direction clashes and reuse are frequent.
	tuple := func() Tuple {
		return Tuple{
			Src: clientAddr(rng.IntN(shape.addrs)), Dst: vip,
			SrcPort: uint16(rng.IntN(shape.ports)), DstPort: uint16(rng.IntN(2)), Proto: lvs.ProtoTCP,
		}
	}
	ids := func() []uint32 {
		out := make([]uint32, 0, len(model))
		for id := range model {
			out = append(out, id)
		}
		slices.Sort(out) // map order is random: keep runs reproducible
		return out
	}
	setState := func(m *modelConn, s State) {
		if s.HalfOpen() && !m.state.HalfOpen() {
			hoSeq++
			m.hoSeq = hoSeq
		}
		m.state = s
	}
	// The model's half-open connections, oldest first.
	halfOpen := func() []uint32 {
		var out []uint32
		for id, m := range model {
			if m.state.HalfOpen() {
				out = append(out, id)
			}
		}
		slices.SortFunc(out, func(a, b uint32) int { return cmp.Compare(model[a].hoSeq, model[b].hoSeq) })
		return out
	}
	// The timeout the documented rule gives state s now: pressure at 48
	// connections (3/4 of 64) or more than 16 half-open (max(64/8, 16)).
	defaults := DefaultTimeouts()
	pressure := func() bool { return len(model) >= 48 || len(halfOpen()) > 16 }
	timeout := func(s State) int64 {
		d := int64(defaults.For(s))
		if s.HalfOpen() && pressure() {
			d = min(d, int64(DefaultPressureTimeout))
		}
		return d
	}
	for op := range ops {
		switch r := rng.IntN(100); {
		case r < 35: // insert
			c := Conn{Orig: tuple(), Service: nextID, Dest: uint32(rng.IntN(8))}
			if rng.IntN(4) > 0 {
				c.Reply = tuple()
			} else {
				c.Fwd = lvs.FwdDR
			}
			c.State = State(rng.IntN(numStates))
			full := len(model) == capacity
			victim := uint32(0)
			if ho := halfOpen(); len(ho) > 0 {
				victim = ho[0]
			}
			clash := false
			check := func(k Tuple) {
				if id, ok := owner[k]; ok && model[id].expires > now {
					clash = true
				}
			}
			check(c.Orig)
			if c.Reply != (Tuple{}) {
				check(c.Reply)
				clash = clash || c.Reply == c.Orig
			}
			st0 := tb.Stats()
			evictOK = victim
			p, err := tb.Insert(&c, now)
			evictOK = 0
			st1 := tb.Stats()
			evicted, reclaimed := st1.EvictedHalfOpen-st0.EvictedHalfOpen, st1.Expired-st0.Expired
			switch {
			case full && victim == 0:
				if !errors.Is(err, ErrFull) {
					t.Fatalf("seed %d op %d: insert into a full table without half-open entries: %v", seed, op, err)
				}
			case clash:
				if !errors.Is(err, ErrExists) || evicted != 0 {
					t.Fatalf("seed %d op %d: insert of a live tuple: %v, %d evicted", seed, op, err, evicted)
				}
			case err != nil:
				t.Fatalf("seed %d op %d: insert: %v", seed, op, err)
			case full && reclaimed == 0:
				if evicted != 1 || model[victim] != nil {
					t.Fatalf("seed %d op %d: insert into a full table evicted %d, oldest half-open %d still there: %v",
						seed, op, evicted, victim, model[victim] != nil)
				}
			case evicted != 0:
				t.Fatalf("seed %d op %d: evicted with room (full %v, reclaimed %d)", seed, op, full, reclaimed)
			}
			if err == nil {
				// OnRemove has already dropped reclaimed owners.
				m := &modelConn{orig: c.Orig, reply: c.Reply, hasReply: c.Reply != (Tuple{}), expires: p.Expires}
				if _, taken := owner[c.Orig]; taken {
					t.Fatalf("seed %d op %d: orig tuple still owned after insert", seed, op)
				}
				model[nextID] = m
				setState(m, p.State)
				if want := now + timeout(p.State); p.Expires != want {
					t.Fatalf("seed %d op %d: inserted in %v expires in %d, want %d", seed, op, p.State, p.Expires-now, want-now)
				}
				owner[c.Orig] = nextID
				if m.hasReply {
					owner[c.Reply] = nextID
				}
				nextID++
			}
		case r < 50: // delete
			if len(model) == 0 {
				continue
			}
			all := ids()
			id := all[rng.IntN(len(all))]
			m := model[id]
			c, _, ok := tb.Lookup(&m.orig, now)
			if m.expires <= now {
				if ok {
					t.Fatalf("seed %d op %d: expired connection found", seed, op)
				}
				continue
			}
			if !ok || c.Service != id {
				t.Fatalf("seed %d op %d: live connection %d not found", seed, op, id)
			}
			deleting = id
			tb.Delete(c)
			deleting = 0
			if model[id] != nil {
				t.Fatalf("seed %d op %d: Delete did not call OnRemove", seed, op)
			}
		case r < 70: // track a packet on a random tuple
			k := tuple()
			c, dir, ok := tb.Lookup(&k, now)
			id, owned := owner[k]
			want := owned && model[id].expires > now
			if ok != want {
				t.Fatalf("seed %d op %d: lookup %v, model %v", seed, op, ok, want)
			}
			if !ok {
				continue
			}
			m := model[id]
			if c.Service != id || (dir == DirOriginal) != (m.orig == k) {
				t.Fatalf("seed %d op %d: lookup found %d dir %v, want %d", seed, op, c.Service, dir, id)
			}
			flags := lvs.TCPFlags(rng.IntN(32))
			if tb.Reusable(c, dir, flags) {
				// The dataplane deletes and schedules afresh.
				deleting = id
				tb.Delete(c)
				deleting = 0
				continue
			}
			tb.Track(c, dir, flags, now)
			setState(m, c.State)
			if want := now + timeout(c.State); c.Expires != want {
				t.Fatalf("seed %d op %d: tracked into %v expires in %d, want %d", seed, op, c.State, c.Expires-now, want-now)
			}
			m.expires = c.Expires
		case r < 74: // synchronisation or fast-path traffic on a live connection
			if len(model) == 0 {
				continue
			}
			all := ids()
			id := all[rng.IntN(len(all))]
			m := model[id]
			c, _, ok := tb.Lookup(&m.orig, now)
			if !ok {
				continue
			}
			if rng.IntN(2) == 0 {
				s := State(rng.IntN(numStates))
				exp := now + 1 + rng.Int64N(200*sec)
				tb.Restore(c, s, exp)
				setState(m, s)
				if s.HalfOpen() && pressure() {
					exp = min(exp, now+timeout(s))
				}
				if c.State != s || c.Expires != exp {
					t.Fatalf("seed %d op %d: restored %v expires in %d, want %v in %d", seed, op, c.State, c.Expires-now, s, exp-now)
				}
			} else {
				seen := now - rng.Int64N(10*sec)
				want := max(m.expires, seen+timeout(m.state))
				tb.Touch(c, seen)
				if c.Expires != want {
					t.Fatalf("seed %d op %d: touched %v expires in %d, want %d", seed, op, c.State, c.Expires-now, want-now)
				}
			}
			m.expires = c.Expires
		case r < 85: // time passes
			now += rng.Int64N(shape.maxJump)
		case r < 97: // sweep
			tb.Expire(now, 1+rng.IntN(capacity))
		case r < 99:
			cc.check(t, tb)
		default:
			if rng.IntN(10) == 0 {
				flushing = true
				tb.Flush()
				flushing = false
				if len(model) != 0 {
					t.Fatalf("seed %d op %d: Flush left %d in the model", seed, op, len(model))
				}
			}
		}
		if tb.Len() != len(model) {
			t.Fatalf("seed %d op %d: len %d, model %d", seed, op, tb.Len(), len(model))
		}
		ho := halfOpen()
		if tb.HalfOpen() != len(ho) {
			t.Fatalf("seed %d op %d: HalfOpen %d, model %d", seed, op, tb.HalfOpen(), len(ho))
		}
		if got := hoOrder(t, tb); !slices.Equal(got, ho) {
			t.Fatalf("seed %d op %d: half-open list %v, model %v", seed, op, got, ho)
		}
		if tb.UnderPressure() {
			pressured++
		}
		if tb.UnderPressure() != pressure() {
			t.Fatalf("seed %d op %d: UnderPressure %v with %d connections, %d half-open", seed, op, tb.UnderPressure(), len(model), len(ho))
		}
	}
	// The run must have exercised what it checks.
	if st := tb.Stats(); shape.full && (st.EvictedHalfOpen == 0 || st.Refused == 0 || pressured == 0) {
		t.Fatalf("seed %d: %d evictions, %d refusals, %d operations under pressure", seed, st.EvictedHalfOpen, st.Refused, pressured)
	}
	t.Logf("seed %d: %+v, %d of %d operations under pressure", seed, tb.Stats(), pressured, ops)
	// Final census: every model connection is found iff alive.
	for id, m := range model {
		c, _, ok := tb.Lookup(&m.orig, now)
		if ok != (m.expires > now) || (ok && c.Service != id) {
			t.Fatalf("seed %d: final lookup of %d: %v", seed, id, ok)
		}
	}
	cc.check(t, tb)
	now += 3600 * sec
	tb.Expire(now, capacity)
	if tb.Len() != 0 || len(model) != 0 || tb.HalfOpen() != 0 || tb.hoHead != 0 || tb.hoTail != 0 {
		t.Fatalf("seed %d: %d (%d half-open) left after a full sweep far in the future", seed, tb.Len(), tb.HalfOpen())
	}
	cc.check(t, tb)
}

// The index alone, at high load with heavy churn, against a map.
func TestIndexChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ix := newIndex(1000)         // 2048 cells, filled to ~1000
	model := map[uint32]uint32{} // ref -> tag
	for range 200000 {
		if len(model) < 1000 && (len(model) == 0 || rng.IntN(2) == 0) {
			ref := uint32(rng.IntN(1<<20) + 1)
			if _, dup := model[ref]; dup {
				continue
			}
			tag := uint32(rng.IntN(64)) * 0x9e3779b9 // few distinct tags: long clusters
			ix.insert(tag, ref)
			model[ref] = tag
		} else {
			for ref, tag := range model {
				if !ix.remove(tag, ref) {
					t.Fatal("remove: not found")
				}
				delete(model, ref)
				break
			}
		}
	}
	for ref, tag := range model {
		p := ix.start(tag)
		found := false
		for r, ok := ix.next(&p); ok; r, ok = ix.next(&p) {
			if r == ref {
				found = true
			}
		}
		if !found {
			t.Fatalf("ref %d lost", ref)
		}
	}
	n := 0
	for _, c := range ix.cells {
		if c != 0 {
			n++
		}
	}
	if n != len(model) {
		t.Fatalf("%d cells used, %d entries", n, len(model))
	}
	if ix.remove(12345, 1<<25) {
		t.Fatal("removed an absent entry")
	}
}

func TestWalkDeleteAndStaleTrack(t *testing.T) {
	cc := newClassCounter(t)
	tb := New(Config{Capacity: 64, OnState: cc.onState})
	for i := range 40 {
		c := natConn(i, lvs.ProtoTCP) // dest i%4
		p, _ := tb.Insert(&c, 0)
		tb.Track(p, DirOriginal, lvs.TCPSyn, 0)
	}
	k := tkey(clientAddr(1), 32)
	tb.InsertTemplate(&k, 1, 1, 0)
	// Drop every connection of dest 1 from inside Walk.
	seen := 0
	tb.Walk(func(c *Conn) bool {
		seen++
		if c.Dest == 1 {
			tb.Delete(c)
		}
		return true
	})
	if seen != 40 || tb.Len() != 30 {
		t.Fatalf("seen %d len %d", seen, tb.Len())
	}
	cc.check(t, tb)
	// A stale pointer (deleted connection) is ignored by Track.
	c := natConn(0, lvs.ProtoTCP)
	p, _, _ := tb.Lookup(&c.Orig, 0)
	tb.Delete(p)
	tb.Track(p, DirOriginal, lvs.TCPAck, 0)
	cc.check(t, tb)
	// Walk stops when fn returns false.
	seen = 0
	tb.Walk(func(*Conn) bool { seen++; return seen < 3 })
	if seen != 3 {
		t.Fatalf("walk did not stop: %d", seen)
	}
	tb.Flush()
	if tb.Len() != 0 || tb.TemplateLen() != 0 {
		t.Fatalf("flush left %d connections, %d templates", tb.Len(), tb.TemplateLen())
	}
	cc.check(t, tb)
}
