package conntrack

import (
	"github.com/govs/govs/lvs"
	"testing"
	"time"
)

// The per-packet and per-connection operations never allocate, callbacks
// included.
func TestZeroAllocs(t *testing.T) {
	var active, removed int
	tb := New(Config{
		Capacity: 4096,
		OnState: func(dest uint32, from, to State) {
			if activeInTest(to) {
				active++
			}
		},
		OnRemove: func(c *Conn) { removed++ },
	})
	for i := range 2048 {
		c := natConn(i, lvs.ProtoTCP)
		tb.Insert(&c, 0)
	}
	probe := natConn(77, lvs.ProtoTCP)
	miss := natConn(3000, lvs.ProtoTCP)
	k := TemplateKey{Client: probe.Orig.Src, VIP: vip, VPort: 80, Proto: lvs.ProtoTCP}
	tb.InsertTemplate(&k, 1, time.Hour, 0)
	now := int64(0)
	i := 0

	check := func(name string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per run", name, n)
		}
	}
	check("Lookup", func() {
		tb.Lookup(&probe.Orig, now)
		tb.Lookup(&probe.Reply, now)
		tb.Lookup(&miss.Orig, now)
	})
	check("Track", func() {
		c, dir, _ := tb.Lookup(&probe.Orig, now)
		tb.Track(c, dir, lvs.TCPSyn, now)
		tb.Track(c, DirReply, lvs.TCPSyn|lvs.TCPAck, now)
		tb.Track(c, dir, lvs.TCPAck, now)
		tb.Track(c, dir, lvs.TCPRst, now)
	})
	check("Insert+Delete", func() {
		c := natConn(3000+i%1000, lvs.ProtoTCP)
		i++
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		tb.Reusable(p, DirOriginal, lvs.TCPSyn)
		tb.Delete(p)
	})
	check("Templates", func() {
		d, _ := tb.LookupTemplate(&k, now)
		c, _, _ := tb.Lookup(&probe.Orig, now)
		tb.BindTemplate(c, &k)
		_ = d
	})
	check("Expire", func() {
		now += sec
		tb.Expire(now, 64)
		c := natConn(3000+i%1000, lvs.ProtoUDP)
		i++
		tb.Insert(&c, now)
	})
	if removed == 0 || active == 0 {
		t.Fatal("callbacks not exercised")
	}

	// A full table of half-open connections under pressure: every Insert
	// evicts the oldest, and the newcomer's SYN puts it at the tail.
	removed = 0
	full := New(Config{
		Capacity: 64,
		OnState:  func(uint32, State, State) {},
		OnRemove: func(c *Conn) { removed++ },
	})
	for i := range 64 {
		c := natConn(i, lvs.ProtoTCP)
		p, _ := full.Insert(&c, now)
		full.Track(p, DirOriginal, lvs.TCPSyn, now)
	}
	j := 64
	check("Insert with eviction", func() {
		c := natConn(j, lvs.ProtoTCP)
		j++
		p, err := full.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		full.Track(p, DirOriginal, lvs.TCPSyn, now)
		full.Restore(p, StateSynAck, now+sec)
		full.Touch(p, now)
		_ = full.HalfOpen()
	})
	if st := full.Stats(); st.EvictedHalfOpen < 1000 || removed < 1000 || full.HalfOpen() != 64 || !full.UnderPressure() {
		t.Fatalf("eviction not exercised: %+v, removed %d, half-open %d", st, removed, full.HalfOpen())
	}
}
