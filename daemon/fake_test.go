package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/config"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/healthcheck"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// fakeDataPath stands in for the AF_XDP data path: it records what the
// daemon applies and serves chosen counters.
type fakeDataPath struct {
	mu          sync.Mutex
	applied     [][]dataplane.ServiceSpec
	applyErr    error
	services    []*dataplane.Service // built from the last Apply unless set
	dests       map[string]*dataplane.Dest
	counters    dataplane.Counters
	steer       bpf.Counters
	steerErr    error
	synStatus   []dataplane.SynProxyStatus
	pressure    dataplane.ConnPressure
	rings       []dataplane.RingStats
	ringErr     error
	fastPath    []dataplane.FastPathState
	timeouts    []conntrack.Timeouts
	synGuard    []dataplane.SynGuardOptions
	steerLimits []dataplane.SteerLimit
	synGuardErr error
	conns       []dataplane.Conn
	tmpls       []dataplane.Template
	connErr     error
	installed   [][]dataplane.SyncRecord
	syncPump    func([]dataplane.SyncRecord) // the master sync daemon's, from EnableSyncRecords
	expired     chan string                  // ExpireTemplates calls, "vip:port/proto dest"
	stops       []string                     // "close" (state kept) or "shutdown" (for good), in order
}

func (f *fakeDataPath) Apply(specs []dataplane.ServiceSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	f.applied = append(f.applied, specs)
	if f.dests == nil {
		f.dests = map[string]*dataplane.Dest{}
	}
	// Like the Director: a real server keeps its counters across applies.
	f.services = nil
	for i, sp := range specs {
		svc := &dataplane.Service{ID: uint32(i), Name: sp.Name, FwMark: sp.FwMark, Match: sp.Match, VIP: inet.AddrFromNetip(sp.VIP), Port: sp.Port, Proto: sp.Proto,
			Fwd: sp.Fwd, SchedName: sp.Scheduler, Flags: sp.Flags, Persistence: sp.Persistence, PersistBits: sp.PersistBits, SynProxy: sp.SynProxy,
			ProxyProtocol: sp.ProxyProtocol, TOA: sp.TOA}
		for _, la := range sp.LocalAddrs {
			svc.LocalAddrs = append(svc.LocalAddrs, inet.AddrFromNetip(la))
		}
		for _, ds := range sp.Dests {
			k := sp.Name + "/" + netip.AddrPortFrom(ds.Addr, ds.Port).String()
			d := f.dests[k]
			if d == nil {
				d = dataplane.NewDetachedDest(ds, sp.Proto, dataplane.Stats{}, 0, 0)
				f.dests[k] = d
			}
			d.SetWeight(ds.Weight)
			d.SetThresholds(ds.Upper, ds.Lower)
			svc.Dests = append(svc.Dests, d)
		}
		f.services = append(f.services, svc)
	}
	return nil
}

// last returns the specs of the latest Apply.
func (f *fakeDataPath) last(t *testing.T) []dataplane.ServiceSpec {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		t.Fatal("nothing applied")
	}
	return f.applied[len(f.applied)-1]
}

