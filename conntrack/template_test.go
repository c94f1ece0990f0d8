package conntrack

import (
	"errors"
	"github.com/govs/govs/lvs"
	"testing"
	"time"

	"github.com/govs/govs/inet"
)

func tkey(client inet.Addr, bits int) TemplateKey {
	return TemplateKey{Client: client.Mask(bits), VIP: vip, VPort: 80, Proto: lvs.ProtoTCP, Service: 1}
}

func TestTemplateNetmask(t *testing.T) {
	tb := New(Config{Capacity: 64})
	a := inet.AddrFrom4([4]byte{198, 18, 7, 1})
	b := inet.AddrFrom4([4]byte{198, 18, 7, 200}) // same /24
	c := inet.AddrFrom4([4]byte{198, 18, 8, 1})   // other /24
	ka, kb, kc := tkey(a, 24), tkey(b, 24), tkey(c, 24)
	if _, ok := tb.LookupTemplate(&ka, 0); ok {
		t.Fatal("template before insert")
	}
	if err := tb.InsertTemplate(&ka, 5, 300*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if d, ok := tb.LookupTemplate(&kb, sec); !ok || d != 5 {
		t.Fatalf("same /24: %d %v", d, ok)
	}
	if _, ok := tb.LookupTemplate(&kc, sec); ok {
		t.Fatal("other /24 matched")
	}
	// /32: every client has its own template.
	k32a, k32b := tkey(a, 32), tkey(b, 32)
	tb.InsertTemplate(&k32a, 6, 300*time.Second, 0)
	if _, ok := tb.LookupTemplate(&k32b, sec); ok {
		t.Fatal("/32 shared")
	}
	// Service, VIP and port are part of the key.
	other := ka
	other.Service = 2
	if _, ok := tb.LookupTemplate(&other, sec); ok {
		t.Fatal("service ignored")
	}
	other = ka
	other.VPort = 0
	if _, ok := tb.LookupTemplate(&other, sec); ok {
		t.Fatal("port ignored")
	}
	// IPv6 client with a /64 mask.
	x := inet.AddrFromSlice16([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	y := inet.AddrFromSlice16([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9})
	kx, ky := tkey(x, 64), tkey(y, 64)
	tb.InsertTemplate(&kx, 7, time.Minute, 0)
	if d, ok := tb.LookupTemplate(&ky, 0); !ok || d != 7 {
		t.Fatal("ipv6 /64")
	}
}

func TestTemplateExpiryAndUse(t *testing.T) {
	tb := New(Config{Capacity: 64})
	k := tkey(clientAddr(1), 32)
	tb.InsertTemplate(&k, 3, 300*time.Second, 0)
	if _, ok := tb.LookupTemplate(&k, 299*sec); !ok {
		t.Fatal("gone before its timeout")
	}
	// That lookup was a use: the timeout runs from 299 s now.
	if _, ok := tb.LookupTemplate(&k, 598*sec); !ok {
		t.Fatal("use did not extend the template")
	}
	if _, ok := tb.LookupTemplate(&k, 898*sec); ok {
		t.Fatal("alive after its timeout")
	}
	if tb.TemplateLen() != 1 {
		t.Fatal("template reclaimed without a sweep")
	}
	if n := tb.Expire(898*sec, 64); n != 1 || tb.TemplateLen() != 0 {
		t.Fatalf("sweep removed %d, %d left", n, tb.TemplateLen())
	}
	if tb.Stats().TemplateExpired != 1 {
		t.Fatal("stats")
	}
	if err := tb.InsertTemplate(&k, 3, 0, 0); !errors.Is(err, ErrBadTimeout) {
		t.Fatalf("zero timeout: %v", err)
	}
}

// A template lives while connections use it, then for its timeout after the
// last one ends.
func TestTemplateRefcount(t *testing.T) {
	tb := New(Config{Capacity: 64})
	k := tkey(clientAddr(1), 24)
	const timeout = 300 * time.Second
	now := int64(0)
	tb.InsertTemplate(&k, 2, timeout, now)
	var conns []*Conn
	for i := range 3 {
		c := natConn(1+i*(1<<17), lvs.ProtoTCP) // same client, different ports
		c.Dest = 2
		p, err := tb.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		tb.Track(p, DirOriginal, lvs.TCPSyn, now)
		tb.Track(p, DirOriginal, lvs.TCPAck, now) // 15 min
		if !tb.BindTemplate(p, &k) || p.Flags&FlagPersistent == 0 {
			t.Fatal("bind")
		}
		conns = append(conns, p)
	}
	conns0 := func() int {
		n := -1
		tb.WalkTemplates(func(kk *TemplateKey, dest uint32, exp int64, c int) bool {
			if *kk == k && dest == 2 {
				n = c
			}
			return true
		})
		return n
	}
	if conns0() != 3 {
		t.Fatalf("refcount %d", conns0())
	}
	// Far past the template timeout, but connections are alive.
	now = 600 * sec
	tb.Expire(now, 64)
	if d, ok := tb.LookupTemplate(&k, now); !ok || d != 2 {
		t.Fatal("template died under its connections")
	}
	tb.Delete(conns[0])
	tb.Delete(conns[1])
	if conns0() != 1 {
		t.Fatalf("refcount after two deletes %d", conns0())
	}
	now = 1000 * sec
	tb.Expire(now, 64)
	if tb.TemplateLen() != 1 {
		t.Fatal("template swept")
	}
	// The last connection expires (15 min after its last packet) at 900 s,
	// and the sweep at 1000 s removes it: the template gets its timeout from
	// then.
	if tb.Len() != 0 {
		t.Fatalf("connection not expired: %d", tb.Len())
	}
	if conns0() != 0 {
		t.Fatalf("refcount after expiry %d", conns0())
	}
	if _, ok := tb.LookupTemplate(&k, now+int64(timeout)-1); !ok {
		t.Fatal("template gone before timeout after last connection")
	}
	// That lookup extended it once more.
	end := now + int64(timeout) - 1 + int64(timeout)
	if _, ok := tb.LookupTemplate(&k, end); ok {
		t.Fatal("template alive after its timeout")
	}
	tb.Expire(end, 64)
	if tb.TemplateLen() != 0 {
		t.Fatal("template not swept")
	}
}

// A template deleted or replaced under its connections: the old bindings
// must not touch the slot's next template.
func TestTemplateGenerations(t *testing.T) {
	tb := New(Config{Capacity: 64, TemplateCapacity: 1})
	k1 := tkey(clientAddr(1), 32)
	k2 := tkey(clientAddr(2), 32)
	tb.InsertTemplate(&k1, 1, time.Second, 0)
	c := natConn(1, lvs.ProtoTCP)
	p, _ := tb.Insert(&c, 0)
	tb.BindTemplate(p, &k1)
	if err := tb.InsertTemplate(&k2, 9, time.Second, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("template store should be full: %v", err)
	}
	if n := tb.DeleteTemplatesForDest(1); n != 1 {
		t.Fatalf("deleted %d", n)
	}
	if err := tb.InsertTemplate(&k2, 9, time.Second, 0); err != nil {
		t.Fatal(err)
	}
	c2 := natConn(2, lvs.ProtoTCP)
	p2, _ := tb.Insert(&c2, 0)
	tb.BindTemplate(p2, &k2)
	tb.Delete(p) // bound to the deleted k1: must not decrement k2
	got := -1
	tb.WalkTemplates(func(k *TemplateKey, dest uint32, exp int64, conns int) bool { got = conns; return true })
	if got != 1 {
		t.Fatalf("k2 refcount %d, want 1", got)
	}
	// Replacing a template (its server became unavailable).
	tb.InsertTemplate(&k2, 10, time.Second, 0)
	if d, _ := tb.LookupTemplate(&k2, 0); d != 10 {
		t.Fatal("replace")
	}
	tb.WalkTemplates(func(k *TemplateKey, dest uint32, exp int64, conns int) bool { got = conns; return true })
	if got != 0 {
		t.Fatalf("replaced template inherited %d connections", got)
	}
	if !tb.DeleteTemplate(&k2) || tb.DeleteTemplate(&k2) || tb.TemplateLen() != 0 {
		t.Fatal("DeleteTemplate")
	}
	tb.Delete(p2)
	if tb.BindTemplate(p2, &k2) {
		t.Fatal("bound a deleted connection")
	}
	c3 := natConn(3, lvs.ProtoTCP)
	p3, _ := tb.Insert(&c3, 0)
	if tb.BindTemplate(p3, &k2) {
		t.Fatal("bound to a missing template")
	}
}

// TestTemplateRemoveCallback: every way out of the table is reported once,
// with its reason, while the key is still readable.
func TestTemplateRemoveCallback(t *testing.T) {
	type ev struct {
		client inet.Addr
		why    TemplateRemoval
	}
	var got []ev
	tb := New(Config{Capacity: 64, OnTemplateRemove: func(k *TemplateKey, why TemplateRemoval) {
		got = append(got, ev{k.Client, why})
	}})
	a := inet.AddrFrom4([4]byte{198, 18, 7, 1})
	b := inet.AddrFrom4([4]byte{198, 18, 7, 2})
	c := inet.AddrFrom4([4]byte{198, 18, 7, 3})
	ka, kb, kc := tkey(a, 32), tkey(b, 32), tkey(c, 32)
	for _, k := range []*TemplateKey{&ka, &kb, &kc} {
		if err := tb.InsertTemplate(k, 5, time.Second, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 0 {
		t.Fatalf("removals on insert: %v", got)
	}
	tb.InsertTemplate(&ka, 6, time.Second, 0) // replaces a's
	tb.DeleteTemplate(&kb)
	tb.Expire(10*sec, 1<<20)
	want := []ev{{a, TemplateReplaced}, {b, TemplateDeleted}, {a, TemplateExpired}, {c, TemplateExpired}}
	if len(got) != len(want) {
		t.Fatalf("removals %v, want %v", got, want)
	}
	for _, w := range want[:2] {
		if got[0] != w && got[1] != w {
			t.Errorf("removals %v: missing %v", got, w)
		}
	}
	for _, w := range want[2:] {
		if got[2] != w && got[3] != w {
			t.Errorf("removals %v: missing %v", got, w)
		}
	}
	got = nil
	tb.InsertTemplate(&ka, 7, time.Second, 11*sec)
	tb.Flush()
	if len(got) != 1 || got[0] != (ev{a, TemplateDeleted}) {
		t.Errorf("flush: removals %v, want a deleted", got)
	}
	if TemplateExpired.String() != "expired" || TemplateRemoval(0).String() != "unknown" {
		t.Error("TemplateRemoval names")
	}
}
