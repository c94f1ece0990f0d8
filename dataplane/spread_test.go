package dataplane

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// fakeSpreadMaps records what syncSpread writes.
type fakeSpreadMaps struct {
	tables      map[int][]uint32
	tableWrites int
	services    map[uint32]bpf.FlowAction // Op unused: DestID = table, Reply = hashPort
	dests       map[uint32]bpf.FlowAction
	destWrites  int
}

func newFakeSpreadMaps() *fakeSpreadMaps {
	return &fakeSpreadMaps{tables: map[int][]uint32{}, services: map[uint32]bpf.FlowAction{}, dests: map[uint32]bpf.FlowAction{}}
}

func (f *fakeSpreadMaps) SetSpreadTable(table int, dests []uint32) error {
	f.tables[table] = append([]uint32(nil), dests...)
	f.tableWrites++
	return nil
}

func (f *fakeSpreadMaps) SetSpreadService(id uint32, table int, hashPort bool) error {
	f.services[id] = bpf.FlowAction{DestID: uint32(table), Reply: hashPort}
	return nil
}

func (f *fakeSpreadMaps) DelSpreadService(id uint32) error { delete(f.services, id); return nil }

func (f *fakeSpreadMaps) SetSpreadDest(a *bpf.FlowAction) error {
	f.dests[a.DestID] = *a
	f.destWrites++
	return nil
}

func (f *fakeSpreadMaps) DelSpreadDest(id uint32) error { delete(f.dests, id); return nil }

func syncSpreadNow(d *Director) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncSpread(d.state.Load())
}

// drSpec is a DR service on vip:80 scheduled by sched, with real servers
// reals (the first one's next hop resolves in newUnitDirector).
func drSpec(name string, vip netip.Addr, scheduler string, flags sched.Flags, reals ...netip.Addr) ServiceSpec {
	sp := ServiceSpec{Name: name, VIP: vip, Port: 80, Proto: lvs.ProtoTCP, Scheduler: scheduler, Flags: flags, Fwd: lvs.FwdDR}
	for _, r := range reals {
		sp.Dests = append(sp.Dests, DestSpec{Addr: r, Port: 80, Weight: 1, Fwd: lvs.FwdDR})
	}
	return sp
}