func (f *fakeDataPath) applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func (f *fakeDataPath) Start() error { return nil }
func (f *fakeDataPath) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, "shutdown")
	return nil
}
func (f *fakeDataPath) Adopted() bool                   { return false }
func (f *fakeDataPath) WaitNextHops(time.Duration) bool { return true }
func (f *fakeDataPath) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, "close")
	return nil
}
func (f *fakeDataPath) SetTimeouts(t conntrack.Timeouts)        { f.timeouts = append(f.timeouts, t) }
func (f *fakeDataPath) Counters() dataplane.Counters            { return f.counters }
func (f *fakeDataPath) SteeringCounters() (bpf.Counters, error) { return f.steer, f.steerErr }
func (f *fakeDataPath) Services() []*dataplane.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.services
}
func (f *fakeDataPath) SynProxyStatus() []dataplane.SynProxyStatus { return f.synStatus }
func (f *fakeDataPath) ConnPressure() dataplane.ConnPressure       { return f.pressure }
func (f *fakeDataPath) RingStats() ([]dataplane.RingStats, error)  { return f.rings, f.ringErr }
func (f *fakeDataPath) FastPathStates() []dataplane.FastPathState  { return f.fastPath }
func (f *fakeDataPath) SetSynGuard(o dataplane.SynGuardOptions) error {
	if f.synGuardErr != nil {
		return f.synGuardErr
	}
	f.synGuard = append(f.synGuard, o)
	return nil
}
func (f *fakeDataPath) SetSteerLimit(l dataplane.SteerLimit) error {
	f.steerLimits = append(f.steerLimits, l)
	return nil
}
func (f *fakeDataPath) Connections(context.Context) ([]dataplane.Conn, error) {
	return f.conns, f.connErr
}
func (f *fakeDataPath) Templates(context.Context) ([]dataplane.Template, error) {
	return f.tmpls, f.connErr
}
func (f *fakeDataPath) ExpireTemplates(_ context.Context, vip netip.Addr, port uint16, proto lvs.Proto, dest netip.AddrPort) (int, error) {
	f.mu.Lock()
	ch := f.expired
	f.mu.Unlock()
	if ch != nil {
		ch <- fmt.Sprintf("%s/%d %s", netip.AddrPortFrom(vip, port), proto, dest)
	}
	return 1, nil
}
func (f *fakeDataPath) ExpireMarkTemplates(_ context.Context, mark uint32, dest netip.AddrPort) (int, error) {
	f.mu.Lock()
	ch := f.expired
	f.mu.Unlock()
	if ch != nil {
		ch <- fmt.Sprintf("fwmark %d %s", mark, dest)
	}
	return 1, nil
}

// EnableSyncRecords keeps the master's pump, for a test to feed it as the
// workers would.
func (f *fakeDataPath) EnableSyncRecords(pump func([]dataplane.SyncRecord)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncPump = pump
	return func() {}
}

func (f *fakeDataPath) InstallSyncRecords(e []dataplane.SyncRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installed = append(f.installed, e)
}

var _ dataPath = (*fakeDataPath)(nil)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestDaemon starts a Daemon as Run does, on a fake data path, with the
// configuration yaml (written to a file, so that Reload reads it).
func newTestDaemon(t *testing.T, yaml string) (*Daemon, *fakeDataPath) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "govs.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDataPath{}
	d := &Daemon{path: path, log: quietLog(), cfg: cfg, timeouts: timeouts(cfg), up: map[string]bool{}, sync: &connSync{}, dp: f,
		stops: make(chan stopRequest, 1)}
	if d.services, err = servicesFromConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := d.apply(); err != nil {
		t.Fatal(err)
	}
	return d, f
}

// rewrite replaces the daemon's configuration file (for Reload).
func rewrite(t *testing.T, d *Daemon, yaml string) {
	t.Helper()
	if err := os.WriteFile(d.path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stillClock is a health-check clock whose timers never fire: checks run
// only when a test says so (by calling onHealthChange).
type stillClock struct{}

func (stillClock) Now() time.Time                                    { return time.Unix(0, 0) }
func (stillClock) AfterFunc(time.Duration, func()) healthcheck.Timer { return stillTimer{} }

type stillTimer struct{}

func (stillTimer) Stop() bool { return true }

// withHealth gives d a health checker that never checks on its own.
func withHealth(t *testing.T, d *Daemon) {
	t.Helper()
	d.health = &healthState{transitions: map[string]uint64{}, viaVIP: map[string]*vipRoute{}}
	d.health.m = healthcheck.NewManager(stillClock{}, d.onHealthChange, d.log)
	t.Cleanup(d.stopHealth)
	d.mu.Lock()
	d.setHealthTargets()
	d.mu.Unlock()
}
