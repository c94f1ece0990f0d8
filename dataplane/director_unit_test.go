package dataplane

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// A Director without BPF and without sockets: what New builds but for the
// steering program and the AF_XDP sockets (which need root). Its workers
// come from newWorker and run their real loop; frames reach them the one
// way that needs no socket, handed over by a peer worker (the test plays
// that peer). Apply needs the steering maps, so services are installed by
// applySpecs, Apply's snapshot step without the steering updates.

const unitRegion = 32 // UMEM frames per worker

func newUnitDirector(t *testing.T, workers int) *Director {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &Director{log: log, opts: Options{RingSize: 64, Timeouts: conntrack.DefaultTimeouts()}}
	d.state.Store(&snapshot{byKey: map[serviceKey]*Service{}})
	d.ifaces = []*Interface{
		{Name: "d0", Index: 10, MAC: [6]byte(dirMAC0), MTU: 1500, Addr4: inet.AddrFromNetip(dir0IP)},
		{Name: "d1", Index: 11, MAC: [6]byte(dirMAC1), MTU: 1500, Addr4: inet.AddrFromNetip(dir1IP)},
	}
	d.res = newResolver(log, d.ifaces)
	d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(realIP): {Iface: 1, SrcMAC: [6]byte(dirMAC1), DstMAC: [6]byte(realMAC), MTU: 1500},
	})
	d.guard = newSynGuard(log, newFakeSynSteering(), SynGuardOptions{})
	umem, err := xsk.NewUMEM(unitRegion*workers, frameSize)
	if err != nil {
		t.Skipf("no UMEM (mmap): %v", err)
	}
	d.umem = umem
	for q := 0; q < workers; q++ {
		w, err := newWorker(d, q, 1024, umem, unitRegion)
		if err != nil {
			d.Close()
			t.Fatalf("newWorker %d: %v", q, err)
		}
		d.workers = append(d.workers, w)
	}
	for _, w := range d.workers { // as New wires them
		w.inbox = make([]*spsc, workers)
		w.returns = make([]*spsc, workers)
		for i := range d.workers {
			if i != w.q {
				w.inbox[i] = newSPSC(4 * rxBatch * len(d.ifaces))
				w.returns[i] = newSPSC(unitRegion)
			}
		}
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// startWorkers runs the workers' loops, as Start does (Start also runs the
// resolver and housekeeping, which need the steering maps).
func startWorkers(d *Director) {
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); w.run() }()
	}
}

// applySpecs installs specs as Apply does, less the steering maps.
func applySpecs(t *testing.T, d *Director, specs ...ServiceSpec) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.state.Load()
	next := &snapshot{locals: map[inet.Addr]bool{}, byKey: map[serviceKey]*Service{},
		services: make([]*Service, len(old.services)), dests: old.dests}
	for i := range specs {
		sp := &specs[i]
		if err := validateSpec(sp); err != nil {
			t.Fatal(err)
		}
		key := serviceKey{inet.AddrFromNetip(sp.VIP), sp.Port, sp.Proto}
		svc, err := d.buildService(sp, old.byKey[key], next)
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range svc.Dests {
			dst.stats.fast = nil // it reads the steering maps
		}
		next.byKey[key] = svc
		if int(svc.ID) >= len(next.services) {
			next.services = append(next.services, make([]*Service, int(svc.ID)+1-len(next.services))...)
		}
		next.services[svc.ID] = svc
		for _, la := range svc.LocalAddrs {
			next.locals[la] = true
		}
	}
	for key, svc := range old.byKey {
		if _, keep := next.byKey[key]; !keep {
			next.dropService(svc)
			d.removedSvcs = append(d.removedSvcs, removedService{id: svc.ID, at: nanotime()})
		}
	}
	d.state.Store(next)
}

func webSpec() ServiceSpec {
	return ServiceSpec{Name: "web", VIP: vipIP, Port: 80, Proto: 6, Scheduler: "rr", Fwd: lvs.FwdNAT,
		Dests: []DestSpec{{Addr: realIP, Port: 8080, Weight: 1, Fwd: lvs.FwdNAT}}}
}

