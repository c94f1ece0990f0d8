package dataplane

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// TestReclaimDestIDs: a removed real server keeps its id while it drains
// and for destReclaimAfter; then its id is freed, the templates naming it
// are deleted, and the next real server added takes the id, without
// touching the snapshot in force.
func TestReclaimDestIDs(t *testing.T) {
	d := newUnitDirector(t, 2)
	startWorkers(d)
	a, b, c := realIP, netip.MustParseAddr("198.18.1.20"), netip.MustParseAddr("198.18.1.21")
	spec := func(reals ...netip.Addr) ServiceSpec {
		sp := webSpec()
		sp.Dests = nil
		for _, r := range reals {
			sp.Dests = append(sp.Dests, DestSpec{Addr: r, Port: 8080, Weight: 1, Fwd: lvs.FwdNAT})
		}
		return sp
	}
	applySpecs(t, d, spec(a))
	first := d.state.Load()
	da := first.dests[0]
	applySpecs(t, d, spec(b)) // a leaves: id 0 drains, b gets id 1
	s := d.state.Load()
	if !da.Removed.Load() || len(s.dests) != 2 || s.dests[1].Addr != inet.AddrFromNetip(b) {
		t.Fatalf("after replacing a by b: dests %v, a removed %v", s.dests, da.Removed.Load())
	}
	// A template toward a on worker 1, and a connection still on a.
	k := conntrack.TemplateKey{Client: inet.AddrFromNetip(clientIP), VIP: inet.AddrFromNetip(vipIP), VPort: 80, Proto: lvs.ProtoTCP}
	w1 := d.workers[1]
	if err := w1.request(context.Background(), func() { w1.ct.InsertTemplate(&k, da.ID, time.Hour, nanotime()) }); err != nil {
		t.Fatal(err)
	}
	da.Transition(sched.ClassNone, sched.ClassActive)

	reclaim := func(at int64) {
		d.mu.Lock()
		defer d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.reclaimDests(ctx, d.state.Load(), at)
	}
	later := da.removedAt + int64(destReclaimAfter) + int64(time.Second)
	reclaim(da.removedAt + int64(time.Second))
	reclaim(later)
	if len(d.freeDests) != 0 {
		t.Fatalf("reclaimed %v: too early, or with a connection left", d.freeDests)
	}
	da.Transition(sched.ClassActive, sched.ClassNone)
	reclaim(later)
	if len(d.freeDests) != 1 || d.freeDests[0] != da.ID || !da.reclaimed {
		t.Fatalf("free ids %v, want a's %d", d.freeDests, da.ID)
	}
	var left int
	w1.request(context.Background(), func() { left = w1.ct.TemplateLen() })
	if left != 0 {
		t.Errorf("worker 1 kept %d templates naming the reclaimed id", left)
	}
	reclaim(later) // once only
	if len(d.freeDests) != 1 {
		t.Errorf("reclaimed twice: %v", d.freeDests)
	}

	applySpecs(t, d, spec(b, c)) // c takes a's id
	now := d.state.Load()
	if len(now.dests) != 2 || now.dests[0].Addr != inet.AddrFromNetip(c) || now.dests[0].ID != 0 || now.dests[0].Dest.ID != 0 {
		t.Fatalf("c: dests %v, want c at id 0", now.dests)
	}
	if s.dests[0] != da || first.dests[0] != da {
		t.Error("the snapshots in force before saw their table change")
	}
	if len(d.freeDests) != 0 {
		t.Errorf("free ids left: %v", d.freeDests)
	}
}

// TestReclaimServiceIDs: a removed service's id is free once it has been
// removed for destReclaimAfter and every real server of it is reclaimed,
// and the next new service takes it.
func TestReclaimServiceIDs(t *testing.T) {
	d := newUnitDirector(t, 1)
	startWorkers(d)
	web := webSpec()
	other := webSpec()
	other.Name, other.Port = "other", 443
	third := webSpec()
	third.Name, third.Port = "third", 8443
	applySpecs(t, d, web, other)
	s := d.state.Load()
	webID, webDest := s.byKey[serviceKey{inet.AddrFromNetip(vipIP), 80, 6}].ID, s.dests[0]
	webDest.Transition(sched.ClassNone, sched.ClassInactive) // a connection still draining
	applySpecs(t, d, other)                                  // web removed
	removed := d.removedSvcs[0].at
	step := func(at int64) {
		d.mu.Lock()
		defer d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st := d.state.Load()
		d.reclaimDests(ctx, st, at)
		d.reclaimServices(st, at)
	}
	later := removed + int64(destReclaimAfter) + int64(time.Second)
	step(removed + int64(time.Second))
	step(later)
	if len(d.freeSvcs) != 0 {
		t.Fatalf("service id freed %v while its real server drains", d.freeSvcs)
	}
	webDest.Transition(sched.ClassInactive, sched.ClassNone)
	step(later)
	if len(d.freeSvcs) != 1 || d.freeSvcs[0] != webID || len(d.removedSvcs) != 0 {
		t.Fatalf("free service ids %v, removed %v; want web's %d", d.freeSvcs, d.removedSvcs, webID)
	}
	applySpecs(t, d, other, third)
	st := d.state.Load()
	svc := st.byKey[serviceKey{inet.AddrFromNetip(vipIP), 8443, 6}]
	if svc.ID != webID || st.service(webID) != svc {
		t.Fatalf("third got id %d, want web's %d", svc.ID, webID)
	}
	if svc.Dests[0].Service != webID || svc.Dests[0].ID != webDest.ID {
		t.Errorf("third's real server: service %d id %d, want %d and the reclaimed %d", svc.Dests[0].Service, svc.Dests[0].ID, webID, webDest.ID)
	}
}