// TestSyncSpread: a DR service scheduled by mh gets a table that is the
// scheduler's own (each slot: the real server id mh picks there, plus
// one), rewritten only when the scheduler has a new one, and an entry for
// each real server that takes connections and whose next hop is resolved;
// a quiesced server loses its entry but keeps its slots (mh's); a service
// that stops spreading gives its table back; beyond the program's tables a
// service is left out with one warning; NAT, wlc and fwmark services never
// spread.
func TestSyncSpread(t *testing.T) {
	d := newUnitDirector(t, 1)
	var logs strings.Builder
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	d.opts.FastPath = true
	for _, ifc := range d.ifaces {
		ifc.fastOK.Store(true)
	}
	maps := newFakeSpreadMaps()
	d.initSpread(maps)
	unresolved := netip.MustParseAddr("198.18.1.9")

	applySpecs(t, d, drSpec("dr", vipIP, "mh", sched.FlagPort, realIP, unresolved))
	syncSpreadNow(d)
	svc := d.state.Load().byKey[serviceKey{inet.AddrFromNetip(vipIP), 80, lvs.ProtoTCP}]
	entry, ok := maps.services[svc.ID]
	if !ok || !entry.Reply {
		t.Fatalf("service entries %v, want service %d's with mh-port", maps.services, svc.ID)
	}
	table := maps.tables[int(entry.DestID)]
	sdests, mh, _ := sched.MaglevTable(svc.Sched)
	if len(table) != bpf.SpreadTableSize || len(mh) != bpf.SpreadTableSize {
		t.Fatalf("table of %d slots, mh's %d; want %d", len(table), len(mh), bpf.SpreadTableSize)
	}
	counts := map[uint32]int{}
	for i, v := range table {
		if want := sdests[mh[i]].ID + 1; v != want {
			t.Fatalf("slot %d: %d, want %d", i, v, want)
		}
		counts[v]++
	}
	if len(counts) != 2 {
		t.Errorf("slots per real server id+1: %v, want both servers", counts)
	}
	resolved, other := svc.Dests[0], svc.Dests[1]
	a, ok := maps.dests[resolved.ID]
	if !ok || a.Op != bpf.FlowForward || a.DstMAC != [6]byte(realMAC) || a.SrcMAC != [6]byte(dirMAC1) || a.Ifindex != 11 {
		t.Errorf("entry of the resolved server: %+v (present %v), want DR toward %s on d1", a, ok, realMAC)
	}
	if _, ok := maps.dests[other.ID]; ok {
		t.Error("an entry for a server without a next hop")
	}

	// Nothing changed: nothing written.
	writes, destWrites := maps.tableWrites, maps.destWrites
	syncSpreadNow(d)
	if maps.tableWrites != writes || maps.destWrites != destWrites {
		t.Errorf("an idle sync wrote %d tables and %d entries", maps.tableWrites-writes, maps.destWrites-destWrites)
	}

	// Quiesced: no entry, the same table (mh keeps its slots).
	resolved.SetWeight(0)
	syncSpreadNow(d)
	if _, ok := maps.dests[resolved.ID]; ok || maps.tableWrites != writes {
		t.Errorf("quiesced: entry kept %v, %d table writes", ok, maps.tableWrites-writes)
	}
	resolved.SetWeight(1)
	syncSpreadNow(d)
	if _, ok := maps.dests[resolved.ID]; !ok {
		t.Error("weight back: no entry")
	}

	// A new Maglev table (a server added): rewritten in the same table.
	applySpecs(t, d, drSpec("dr", vipIP, "mh", sched.FlagPort, realIP, unresolved, netip.MustParseAddr("198.18.1.10")))
	syncSpreadNow(d)
	if maps.tableWrites != writes+1 || maps.services[svc.ID].DestID != entry.DestID {
		t.Errorf("after a server was added: %d table writes, table %d; want one, in table %d",
			maps.tableWrites-writes, maps.services[svc.ID].DestID, entry.DestID)
	}

	// wlc: no spreading, the table back in the free list.
	applySpecs(t, d, drSpec("dr", vipIP, "wlc", 0, realIP))
	syncSpreadNow(d)
	if len(maps.services) != 0 || len(maps.dests) != 0 || len(d.spreadFree) != bpf.SpreadServices {
		t.Errorf("after wlc: services %v, entries %v, %d free tables; want none, none, %d",
			maps.services, maps.dests, len(d.spreadFree), bpf.SpreadServices)
	}

	// NAT and fwmark services never spread; more DR mh services than
	// tables: the rest are left out, with one warning.
	nat := webSpec()
	nat.Scheduler = "mh"
	specs := []ServiceSpec{nat}
	for i := range bpf.SpreadServices + 2 {
		specs = append(specs, drSpec(fmt.Sprintf("dr%d", i), netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), "mh", 0, realIP))
	}
	applySpecs(t, d, specs...)
	syncSpreadNow(d)
	syncSpreadNow(d)
	if len(maps.services) != bpf.SpreadServices || len(d.spreadFree) != 0 {
		t.Errorf("%d services spread, %d tables free; want %d, 0", len(maps.services), len(d.spreadFree), bpf.SpreadServices)
	}
	natSvc := d.state.Load().byKey[serviceKey{inet.AddrFromNetip(vipIP), 80, lvs.ProtoTCP}]
	if _, ok := maps.services[natSvc.ID]; ok {
		t.Error("a NAT service spreads")
	}
	if n := strings.Count(logs.String(), "more DR/TUN mh services than the XDP program has tables for"); n != 1 {
		t.Errorf("%d warnings about the tables, want 1:\n%s", n, logs.String())
	}
}