// inject hands frame to worker `to` as if worker `from` had received it on
// inIface, in frame slot `slot` of from's UMEM region.
func inject(t *testing.T, d *Director, from, to, slot int, frame []byte, inIface int) uint64 {
	t.Helper()
	addr := d.umem.FrameAddr(from*unitRegion+slot) + d.umem.RxDataOffset()
	copy(d.umem.Bytes(addr, uint32(len(frame))), frame)
	w := d.workers[to]
	if !w.inbox[from].push(handoffEntry{addr: addr, len: uint32(len(frame)), iface: uint32(inIface)}) {
		t.Fatal("hand-off ring full")
	}
	w.wk.wake()
	return addr
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDirectorWorkersRun: frames handed to a running worker are processed
// by its loop; the connection shows in Connections, the counters and the
// real server's stats; the frame (which no socket can send here) is
// dropped as no_tx_queue and goes back to the worker whose region holds it.
func TestDirectorWorkersRun(t *testing.T) {
	d := newUnitDirector(t, 2)
	applySpecs(t, d, webSpec())
	// Worker 1 "received" the frame in its slot 0: it is not free.
	w1 := d.workers[1]
	slot0 := d.umem.FrameAddr(unitRegion)
	for i, a := range w1.free {
		if a == slot0 {
			w1.free = append(w1.free[:i], w1.free[i+1:]...)
			break
		}
	}
	startWorkers(d)
	l := &spLab{client: clientIP, vip: vipIP, real: realIP}
	frame := l.request(40000, lvs.TCPSyn, 0).bytes(t)
	inject(t, d, 1, 0, 0, frame, 0) // worker 1 hands a SYN to worker 0
	waitFor(t, "the SYN to be processed", func() bool { return d.Counters().Drops[DropNoTxQueue] == 1 })

	c := d.Counters()
	if c.NewConns != 1 || c.Inbound != 1 {
		t.Errorf("counters: %d new connections, %d inbound; want 1 and 1", c.NewConns, c.Inbound)
	}
	waitFor(t, "the connection count", func() bool { return d.Counters().Conns == 1 })
	waitFor(t, "the half-open count", func() bool { return d.ConnPressure().HalfOpen == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := d.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Conn{Proto: 6, State: "SYN_RECV", Client: netip.MustParseAddrPort("198.18.0.1:40000"),
		Virtual: netip.MustParseAddrPort("198.18.0.100:80"), Dest: netip.MustParseAddrPort("198.18.1.1:8080")}
	if len(cs) != 1 {
		t.Fatalf("Connections: %+v, want one", cs)
	}
	if got := cs[0]; got.Proto != want.Proto || got.State != want.State || got.Client != want.Client ||
		got.Virtual != want.Virtual || got.Dest != want.Dest || got.Local.IsValid() ||
		got.Expires <= 0 || got.Expires > time.Minute {
		t.Errorf("Connections: %+v, want %+v expiring within SYN_RECV's minute", got, want)
	}
	svcs := d.Services()
	if len(svcs) != 1 || svcs[0].Name != "web" {
		t.Fatalf("Services: %v", svcs)
	}
	dst := svcs[0].Dests[0]
	if s := dst.Stats(); s.Conns != 1 || s.InPkts != 1 || s.InBytes != uint64(len(frame)) {
		t.Errorf("real server stats %+v, want 1 connection, 1 packet of %d bytes", s, len(frame))
	}
	if dst.ActiveConns() != 1 {
		t.Errorf("active connections %d, want 1 (SYN_RECV is active)", dst.ActiveConns())
	}
	d.Close()
	// Worker 0 returned the frame of worker 1's region; worker 1 took it
	// back before it stopped, or it waits in the return ring.
	back := !w1.returns[0].empty()
	for _, a := range w1.free {
		back = back || a == slot0
	}
	for _, a := range d.workers[0].free {
		if a == slot0 {
			t.Errorf("worker 0 kept a frame of worker 1's region")
		}
	}
	if !back {
		t.Errorf("the dropped frame did not go back to worker 1")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestDirectorSyncMaster: with EnableSyncRecords the workers record new
// connections and the pump hands them to the sink.
func TestDirectorSyncMaster(t *testing.T) {
	d := newUnitDirector(t, 1)
	applySpecs(t, d, webSpec())
	var mu sync.Mutex
	var got []SyncRecord
	stop := d.EnableSyncRecords(func(b []SyncRecord) {
		mu.Lock()
		got = append(got, b...)
		mu.Unlock()
	})
	defer stop()
	// One worker: the test stands in for a second one's hand-off ring.
	d.workers[0].inbox = []*spsc{newSPSC(8)}
	d.workers[0].returns = []*spsc{newSPSC(8)}
	startWorkers(d)
	l := &spLab{client: clientIP, vip: vipIP, real: realIP}
	inject(t, d, 0, 0, 5, l.request(40000, lvs.TCPSyn, 0).bytes(t), 0)
	waitFor(t, "the sync entry", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	mu.Lock()
	e := got[0]
	mu.Unlock()
	if e.Kind != SyncConn || e.Client != inet.AddrFromNetip(clientIP) || e.CPort != 40000 ||
		e.Virtual != inet.AddrFromNetip(vipIP) || e.VPort != 80 || e.Dest != inet.AddrFromNetip(realIP) ||
		e.DPort != 8080 || e.State != conntrack.StateSynRecv || e.Remaining <= 0 {
		t.Errorf("sync entry %+v", e)
	}
}

// TestDirectorSyncBackup: entries from a master are installed by the
// owning worker: connections (with their state, learning L2 later),
// templates, deletions; entries for an unknown service or real server are
// counted.
func TestDirectorSyncBackup(t *testing.T) {
	d := newUnitDirector(t, 2)
	sp := webSpec()
	sp.Persistence = 5 * time.Minute
	sp.PersistBits = 32
	applySpecs(t, d, sp)
	startWorkers(d)
	entry := func(kind SyncKind, cport uint16) SyncRecord {
		return SyncRecord{Kind: kind, Proto: lvs.ProtoTCP, Fwd: lvs.FwdNAT, State: conntrack.StateEstablished,
			Remaining: 10 * time.Minute,
			Client:    inet.AddrFromNetip(clientIP), CPort: cport, Virtual: inet.AddrFromNetip(vipIP), VPort: 80,
			Dest: inet.AddrFromNetip(realIP), DPort: 8080}
	}
	unknownSvc := entry(SyncConn, 3)
	unknownSvc.VPort = 81
	unknownDst := entry(SyncConn, 4)
	unknownDst.DPort = 9090
	tmpl := entry(SyncTemplate, 0)
	d.InstallSyncRecords([]SyncRecord{entry(SyncConn, 1), entry(SyncConn, 2), unknownSvc, unknownDst, tmpl})
	waitFor(t, "the installs", func() bool { c := d.Counters(); return c.SyncInstalled == 2 && c.SyncUnknown == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := d.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("Connections after sync: %+v, want 2", cs)
	}
	for _, c := range cs {
		if c.State != "ESTABLISHED" || c.Expires < 9*time.Minute || c.Expires > 10*time.Minute {
			t.Errorf("synced connection %+v, want ESTABLISHED expiring in ~10m", c)
		}
	}
	ts, err := d.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Client != clientIP || ts[0].Dest != netip.MustParseAddrPort("198.18.1.1:8080") || ts[0].Virtual.Port() != 80 {
		t.Errorf("Templates: %+v, want the synced one", ts)
	}
	// A state change, then a deletion.
	upd := entry(SyncConn, 1)
	upd.State = conntrack.StateFinWait
	d.InstallSyncRecords([]SyncRecord{upd, entry(SyncDelete, 2), entry(SyncDelete, 99)})
	waitFor(t, "the update", func() bool {
		cs, _ := d.Connections(ctx)
		return len(cs) == 1 && cs[0].State == "FIN_WAIT"
	})
}

// TestDirectorPersistence: a persistent service sends a client's new
// connections to the server of its template, listed by Templates.
func TestDirectorPersistence(t *testing.T) {
	d := newUnitDirector(t, 1)
	sp := webSpec()
	sp.Persistence = time.Minute
	sp.PersistBits = 24
	sp.Dests = append(sp.Dests, DestSpec{Addr: netip.MustParseAddr("198.18.1.2"), Port: 8080, Weight: 1, Fwd: lvs.FwdNAT})
	applySpecs(t, d, sp)
	d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(realIP):                            {Iface: 1, DstMAC: [6]byte(realMAC), MTU: 1500},
		inet.AddrFromNetip(netip.MustParseAddr("198.18.1.2")): {Iface: 1, DstMAC: [6]byte(realMAC), MTU: 1500},
	})
	d.workers[0].inbox = []*spsc{newSPSC(16)}
	d.workers[0].returns = []*spsc{newSPSC(16)}
	startWorkers(d)
	l := &spLab{client: clientIP, vip: vipIP, real: realIP}
	for i := 0; i < 4; i++ {
		p := l.request(uint16(40000+i), lvs.TCPSyn, 0)
		if i == 3 {
			p.src = netip.MustParseAddr("198.18.0.9") // same /24
		}
		inject(t, d, 0, 0, i, p.bytes(t), 0)
	}
	waitFor(t, "four connections", func() bool { return d.Counters().NewConns == 4 })
	svc := d.Services()[0]
	if a, b := svc.Dests[0].Stats().Conns, svc.Dests[1].Stats().Conns; a+b != 4 || (a != 0 && b != 0) {
		t.Errorf("connections per server %d and %d: a persistent /24 must stick to one", a, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts, err := d.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Client != netip.MustParseAddr("198.18.0.0") || ts[0].Conns != 4 || ts[0].Expires <= 0 {
		t.Errorf("Templates %+v, want one for 198.18.0.0 controlling 4 connections", ts)
	}
}

// TestBuildService: what a re-applied configuration keeps and what it
// replaces. An unchanged service keeps its ID, scheduler and real servers
// (with their connections and counters); a new weight changes the server
// in place; a new scheduler replaces the scheduler only; a real server
// that leaves is quiesced and kept for its connections (draining); one
// whose forwarding method changes is a new server.
func TestBuildService(t *testing.T) {
	d := newUnitDirector(t, 1)
	sp := webSpec()
	second := netip.MustParseAddr("198.18.1.2")
	sp.Dests = append(sp.Dests, DestSpec{Addr: second, Port: 8080, Weight: 2, Fwd: lvs.FwdNAT})
	applySpecs(t, d, sp)
	s1 := d.Services()[0]
	a, b := s1.Dests[0], s1.Dests[1]
	if a.ID == b.ID || s1.Dests[1].Index != 1 || b.Weight() != 2 {
		t.Fatalf("dests %d %d index %d weight %d", a.ID, b.ID, b.Index, b.Weight())
	}

	applySpecs(t, d, sp)
	s2 := d.Services()[0]
	if s2 == s1 || s2.ID != s1.ID || s2.Sched != s1.Sched || s2.Dests[0] != a || s2.Dests[1] != b {
		t.Errorf("unchanged service: ID %d->%d, scheduler kept %v, servers kept %v %v", s1.ID, s2.ID,
			s2.Sched == s1.Sched, s2.Dests[0] == a, s2.Dests[1] == b)
	}

	sp.Dests[1].Weight = 5
	applySpecs(t, d, sp)
	if s := d.Services()[0]; s.Dests[1] != b || b.Weight() != 5 {
		t.Errorf("new weight: server replaced or weight %d", b.Weight())
	}

	if s1.Sloppy {
		t.Errorf("an rr service without sloppy is sloppy")
	}
	sp.Sloppy = true
	applySpecs(t, d, sp)
	if !d.Services()[0].Sloppy {
		t.Errorf("sloppy: true not applied")
	}
	sp.Sloppy, sp.Scheduler = false, "mh"
	applySpecs(t, d, sp)
	if !d.Services()[0].Sloppy {
		t.Errorf("an mh service is not sloppy: its flows cannot move between directors")
	}

	sp.Scheduler = "wlc"
	applySpecs(t, d, sp)
	s3 := d.Services()[0]
	if s3.Sched == s1.Sched || s3.ID != s1.ID || s3.Dests[0] != a || s3.SchedName != "wlc" || s3.Sloppy {
		t.Errorf("new scheduler: scheduler replaced %v, ID %d, servers kept %v, sloppy %v", s3.Sched != s1.Sched, s3.ID, s3.Dests[0] == a, s3.Sloppy)
	}

	// b leaves while it has a connection: quiescent, draining, still
	// wanted as a next hop; a's method changes: a new server.
	b.Transition(sched.ClassNone, sched.ClassActive) // one active connection
	sp.Dests = []DestSpec{{Addr: realIP, Port: 8080, Weight: 1, Fwd: lvs.FwdDR}}
	applySpecs(t, d, sp)
	s4 := d.Services()[0]
	if len(s4.Dests) != 1 || s4.Dests[0] == a || s4.Dests[0].Fwd != lvs.FwdDR || s4.Dests[0].ID == a.ID {
		t.Errorf("changed method: %+v", s4.Dests)
	}
	if !b.Removed.Load() || b.Weight() != 0 || !a.Removed.Load() {
		t.Errorf("left servers: b removed %v weight %d, a removed %v", b.Removed.Load(), b.Weight(), a.Removed.Load())
	}
	st := d.state.Load()
	if st.dest(b.ID) != b {
		t.Errorf("a draining server is no longer found by its ID")
	}
	wanted := map[inet.Addr]bool{}
	for _, x := range nextHopsWanted(st) {
		wanted[x] = true
	}
	if !wanted[inet.AddrFromNetip(second)] || !wanted[inet.AddrFromNetip(realIP)] {
		t.Errorf("next hops wanted %v: the draining server and the new one are needed", wanted)
	}
	b.Transition(sched.ClassActive, sched.ClassNone) // its last connection ends
	for _, x := range nextHopsWanted(d.state.Load()) {
		if x == inet.AddrFromNetip(second) {
			t.Errorf("a drained server is still wanted as a next hop")
		}
	}

	// A second service gets the next ID; removing the first keeps its slot empty.
	other := webSpec()
	other.Name, other.Port = "other", 443
	applySpecs(t, d, sp, other)
	if svcs := d.Services(); len(svcs) != 2 || svcs[1].ID != s1.ID+1 {
		t.Errorf("services %v", svcs)
	}
	applySpecs(t, d, other)
	if svcs := d.Services(); len(svcs) != 1 || svcs[0].Name != "other" || d.state.Load().service(s1.ID) != nil {
		t.Errorf("after removing web: %v", svcs)
	}
	if !s4.Dests[0].Removed.Load() {
		t.Errorf("the removed service's server is not drained")
	}
}

// TestApplyRefusesBadSpecs: Apply checks every spec before it touches
// anything (so these need no steering maps).
func TestApplyRefusesBadSpecs(t *testing.T) {
	d := newUnitDirector(t, 1)
	v6 := webSpec()
	v6.Dests[0].Addr = realIP6
	noVIP := webSpec()
	noVIP.VIP = netip.Addr{}
	icmp := webSpec()
	icmp.Proto = 1
	badSched := webSpec()
	badSched.Scheduler = "nope"
	for _, tc := range []struct {
		specs []ServiceSpec
		want  string
	}{
		{[]ServiceSpec{noVIP}, "no vip"},
		{[]ServiceSpec{icmp}, "protocol 1"},
		{[]ServiceSpec{v6}, "address family"},
		{[]ServiceSpec{webSpec(), webSpec()}, "duplicate"},
		{[]ServiceSpec{badSched}, "nope"},
	} {
		err := d.Apply(tc.specs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply: %v, want an error about %q", err, tc.want)
		}
	}
	if len(d.Services()) != 0 {
		t.Errorf("a refused Apply installed services")
	}
}

// TestDestStats: counters since the last Zero, and IPVS-style rates.
func TestDestStats(t *testing.T) {
	st := newDestStats(2)
	dst := &Dest{stats: st}
	add := func(w int, conns, pkts, bytes uint64) {
		c := &st.perWorker[w]
		c.conns.Add(conns)
		c.inPkts.Add(pkts)
		c.outPkts.Add(pkts)
		c.inBytes.Add(bytes)
		c.outBytes.Add(bytes)
	}
	add(0, 1, 10, 1000)
	add(1, 2, 20, 2000)
	if s := dst.Stats(); s != (Stats{3, 30, 30, 3000, 3000}) {
		t.Errorf("Stats %+v, want both workers summed", s)
	}
	st.fast = func() Stats { return Stats{InPkts: 5, OutPkts: 7, InBytes: 500, OutBytes: 700} }
	if s := dst.Stats(); s != (Stats{3, 35, 37, 3500, 3700}) {
		t.Errorf("Stats with the fast path %+v", s)
	}
	dst.Zero()
	if s := dst.Stats(); s != (Stats{}) {
		t.Errorf("Stats after Zero %+v", s)
	}
	st.fast = nil
	st.base = Stats{}
	st.estimate(2 * time.Second) // primes
	if r := dst.Rates(); r != (Rates{}) {
		t.Errorf("rates after the first sample %+v", r)
	}
	add(0, 8, 800, 80000) // over 2 s: 4 cps, 400 pps, 40000 Bps
	st.estimate(2 * time.Second)
	if r := dst.Rates(); r != (Rates{1, 100, 100, 10000, 10000}) {
		t.Errorf("rates %+v, want a quarter of the sample (IPVS's weight)", r)
	}
	st.estimate(2 * time.Second)
	if r := dst.Rates(); r.InPPS != 75 {
		t.Errorf("rates decay to %d pps, want 75", r.InPPS)
	}
}

// TestCountersAndNames: Counters sums every worker; every drop reason has
// a distinct metric name.
func TestCountersAndNames(t *testing.T) {
	d := newUnitDirector(t, 2)
	d.workers[0].ctr.RxPackets.Add(3)
	d.workers[1].ctr.RxPackets.Add(4)
	d.workers[1].ctr.TxBytes.Add(9)
	d.workers[0].ctr.Drops[DropTTL].Add(2)
	d.workers[1].ctr.Drops[DropTTL].Add(5)
	d.workers[1].ctr.SynCookiesRejected.Add(6)
	d.workers[0].connCount.Store(10)
	d.workers[1].connCount.Store(11)
	c := d.Counters()
	if c.RxPackets != 7 || c.TxBytes != 9 || c.Drops[DropTTL] != 7 || c.SynCookiesRejected != 6 || c.Conns != 21 || c.TxPackets != 0 {
		t.Errorf("Counters %+v", c)
	}
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		n := r.String()
		if n == "" || seen[n] {
			t.Errorf("drop reason %d: name %q empty or repeated", r, n)
		}
		seen[n] = true
	}
	if len(seen) != int(numDropReasons) {
		t.Errorf("%d drop reasons, want %d", len(seen), numDropReasons)
	}
	for m, want := range map[SynProxyMode]string{SynProxyAuto: "auto", SynProxyOn: "on", SynProxyOff: "off", 9: "SynProxyMode(9)"} {
		if m.String() != want {
			t.Errorf("mode %d: %q, want %q", m, m.String(), want)
		}
	}
	if rs, err := d.RingStats(); err != nil || len(rs) != 0 {
		t.Errorf("RingStats without sockets: %v %v", rs, err)
	}
	if ifs := d.Interfaces(); len(ifs) != 2 || ifs[0].Name != "d0" {
		t.Errorf("Interfaces %v", ifs)
	}
}
