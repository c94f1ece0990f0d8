package dataplane

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// fakeSynSteering stands in for the steering program: SYN counters the test
// advances, and the flags the guard wrote.
type fakeSynSteering struct {
	syns   map[uint32]uint64
	flags  map[bpf.Endpoint]bpf.VIPFlags
	writes int
	err    error // ServiceSYNs fails with it when set
}

func newFakeSynSteering() *fakeSynSteering {
	return &fakeSynSteering{syns: map[uint32]uint64{}, flags: map[bpf.Endpoint]bpf.VIPFlags{}}
}

func (f *fakeSynSteering) ServiceSYNs(id uint32) (uint64, error) { return f.syns[id], f.err }
func (f *fakeSynSteering) SetVIPFlags(e bpf.Endpoint, fl bpf.VIPFlags) error {
	f.flags[e] = fl
	f.writes++
	return nil
}

func guardService(id uint32, name string, port uint16, proto lvs.Proto, mode SynProxyMode, fwds ...lvs.Fwd) *Service {
	svc := &Service{ID: id, Name: name, VIP: inet.AddrFromNetip(netip.MustParseAddr("198.18.0.100")), Port: port, Proto: proto,
		Fwd: lvs.FwdNAT, SynProxy: mode}
	if len(fwds) > 0 {
		svc.Fwd = fwds[0]
	}
	for i, f := range fwds {
		svc.Dests = append(svc.Dests, &Dest{Dest: sched.NewDest(inet.AddrFromNetip(netip.MustParseAddr("198.18.1.1")), uint16(8080+i), 1), Fwd: f})
	}
	return svc
}

func endpointOf(s *Service) bpf.Endpoint {
	return bpf.Endpoint{Addr: s.VIP, Port: s.Port, Proto: uint8(s.Proto)}
}

// guardHarness runs a guard on a fake clock.
type guardHarness struct {
	t     *testing.T
	g     *synGuard
	steer *fakeSynSteering
	log   *bytes.Buffer
	now   time.Time
	svcs  []*Service
	half  int
}

func newGuardHarness(t *testing.T, o SynGuardOptions, svcs ...*Service) *guardHarness {
	h := &guardHarness{t: t, steer: newFakeSynSteering(), log: &bytes.Buffer{}, now: time.Unix(1000, 0), svcs: svcs}
	h.g = newSynGuard(slog.New(slog.NewTextHandler(h.log, nil)), h.steer, o)
	return h
}

// run advances the clock by ticks of synGuardEvery, each adding synsPerSec
// worth of SYNs to the service with ID id.
func (h *guardHarness) run(ticks int, id uint32, synsPerSec uint64) {
	for range ticks {
		h.now = h.now.Add(synGuardEvery)
		h.steer.syns[id] += synsPerSec / uint64(time.Second/synGuardEvery)
		h.g.tick(h.now, h.svcs, h.half, false)
	}
}

func (h *guardHarness) flags(s *Service) bpf.VIPFlags { return h.steer.flags[endpointOf(s)] }

func (h *guardHarness) logCount(msg string) int {
	return strings.Count(h.log.String(), `msg="`+msg+`"`)
}

func TestSynGuardModes(t *testing.T) {
	auto := guardService(0, "auto", 80, 6, SynProxyAuto, lvs.FwdNAT)
	on := guardService(1, "on", 81, 6, SynProxyOn, lvs.FwdFullNAT)
	off := guardService(2, "off", 82, 6, SynProxyOff, lvs.FwdNAT)
	dr := guardService(3, "dr", 83, 6, SynProxyAuto, lvs.FwdDR)
	mixed := guardService(4, "mixed", 84, 6, SynProxyOn, lvs.FwdNAT, lvs.FwdTun)
	udp := guardService(5, "udp", 53, 17, SynProxyAuto, lvs.FwdNAT)
	h := newGuardHarness(t, SynGuardOptions{HalfOpen: 100, SynRate: 1000}, auto, on, off, dr, mixed, udp)
	h.run(1, 0, 0)
	want := map[*Service]bpf.VIPFlags{
		auto: bpf.VIPSynProxyCapable, on: bpf.VIPSynProxyCapable | bpf.VIPSynProxyOn,
		off: 0, dr: 0, mixed: 0,
	}
	for s, f := range want {
		got, written := h.steer.flags[endpointOf(s)]
		if !written || got != f {
			t.Errorf("%s: flags %v (written %v), want %v", s.Name, got, written, f)
		}
	}
	if _, written := h.steer.flags[endpointOf(udp)]; written {
		t.Errorf("udp service got flags")
	}
	// Unchanged flags are not rewritten every tick.
	writes := h.steer.writes
	h.run(10, 0, 0)
	if h.steer.writes != writes {
		t.Errorf("%d flag writes in 10 quiet ticks, want 0", h.steer.writes-writes)
	}
	st := h.g.status(h.svcs)
	if len(st) != 5 {
		t.Fatalf("status lists %d services, want the 5 TCP ones: %+v", len(st), st)
	}
	for _, s := range st {
		wantEngaged := s.Service == "on"
		wantCapable := s.Service == "auto" || s.Service == "on"
		if s.Engaged != wantEngaged || s.Capable != wantCapable {
			t.Errorf("status %+v: want engaged %v capable %v", s, wantEngaged, wantCapable)
		}
	}
	if n := h.logCount("syn proxy engaged"); n != 0 {
		t.Errorf("%d engage lines without pressure", n)
	}
}

