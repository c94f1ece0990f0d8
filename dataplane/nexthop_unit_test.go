package dataplane

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// These tests read the kernel's routes, links and addresses (no root
// needed) and change nothing: the resolver's addresses all route through
// the loopback interface, which the director does not serve here, so it
// never writes a neighbour entry.

// syncBuf is a log sink safe for the resolver's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestResolverUnservedRoute: an address whose route leaves through an
// interface the director does not serve stays unresolved; the warning is
// logged once however often the resolver retries; a next hop that is lost
// triggers onChange (the fast path's entries embed next hops).
func TestResolverUnservedRoute(t *testing.T) {
	var logs syncBuf
	r := newResolver(slog.New(slog.NewTextHandler(&logs, nil)), []*Interface{{Name: "x", Index: 1 << 30}})
	lo := inet.AddrFromNetip(netip.MustParseAddr("127.0.0.1"))
	changed := 0
	r.onChange = func() { changed++ }
	r.table.Store(&map[inet.Addr]NextHop{lo: {Iface: 0, MTU: 1500}})
	r.want([]inet.Addr{lo})
	if _, ok := r.lookup(lo); ok {
		t.Fatal("127.0.0.1 resolved through an interface the director does not serve")
	}
	if changed != 1 {
		t.Errorf("onChange called %d times after the next hop was lost, want 1", changed)
	}
	if n := logs.count("next hop unresolved"); n != 1 {
		t.Errorf("warned %d times, want 1", n)
	}
	if r.waitResolved(20 * time.Millisecond) {
		t.Error("waitResolved reports an unresolved address resolved")
	}
	r.want([]inet.Addr{lo}) // the same set: no new resolution
	r.refresh()
	if n := logs.count("next hop unresolved"); n != 1 {
		t.Errorf("warned %d times after retries, want still 1", n)
	}
	if changed != 1 {
		t.Errorf("onChange called again (%d) though nothing changed", changed)
	}

	// The loop: a miss for a wanted address makes it look again; cancel stops it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	r.lookup(lo) // reported as a miss
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("resolver did not stop")
	}
	r.want(nil)
	if !r.waitResolved(0) {
		t.Error("nothing wanted, yet not resolved")
	}
}

// TestLinkHelpers: the interface facts New reads without root.
func TestLinkHelpers(t *testing.T) {
	link, err := netlink.LinkByName("lo")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	// Loopback addresses are host-scoped: never an interface's own source.
	if v4, v6 := ownAddrs(link); !v4.IsZero() || !v6.IsZero() {
		t.Errorf("ownAddrs(lo) = %s, %s; want none", v4, v6)
	}
	if n := rxQueues("lo"); n < 1 {
		t.Errorf("rxQueues(lo) = %d", n)
	}
	if n := rxQueues("no-such-interface"); n != 1 {
		t.Errorf("rxQueues of a missing interface = %d, want 1", n)
	}
	if _, err := xdpFeatures(1 << 30); err == nil {
		t.Error("xdpFeatures of a missing interface: no error")
	}
	if f, err := xdpFeatures(link.Attrs().Index); err != nil {
		t.Logf("xdpFeatures(lo): %v (kernel without the netdev family)", err)
	} else if f&xdpActNdoXmit != 0 {
		t.Errorf("loopback claims to take XDP-redirected frames (%#x)", f)
	}
}

// TestSynGuardOfDirector: the Director's SYN guard entry points, with a
// fake steering program: the status of TCP services, and the flags written
// for them after a configuration change and at each tick.
func TestSynGuardOfDirector(t *testing.T) {
	d := newUnitDirector(t, 1)
	fake := newFakeSynSteering()
	d.guard = newSynGuard(d.log, fake, SynGuardOptions{})
	on := webSpec()
	on.SynProxy = SynProxyOn
	dr := webSpec()
	dr.Name, dr.Port, dr.Fwd = "dr", 81, lvs.FwdDR
	dr.Dests[0].Fwd = lvs.FwdDR
	udp := webSpec()
	udp.Name, udp.Proto = "dns", 17
	applySpecs(t, d, on, dr, udp)
	d.reapplySynFlags(d.state.Load())
	st := d.SynProxyStatus()
	if len(st) != 2 {
		t.Fatalf("status of %d services, want the 2 TCP ones: %+v", len(st), st)
	}
	byName := map[string]SynProxyStatus{}
	for _, s := range st {
		byName[s.Service] = s
	}
	if s := byName["web"]; !s.Capable || !s.Engaged || s.Mode != SynProxyOn {
		t.Errorf("web (NAT, on): %+v, want capable and engaged", s)
	}
	if s := byName["dr"]; s.Capable || s.Engaged {
		t.Errorf("dr: %+v, want neither capable nor engaged", s)
	}
	web := d.Services()[0]
	ep := bpf.Endpoint{Addr: web.VIP, Port: web.Port, Proto: uint8(web.Proto)}
	if f := fake.flags[ep]; f&bpf.VIPSynProxyOn == 0 {
		t.Errorf("web's VIP flags %#x, want SynProxyOn written", f)
	}
	d.guardTick(time.Now())
	d.guard = nil
	if d.SynProxyStatus() != nil {
		t.Error("status without a guard")
	}
}
