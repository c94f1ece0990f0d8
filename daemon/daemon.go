package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govs/govs/bgp"
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/config"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/internal/sdnotify"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// Daemon is a running director.
type Daemon struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex // serialises every change
	cfg      *config.Config
	services []*service // what the operator asked for, in order
	timeouts conntrack.Timeouts
	up       map[string]bool      // health by destKey; absent = up
	quiesced map[quiescedKey]bool // weight 0 in the last apply (expireQuiescent)
	dp       dataPath
	health   *healthState
	vips     *managedVIPs     // nil unless director.manage_vips
	bgp      *bgp.Speaker     // nil unless director.bgp
	sync     *connSync        // the sync daemon's parts (director.sync, --start-daemon)
	stops    chan stopRequest // govsadm --shutdown, a successor's takeover (lifecycle.go)
	reloads  reloadCounts     // Reload's results (govs_config_reloads_total)
}

// RunOptions change how Run starts.
type RunOptions struct {
	// Takeover replaces a govsd that is running with the same control
	// socket: it hands its sockets and connections over (the upgrade
	// procedure). Without it, a running govsd is an error.
	Takeover bool
}

// Run loads the configuration at path and runs the director until ctx ends
// or SIGINT/SIGTERM arrives. SIGHUP reloads the configuration.
func Run(ctx context.Context, path string, log *slog.Logger) error {
	return RunWith(ctx, path, log, RunOptions{})
}

// RunWith is Run with options. How govsd ends, and what it leaves for the
// next one, is in lifecycle.go.
func RunWith(ctx context.Context, path string, log *slog.Logger, opts RunOptions) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	warnings, err := config.CheckHost(cfg, path)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		return err
	}
	access, err := controlAccess(cfg)
	if err != nil {
		return err
	}
	d := &Daemon{path: path, log: log, cfg: cfg, timeouts: timeouts(cfg), up: map[string]bool{}, sync: &connSync{},
		stops: make(chan stopRequest, 1)}
	if d.services, err = servicesFromConfig(cfg); err != nil {
		return err
	}
	if govsdRunning(cfg.Director.ControlSocket) {
		if !opts.Takeover {
			return fmt.Errorf("control socket %s: another govsd is running (govsd --takeover replaces it)", cfg.Director.ControlSocket)
		}
		if err := takeOver(cfg, log); err != nil {
			return err
		}
	}
	d.dp, err = dataplane.New(dataplaneOptions(cfg), log)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		// A start that failed half way, or a return below without a
		// stop: stop as for SIGTERM (what was pinned stays).
		if !stopped {
			if err := d.stopDataPath(stopRestart); err != nil {
				log.Error("shutdown", "err", err)
			}
		}
	}()
	if err := d.apply(); err != nil {
		return fmt.Errorf("apply configuration: %w", err)
	}
	if err := d.dp.Start(); err != nil {
		return err
	}
	defer d.sync.stop()
	if cfg.Director.Sync != nil {
		if err := d.startSync(cfg.Director.Sync); err != nil {
			return err
		}
	}
	if cfg.Director.ManageVIPs {
		d.vips = newManagedVIPs(log)
		// VIPs already there were added by the govsd this one took the
		// state over from: ours to remove at a stop for good.
		d.vips.adoptExisting = d.dp.Adopted()
		if err := d.syncVIPs(); err != nil {
			return err
		}
	}
	d.startHealth()
	defer d.stopHealth()
	if cfg.Director.BGP != nil {
		if err := d.startBGP(cfg.Director.BGP); err != nil {
			return err
		}
		defer d.stopBGP()
		d.mu.Lock()
		d.syncRoutes()
		d.mu.Unlock()
	}
	if !d.dp.WaitNextHops(3 * time.Second) {
		log.Warn("some real servers' next hops are not resolved yet; their first packets are dropped until they are")
	}
	ctl, err := control.ListenAccess(cfg.Director.ControlSocket, d, log, access)
	if err != nil {
		return err
	}
	defer ctl.Close()
	if cfg.Director.MetricsListen != "" {
		stop, err := d.serveMetrics(cfg.Director.MetricsListen)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("govsd running", "config", path, "services", len(cfg.Services),
		"interfaces", strings.Join(cfg.Director.Interfaces, ","), "control_socket", cfg.Director.ControlSocket)
	notify(log, sdnotify.Ready) // systemd Type=notify: started

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			stopped = true
			notify(log, sdnotify.Stopping)
			return d.stopDataPath(stopRestart)
		case req := <-d.stops:
			stopped = true
			notify(log, sdnotify.Stopping)
			err := d.stopDataPath(req.kind)
			req.done <- err
			return err
		case s := <-sigs:
			if s == syscall.SIGHUP {
				notify(log, sdnotify.Reloading())
				if err := d.Reload(); err != nil {
					log.Error("reload refused, running configuration unchanged", "err", err)
				}
				notify(log, sdnotify.Ready)
				continue
			}
			log.Info("stopping", "signal", s.String())
			notify(log, sdnotify.Stopping)
			stopped = true
			return d.stopDataPath(stopRestart)
		}
	}
}

