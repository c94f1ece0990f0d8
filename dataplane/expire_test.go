package dataplane

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TestExpireTemplates: ExpireTemplates deletes, in the workers, the
// persistence templates of one real server of one service and no other.
func TestExpireTemplates(t *testing.T) {
	d := newUnitDirector(t, 1)
	sp := webSpec()
	sp.Persistence = time.Minute
	sp.PersistBits = 32
	other := netip.MustParseAddr("198.18.1.2")
	sp.Dests = append(sp.Dests, DestSpec{Addr: other, Port: 8080, Weight: 1, Fwd: lvs.FwdNAT})
	applySpecs(t, d, sp)
	d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(realIP): {Iface: 1, DstMAC: [6]byte(realMAC), MTU: 1500},
		inet.AddrFromNetip(other):  {Iface: 1, DstMAC: [6]byte(realMAC), MTU: 1500},
	})
	d.workers[0].inbox = []*spsc{newSPSC(16)}
	d.workers[0].returns = []*spsc{newSPSC(16)}
	startWorkers(d)
	l := &spLab{client: clientIP, vip: vipIP, real: realIP}
	inject(t, d, 0, 0, 0, l.request(40000, lvs.TCPSyn, 0).bytes(t), 0)
	waitFor(t, "the connection", func() bool { return d.Counters().NewConns == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts, err := d.Templates(ctx)
	if err != nil || len(ts) != 1 {
		t.Fatalf("Templates %+v, %v; want one", ts, err)
	}
	bound := ts[0].Dest
	var unbound netip.AddrPort
	for _, ds := range sp.Dests {
		if ap := netip.AddrPortFrom(ds.Addr, ds.Port); ap != bound {
			unbound = ap
		}
	}
	if n, err := d.ExpireTemplates(ctx, vipIP, 80, 6, unbound); n != 0 || err != nil {
		t.Errorf("expire for the other server: %d, %v; want 0", n, err)
	}
	if n, err := d.ExpireTemplates(ctx, vipIP, 81, 6, bound); n != 0 || err != nil {
		t.Errorf("expire for another service: %d, %v; want 0", n, err)
	}
	if n, err := d.ExpireTemplates(ctx, vipIP, 80, 6, bound); n != 1 || err != nil {
		t.Errorf("expire for the bound server %s: %d, %v; want 1", bound, n, err)
	}
	if ts, err := d.Templates(ctx); err != nil || len(ts) != 0 {
		t.Errorf("Templates after the expiry: %+v, %v; want none", ts, err)
	}
}