func TestSynGuardEngagesOnRate(t *testing.T) {
	auto := guardService(7, "web", 80, 6, SynProxyAuto, lvs.FwdNAT)
	h := newGuardHarness(t, SynGuardOptions{HalfOpen: 100, SynRate: 1000, Hold: time.Second}, auto)
	h.run(5, 7, 900) // below the threshold
	if h.flags(auto) != bpf.VIPSynProxyCapable {
		t.Fatalf("engaged below the rate: %v", h.flags(auto))
	}
	h.run(1, 7, 5000)
	if h.flags(auto) != bpf.VIPSynProxyCapable|bpf.VIPSynProxyOn {
		t.Fatalf("not engaged at 5000 SYNs/s: %v", h.flags(auto))
	}
	if h.logCount("syn proxy engaged") != 1 || !strings.Contains(h.log.String(), "reason=syn_rate") ||
		!strings.Contains(h.log.String(), "service=web rate=5000 half_open=0") {
		t.Errorf("engage log:\n%s", h.log)
	}
	// Between half and the full threshold it stays engaged, indefinitely.
	h.run(50, 7, 800)
	if h.flags(auto)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("disengaged while the rate was above half the threshold")
	}
	// Below half: engaged for the hold time, then off, with one line.
	h.run(9, 7, 100)
	if h.flags(auto)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("disengaged before the hold time")
	}
	h.run(2, 7, 100)
	if h.flags(auto) != bpf.VIPSynProxyCapable {
		t.Fatalf("still engaged after the hold time: %v", h.flags(auto))
	}
	if h.logCount("syn proxy disengaged") != 1 {
		t.Errorf("disengage log:\n%s", h.log)
	}
	// A burst during the hold restarts it.
	h.run(1, 7, 5000)
	h.run(5, 7, 0)
	h.run(1, 7, 700) // above half: the calm period ends
	h.run(9, 7, 0)
	if h.flags(auto)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("the hold did not restart after a burst above half the threshold")
	}
	h.run(2, 7, 0)
	if h.flags(auto)&bpf.VIPSynProxyOn != 0 {
		t.Fatal("still engaged after a full quiet hold")
	}
	if h.logCount("syn proxy engaged") != 2 || h.logCount("syn proxy disengaged") != 2 {
		t.Errorf("want 2 engage and 2 disengage lines:\n%s", h.log)
	}
}