// notify tells systemd (sd_notify, $NOTIFY_SOCKET) the state; nothing
// without a supervisor asking for it.
func notify(log *slog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn("sd_notify", "err", err)
	}
}

// controlAccess is who may use the control socket: uid 0 and CAP_NET_ADMIN,
// and for listings the members of director.control_group.
func controlAccess(cfg *config.Config) (control.Access, error) {
	a := control.AdminOnly
	if g := cfg.Director.ControlGroup; g != "" {
		gid, err := config.LookupGroup(g)
		if err != nil {
			return a, fmt.Errorf("director.control_group: %w", err)
		}
		a.ListGroup, a.GroupName = gid, g
	}
	return a, nil
}

// syncVIPs puts the VIPs of the current services on the interfaces when
// director.manage_vips is set. Callers hold d.mu or run before serving.
func (d *Daemon) syncVIPs() error {
	if d.vips == nil {
		return nil
	}
	var vips []netip.Addr
	for _, s := range d.services {
		if s.spec.FwMark == 0 { // a mark's addresses are not managed
			vips = append(vips, s.spec.VIP)
		}
	}
	return d.vips.sync(vips, d.cfg.Director.Interfaces)
}

// Reload re-reads the configuration file and applies the difference: the
// file's services replace what runs (changes made with govsadm are in memory
// only, like ipvsadm's). An invalid file changes nothing. SIGHUP and
// govsadm --reload both come here; each result is counted.
func (d *Daemon) Reload() error {
	err := d.reload()
	d.reloads.count(err)
	return err
}

func (d *Daemon) reload() error {
	cfg, err := config.Load(d.path)
	if err != nil {
		return err
	}
	svcs, err := servicesFromConfig(cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	old := d.cfg.Director
	if !slices.Equal(old.Interfaces, cfg.Director.Interfaces) || old.XDPMode != cfg.Director.XDPMode ||
		old.ConnTableSize != cfg.Director.ConnTableSize || old.ControlSocket != cfg.Director.ControlSocket ||
		old.MetricsListen != cfg.Director.MetricsListen || old.BusyPoll != cfg.Director.BusyPoll || old.WorkerNice != cfg.Director.WorkerNice ||
		old.ControlGroup != cfg.Director.ControlGroup || !slices.Equal(old.AcceptForeignMAC, cfg.Director.AcceptForeignMAC) ||
		old.BPFPinPath != cfg.Director.BPFPinPath {
		d.log.Warn("director settings (interfaces, accept_foreign_mac, xdp_mode, conn_table_size, control_socket, control_group, metrics_listen, busy_poll, worker_nice, bpf_pin_path) change only on restart")
	}
	d.mu.Unlock()
	err = d.change(func([]*service) ([]*service, error) { return svcs, nil })
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cfg.Director.Timeouts != old.Timeouts {
		d.timeouts = timeouts(cfg)
		d.dp.SetTimeouts(d.timeouts)
	}
	if cfg.Director.SynGuard != old.SynGuard {
		if err := d.dp.SetSynGuard(synGuardOptions(cfg)); err != nil {
			// The services are applied already; the old SYN settings
			// stay, and the next reload tries again.
			d.log.Error("reload: syn_proxy/syn_limit settings not applied", "err", err)
			cfg.Director.SynGuard = old.SynGuard
		}
	}
	if cfg.Director.SteerLimit != old.SteerLimit {
		if err := d.dp.SetSteerLimit(steerLimit(cfg)); err != nil {
			d.log.Error("reload: steer_limit not applied", "err", err)
			cfg.Director.SteerLimit = old.SteerLimit
		}
	}
	d.cfg = cfg
	d.log.Info("configuration reloaded", "config", d.path, "services", len(cfg.Services))
	return nil
}

func dataplaneOptions(cfg *config.Config) dataplane.Options {
	mode := bpf.ModeAuto
	switch cfg.Director.XDPMode {
	case config.XDPNative:
		mode = bpf.ModeNative
	case config.XDPGeneric:
		mode = bpf.ModeGeneric
	}
	return dataplane.Options{
		Interfaces:       cfg.Director.Interfaces,
		AcceptForeignMAC: cfg.Director.AcceptForeignMAC,
		XDPMode:          mode,
		ConnTableSize:    cfg.Director.ConnTableSize,
		Timeouts:         timeouts(cfg),
		BusyPoll:         cfg.Director.BusyPoll,
		WorkerNice:       cfg.Director.WorkerNice,
		FastPath:         cfg.Director.FastPath,
		PinPath:          cfg.Director.BPFPinPath,
		SynGuard:         synGuardOptions(cfg),
		SteerLimit:       steerLimit(cfg),
	}
}

// steerLimit maps director.steer_limit.
func steerLimit(cfg *config.Config) dataplane.SteerLimit {
	l := cfg.Director.SteerLimit
	return dataplane.SteerLimit{Auto: l.Auto, PPS: l.PPS}
}

// synGuardOptions maps the director's syn_proxy_* and syn_limit* keys.
func synGuardOptions(cfg *config.Config) dataplane.SynGuardOptions {
	g := cfg.Director.SynGuard
	return dataplane.SynGuardOptions{
		HalfOpen: g.HalfOpen,
		SynRate:  g.SynRate,
		Limit:    g.Limit,
		Burst:    g.Burst,
		MSS:      g.MSS,
	}
}

// synProxyMode maps a service's syn_proxy key.
func synProxyMode(m config.SynProxyMode) dataplane.SynProxyMode {
	switch m {
	case config.SynProxyOn:
		return dataplane.SynProxyOn
	case config.SynProxyOff:
		return dataplane.SynProxyOff
	}
	return dataplane.SynProxyAuto
}

func timeouts(cfg *config.Config) conntrack.Timeouts {
	t := conntrack.DefaultTimeouts()
	t.Set(cfg.Director.Timeouts.TCP, cfg.Director.Timeouts.TCPFin, cfg.Director.Timeouts.UDP)
	return t
}

// Specs turns the configuration's services into the data path's.
func Specs(cfg *config.Config) ([]dataplane.ServiceSpec, error) {
	var out []dataplane.ServiceSpec
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		flags, err := sched.ParseFlags(svc.SchedulerFlags)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", svc.Name, err)
		}
		sp := dataplane.ServiceSpec{
			Name:       svc.Name,
			FwMark:     svc.FwMark,
			Match:      markMatches(svc.Match),
			VIP:        svc.VIP,
			Port:       svc.Port,
			Proto:      svc.Protocol,
			Scheduler:  svc.Scheduler,
			Flags:      flags,
			Fwd:        svc.Forward,
			LocalAddrs: svc.LocalAddresses,
			SynProxy:   synProxyMode(svc.SynProxy),
			Sloppy:     svc.Sloppy,

			ProxyProtocol: svc.ProxyProtocol,
			TOA:           svc.TOA,
		}
		if svc.FwMark != 0 {
			sp.VIP, sp.Port, sp.Proto = netip.Addr{}, 0, 0 // the match says
		}
		if p := svc.Persistence; p != nil {
			sp.Persistence = p.Timeout
			sp.PersistBits = p.PrefixLen
		}
		for j := range svc.RealServers {
			rs := &svc.RealServers[j]
			sp.Dests = append(sp.Dests, dataplane.DestSpec{
				Addr:   rs.Address,
				Port:   rs.Port,
				Weight: rs.Weight,
				Fwd:    svc.ForwardFor(rs),
				Upper:  rs.UpperThreshold,
				Lower:  rs.LowerThreshold,
			})
		}
		out = append(out, sp)
	}
	return out, nil
}