func TestSynGuardEngagesOnHalfOpen(t *testing.T) {
	a := guardService(0, "a", 80, 6, SynProxyAuto, lvs.FwdNAT)
	b := guardService(1, "b", 443, 6, SynProxyAuto, lvs.FwdFullNAT)
	dr := guardService(2, "dr", 22, 6, SynProxyAuto, lvs.FwdDR)
	h := newGuardHarness(t, SynGuardOptions{HalfOpen: 100, SynRate: 1000, Hold: time.Second}, a, b, dr)
	h.half = 100 // at the threshold: not above it
	h.run(3, 0, 0)
	if h.flags(a)&bpf.VIPSynProxyOn != 0 {
		t.Fatal("engaged at exactly the threshold")
	}
	h.half = 101
	h.run(1, 0, 0)
	for _, s := range []*Service{a, b} {
		if h.flags(s) != bpf.VIPSynProxyCapable|bpf.VIPSynProxyOn {
			t.Errorf("%s not engaged above the half-open threshold: %v", s.Name, h.flags(s))
		}
	}
	if h.flags(dr) != 0 {
		t.Errorf("dr service got flags %v", h.flags(dr))
	}
	if h.logCount("syn proxy engaged") != 2 || !strings.Contains(h.log.String(), "reason=half_open") {
		t.Errorf("engage log:\n%s", h.log)
	}
	h.half = 60 // above half: stays
	h.run(20, 0, 0)
	if h.flags(a)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("disengaged above half the half-open threshold")
	}
	h.half = 49
	h.run(11, 0, 0)
	if h.flags(a)&bpf.VIPSynProxyOn != 0 || h.flags(b)&bpf.VIPSynProxyOn != 0 {
		t.Fatal("not disengaged after the hold")
	}
}

// A threshold of 0 switches its trigger off.
func TestSynGuardZeroThresholds(t *testing.T) {
	a := guardService(0, "a", 80, 6, SynProxyAuto, lvs.FwdNAT)
	h := newGuardHarness(t, SynGuardOptions{}, a)
	h.half = 1 << 20
	h.run(5, 0, 1<<24)
	if h.flags(a) != bpf.VIPSynProxyCapable {
		t.Fatalf("engaged with both triggers off: %v", h.flags(a))
	}
}

// Apply's reapply rewrites every service's flags (a new endpoint has none)
// without taking a rate sample, so that engagement survives a service change.
func TestSynGuardReapply(t *testing.T) {
	a := guardService(0, "a", 80, 6, SynProxyAuto, lvs.FwdNAT)
	h := newGuardHarness(t, SynGuardOptions{SynRate: 1000, Hold: time.Second}, a)
	h.run(1, 0, 0)
	h.run(1, 0, 5000)
	if h.flags(a)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("not engaged")
	}
	// The map lost the flags (AddVIP of a re-created entry).
	h.steer.flags[endpointOf(a)] = 0
	// A service change: same ID, a real server added, a new snapshot.
	a2 := guardService(0, "a", 80, 6, SynProxyAuto, lvs.FwdNAT, lvs.FwdNAT)
	h.svcs = []*Service{a2}
	h.now = h.now.Add(time.Millisecond)
	h.steer.syns[0] += 1 // one SYN in a millisecond must not count as 1000/s
	h.g.tick(h.now, h.svcs, 0, true)
	if h.flags(a2) != bpf.VIPSynProxyCapable|bpf.VIPSynProxyOn {
		t.Fatalf("after reapply flags %v, want capable|on", h.flags(a2))
	}
	// syn_proxy changed to off: flags cleared at once, one disengage line.
	off := guardService(0, "a", 80, 6, SynProxyOff, lvs.FwdNAT)
	h.svcs = []*Service{off}
	h.g.tick(h.now, h.svcs, 0, true)
	if h.flags(off) != 0 || h.logCount("syn proxy disengaged") != 1 {
		t.Fatalf("after switching off: flags %v, log\n%s", h.flags(off), h.log)
	}
	// A removed service's state goes.
	h.svcs = nil
	h.run(1, 0, 0)
	if len(h.g.svcs) != 0 {
		t.Errorf("state of a removed service kept: %+v", h.g.svcs)
	}
}

// Without SYN counters (an error from the map) the rate trigger is off,
// with one warning, and half-open still works.
func TestSynGuardCounterError(t *testing.T) {
	a := guardService(0, "a", 80, 6, SynProxyAuto, lvs.FwdNAT)
	h := newGuardHarness(t, SynGuardOptions{HalfOpen: 10, SynRate: 1}, a)
	h.steer.err = errors.New("no such map")
	h.run(5, 0, 1000)
	if h.flags(a)&bpf.VIPSynProxyOn != 0 {
		t.Fatal("engaged on a rate it could not read")
	}
	if n := strings.Count(h.log.String(), "cannot read the SYN counters"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, h.log)
	}
	h.half = 11
	h.run(1, 0, 0)
	if h.flags(a)&bpf.VIPSynProxyOn == 0 {
		t.Fatal("half-open trigger did not work without SYN counters")
	}
}