// Services implements control.Backend.
func (d *Daemon) Services() []control.Service {
	d.mu.Lock()
	up := maps.Clone(d.up)
	d.mu.Unlock()
	var out []control.Service
	for _, svc := range d.dp.Services() {
		cs := control.Service{
			Name:      svc.Name,
			Protocol:  svc.Proto.String(),
			VIP:       svc.VIP.String(),
			Port:      svc.Port,
			Scheduler: svc.SchedName,
			Flags:     svc.Flags.Names(svc.SchedName),
		}
		if svc.FwMark != 0 {
			cs.FwMark, cs.Protocol, cs.VIP = svc.FwMark, "", ""
			cs.IPv6 = len(svc.Match) > 0 && svc.Match[0].Prefix.Addr().Is6()
		}
		if svc.Persistence > 0 {
			cs.Persistent = int(svc.Persistence / time.Second)
			cs.Netmask = netmask(svc)
		}
		for _, la := range svc.LocalAddrs {
			cs.LocalAddresses = append(cs.LocalAddresses, la.String())
		}
		if svc.ProxyProtocol != lvs.ProxyNone {
			cs.ProxyProtocol = svc.ProxyProtocol.String()
		}
		cs.TOA = svc.TOA
		var rates control.Rates
		for _, dst := range svc.Dests {
			upper, lower := dst.Thresholds()
			st, r := dst.Stats(), dst.Rates()
			isUp, known := up[svc.Name+"/"+netip.AddrPortFrom(dst.Addr.Netip(), dst.Port).String()]
			cd := control.Dest{
				Address:       dst.Addr.String(),
				Port:          dst.Port,
				Forward:       dst.Fwd.String(),
				Weight:        dst.Weight(),
				ActiveConns:   dst.ActiveConns(),
				InactiveConns: dst.InactiveConns(),
				UpperThresh:   upper,
				LowerThresh:   lower,
				Up:            isUp || !known,
				Stats:         control.Stats{Conns: st.Conns, InPkts: st.InPkts, OutPkts: st.OutPkts, InBytes: st.InBytes, OutBytes: st.OutBytes},
				Rates:         control.Rates{CPS: r.CPS, InPPS: r.InPPS, OutPPS: r.OutPPS, InBPS: r.InBPS, OutBPS: r.OutBPS},
			}
			cs.Stats.Conns += st.Conns
			cs.Stats.InPkts += st.InPkts
			cs.Stats.OutPkts += st.OutPkts
			cs.Stats.InBytes += st.InBytes
			cs.Stats.OutBytes += st.OutBytes
			rates.CPS += r.CPS
			rates.InPPS += r.InPPS
			rates.OutPPS += r.OutPPS
			rates.InBPS += r.InBPS
			rates.OutBPS += r.OutBPS
			cs.Dests = append(cs.Dests, cd)
		}
		cs.Rates = rates
		out = append(out, cs)
	}
	return out
}

func netmask(svc *dataplane.Service) string {
	if (svc.FwMark == 0 && svc.VIP.Is4()) || (svc.FwMark != 0 && len(svc.Match) > 0 && svc.Match[0].Prefix.Addr().Is4()) {
		m := net.CIDRMask(svc.PersistBits, 32)
		return net.IP(m).String()
	}
	return fmt.Sprintf("%d", svc.PersistBits)
}

// Counters implements control.Backend.
func (d *Daemon) Counters() (control.Counters, error) {
	// The names and values come from the counter tables (metrics.go),
	// which /metrics reads too.
	out := control.Counters{DataPath: dataPathCounters(d.dp.Counters(), d.dp.ConnPressure())}
	d.syncCounters(out.DataPath)
	for _, s := range d.dp.SynProxyStatus() {
		out.SynProxy = append(out.SynProxy, synProxyService(s))
	}
	rings, err := d.dp.RingStats()
	if err != nil {
		d.log.Warn("af_xdp ring counters", "err", err) // the others are still worth showing
	}
	for _, r := range rings {
		out.Rings = append(out.Rings, ringCounters(r))
	}
	for _, f := range d.dp.FastPathStates() {
		out.FastPath = append(out.FastPath, control.FastPathState{Interface: f.Interface, On: f.On, Reason: f.Reason})
	}
	xc, err := d.dp.SteeringCounters()
	if err != nil {
		return out, err
	}
	out.XDP = xdpCounters(xc)
	return out, nil
}

func (d *Daemon) serveMetrics(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: newMetricsHandler(d), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics", "err", err)
		}
	}()
	return func() { srv.Close() }, nil
}
