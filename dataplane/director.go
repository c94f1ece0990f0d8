package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// Options configure the data path.
type Options struct {
	Interfaces []string
	// AcceptForeignMAC names interfaces (of Interfaces) on which the
	// steering program classifies frames unicast to other hosts' MACs too
	// (bpf.Interface.AcceptForeignMAC); elsewhere they go to the kernel.
	AcceptForeignMAC []string
	XDPMode          bpf.Mode
	ConnTableSize    int // total over all workers
	Timeouts         conntrack.Timeouts
	// BusyPoll makes workers spin instead of sleeping in poll(2) when idle.
	BusyPoll bool
	// WorkerNice, when not 0, is the nice value each worker sets on its
	// thread: above the kernel's receive processing, so that an
	// overloaded core serves the workers first (no receive livelock).
	WorkerNice int
	// RingSize is the size of every AF_XDP ring (default 2048).
	RingSize int
	// FastPath lets the steering program forward the packets of
	// established connections itself (fastpath.go).
	FastPath bool
	// SynGuard configures the SYN-flood defence (synguard.go).
	SynGuard SynGuardOptions
	// SteerLimit configures the steering meter (overload.go); the zero
	// value meters nothing.
	SteerLimit SteerLimit
	// PinPath is the bpffs directory where the XDP links, the state maps
	// and the connection mirror are pinned so that they outlive the
	// process (restart.go); "" pins nothing.
	PinPath string
}

// Interface is a NIC the director serves.
type Interface struct {
	Name  string
	Index int
	// MAC is the interface's address when the director started;
	// CurrentMAC follows later changes (refreshMACs).
	MAC    [6]byte
	MTU    int
	Queues int
	Mode   bpf.Mode // the XDP mode it was attached in
	// Addr4 and Addr6 are the interface's own addresses (the first global
	// one of each family that is not a host route, so not a VIP): the
	// source of ICMP errors govsd originates.
	Addr4, Addr6 inet.Addr
	base         uint32 // first XSKMAP slot of its queues
	// AcceptForeignMAC: frames to other MACs are classified too (Options.AcceptForeignMAC).
	AcceptForeignMAC bool
	mac              atomic.Pointer[[6]byte] // the MAC now, once it changed (refreshMACs)
	// fastOK: the interface accepts frames the XDP fast path redirects to
	// it (refreshFastIfaces).
	fastOK      atomic.Bool
	fastReason  atomic.Pointer[string] // why not fastOK (FastPathStates)
	fastChecked bool                   // refreshFastIfaces ran once
	fastWarned  bool
}

// Director is the running data path.
type Director struct {
	log     *slog.Logger
	opts    Options
	steer   *bpf.Steering
	ifaces  []*Interface
	workers []*worker
	persist *persistDir // persistence templates shared by the workers; nil with one
	umem    *xsk.UMEM
	res     *resolver
	guard   *synGuard   // the SYN proxy's engagement (synguard.go)
	meter   *steerMeter // the steering meter's limits (overload.go)

	mu      sync.Mutex // serialises Apply and the steering maps' upkeep
	state   atomic.Pointer[snapshot]
	nextSvc uint32
	// freeDests and freeSvcs are reclaimed real server and service ids,
	// removedSvcs the removed services not reclaimed yet (reclaim.go).
	// Under mu.
	freeDests, freeSvcs []uint32
	removedSvcs         []removedService
	// reals are the real-server endpoints installed in the steering map.
	reals map[bpf.Endpoint]struct{}
	// own are the director's own addresses installed in the steering map.
	own map[inet.Addr]struct{}
	// The services whose SYNs the XDP program spreads, its free tables,
	// and the real server entries written there (spread.go), through
	// spreadTo (the steering program; nil without one). Under mu.
	spreadTo     spreadMaps
	spread       map[uint32]*spreadService
	spreadFree   []int
	spreadDests  map[uint32]bpf.FlowAction
	spreadWarned bool

	syncOn atomic.Bool // workers record connection changes for the sync daemon
	// meterOn: the steering meter may meter (SteerLimit auto or a rate),
	// so the workers write steer-only flow entries (fastpath.go).
	meterOn atomic.Bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  bool

	// adopted: New found state a previous govsd pinned (restart.go); the
	// program is then swapped on the interfaces in Start, after the
	// connections are adopted and the workers run.
	adopted bool
	// holdFlows: invalidateFlows leaves the shared generation alone until
	// the program is swapped (adopted state; restart.go).
	holdFlows atomic.Bool
	// mirror: the connection mirror (mirror.go); nil without PinPath.
	mirror *connMirror
}

const frameSize = 4096

// New loads the steering program, opens the sockets and attaches XDP to every
// interface. Nothing is forwarded until Start; Close undoes everything.
func New(opts Options, log *slog.Logger) (_ *Director, err error) {
	if len(opts.Interfaces) == 0 {
		return nil, errors.New("no interfaces")
	}
	for _, name := range opts.AcceptForeignMAC {
		if !slices.Contains(opts.Interfaces, name) {
			return nil, fmt.Errorf("accept foreign MAC on %s: not a served interface", name)
		}
	}
	if opts.RingSize == 0 {
		opts.RingSize = 2048
	}
	if opts.ConnTableSize <= 0 {
		opts.ConnTableSize = 1 << 20
	}
	d := &Director{log: log, opts: opts, reals: map[bpf.Endpoint]struct{}{}, own: map[inet.Addr]struct{}{}}
	d.state.Store(&snapshot{byKey: map[serviceKey]*Service{}})
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// Two flow entries per connection at most (request and reply).
	d.steer, err = bpf.LoadSteeringWith(bpf.SteeringOptions{MaxFlows: 2 * opts.ConnTableSize, PinPath: opts.PinPath})
	if err != nil {
		return nil, fmt.Errorf("load steering program: %w", err)
	}
	d.initSpread(d.steer)
	d.adopted = d.steer.Adopted()
	d.holdFlows.Store(d.adopted)
	if err := d.releaseStaleInterfaces(); err != nil {
		return nil, err
	}
	d.guard = newSynGuard(log, d.steer, opts.SynGuard)
	d.meter = newSteerMeter(log, d.steer)
	maxQueues := 0
	var base uint32
	for _, name := range opts.Interfaces {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		a := link.Attrs()
		if len(a.HardwareAddr) != 6 {
			return nil, fmt.Errorf("interface %s: not an Ethernet interface", name)
		}
		ifc := &Interface{Name: name, Index: a.Index, MAC: [6]byte(a.HardwareAddr), MTU: a.MTU,
			Queues: rxQueues(name), base: base, AcceptForeignMAC: slices.Contains(opts.AcceptForeignMAC, name)}
		ifc.Addr4, ifc.Addr6 = ownAddrs(link)
		base += uint32(ifc.Queues)
		maxQueues = max(maxQueues, ifc.Queues)
		if err := d.steer.SetInterface(ifc.Index, ifc.steerInterface()); err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		d.ifaces = append(d.ifaces, ifc)
	}
	d.res = newResolver(log, d.ifaces)
	perWorker := max(opts.ConnTableSize/maxQueues, 1024)
	// One UMEM for every socket, one region of it per worker: each socket
	// can hold a full fill ring and a full TX ring in flight.
	regionFrames := len(d.ifaces) * opts.RingSize * 2
	if d.umem, err = xsk.NewUMEM(regionFrames*maxQueues, frameSize); err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	if maxQueues > 1 {
		d.persist = newPersistDir()
	}
	for q := 0; q < maxQueues; q++ {
		w, err := newWorker(d, q, perWorker, d.umem, regionFrames)
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, w)
	}
	if err := d.initSynProxy(); err != nil {
		return nil, err
	}
	if opts.PinPath != "" {
		if err := d.openMirror(); err != nil {
			return nil, err
		}
	}
	if opts.BusyPoll {
		d.setBusyPoll()
	}
	for _, w := range d.workers {
		w.inbox = make([]*spsc, len(d.workers))
		w.returns = make([]*spsc, len(d.workers))
		for i := range d.workers {
			if i != w.q {
				w.inbox[i] = newSPSC(4 * rxBatch * len(d.ifaces))
				w.returns[i] = newSPSC(regionFrames)
			}
		}
	}
	if !d.adopted {
		if err := d.attach(); err != nil {
			return nil, err
		}
	}
	d.refreshFastIfaces()
	d.res.onChange = d.invalidateFlows
	if err := d.steer.SetFastPath(opts.FastPath); err != nil {
		return nil, err
	}
	if err := d.SetSynGuard(opts.SynGuard); err != nil {
		return nil, err
	}
	if err := d.SetSteerLimit(opts.SteerLimit); err != nil {
		return nil, err
	}
	return d, nil
}

// ownAddrs returns an interface's first global IPv4 and IPv6 addresses that
// are not host routes (/32, /128), which VIPs usually are.
func ownAddrs(link netlink.Link) (v4, v6 inet.Addr) {
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
	for _, a := range addrs {
		ones, bits := a.Mask.Size()
		if a.Scope != int(netlink.SCOPE_UNIVERSE) || ones == bits {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && v4.IsZero() {
			v4 = inet.AddrFromNetip(ip)
		} else if ip.Is6() && v6.IsZero() {
			v6 = inet.AddrFromNetip(ip)
		}
	}
	return v4, v6
}

// rxQueues counts an interface's RX queues from sysfs.
func rxQueues(name string) int {
	m, _ := filepath.Glob(filepath.Join("/sys/class/net", name, "queues", "rx-*"))
	return max(len(m), 1)
}

// Interfaces returns the served interfaces.
func (d *Director) Interfaces() []*Interface { return d.ifaces }

// attach puts the steering program on every interface: attached anew, or
// swapped in on a link a previous govsd pinned (bpf.AttachPinned).
func (d *Director) attach() error {
	for _, ifc := range d.ifaces {
		mode, replaced, err := d.steer.AttachPinned(ifc.Index, ifc.Name, d.opts.XDPMode)
		if err != nil {
			return fmt.Errorf("attach xdp to %s: %w", ifc.Name, err)
		}
		ifc.Mode = mode
		if replaced {
			d.log.Info("xdp program replaced", "iface", ifc.Name, "mode", mode.String(), "queues", ifc.Queues)
		} else {
			d.log.Info("xdp attached", "iface", ifc.Name, "mode", mode.String(), "queues", ifc.Queues)
		}
	}
	return nil
}

// Start adopts the connections a previous govsd left (restart.go), runs
// the workers and the next-hop resolver, and, after an adoption, swaps the
// program on the interfaces: until then the previous program forwards the
// fast path's flows.
func (d *Director) Start() error {
	if d.mirror != nil {
		st, err := d.Adopt()
		if err != nil {
			return fmt.Errorf("adopt connections: %w", err)
		}
		if d.adopted || st.Conns+st.Templates+st.Expired+st.Unknown+st.Misplaced > 0 {
			d.log.Info("connections adopted", "conns", st.Conns, "templates", st.Templates,
				"expired", st.Expired, "unknown_service_or_server", st.Unknown, "misplaced", st.Misplaced)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if d.mirror != nil {
		d.startMirror(ctx)
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.res.run(ctx) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.housekeeping(ctx) }()
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); w.run() }()
	}
	if !d.adopted {
		return nil
	}
	if err := d.attach(); err != nil {
		return err
	}
	// The adopted connections own the flow entries the previous govsd
	// wrote (adoptFlows), which stay valid: the fast path never stops.
	// Changes from here on invalidate them as usual.
	d.holdFlows.Store(false)
	d.refreshFastIfaces()
	return nil
}

// WaitNextHops waits up to timeout for the next hops toward every real
// server to be resolved, so that the first connections do not meet an
// unresolved neighbour. It reports whether all were resolved.
func (d *Director) WaitNextHops(timeout time.Duration) bool { return d.res.waitResolved(timeout) }

// Shutdown stops for good: it unpins what New pinned (or adopted), so that
// Close detaches XDP and frees every map and the connection mirror.
func (d *Director) Shutdown() error {
	var errs []error
	if d.steer != nil {
		errs = append(errs, d.steer.Unpin())
	}
	if d.mirror != nil {
		errs = append(errs, d.unpinMirror())
	}
	errs = append(errs, d.Close())
	if d.opts.PinPath != "" {
		// The directory itself, now empty.
		if err := os.Remove(d.opts.PinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", d.opts.PinPath, err))
		}
	}
	return errors.Join(errs...)
}

// Adopted reports whether New found state a previous govsd pinned.
func (d *Director) Adopted() bool { return d.adopted }

// Close stops the workers, saves their connections in the mirror, detaches
// XDP where it is not pinned (pinned links keep the program attached for
// the next govsd) and frees the sockets. It is safe to call more than once.
func (d *Director) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, w := range d.workers {
		w.stop.Store(true)
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	var errs []error
	if d.mirror != nil {
		d.flushMirror()
	}
	if d.steer != nil {
		// Detach first, so that the kernel stops redirecting to sockets
		// that are about to close.
		if err := d.steer.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range d.workers {
		errs = append(errs, w.close())
	}
	if d.umem != nil {
		errs = append(errs, d.umem.Close())
	}
	return errors.Join(errs...)
}

// Apply replaces the set of services. Services and real servers that stay
// keep their scheduler state and connections; a removed real server is
// quiesced and drained (existing connections go on); a removed service stops
// being steered.
func (d *Director) Apply(specs []ServiceSpec) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A refused set leaves everything as it was, the free ids too.
	freeDests, freeSvcs, removedSvcs, nextSvc := slices.Clone(d.freeDests), slices.Clone(d.freeSvcs), slices.Clone(d.removedSvcs), d.nextSvc
	defer func() {
		if err != nil {
			d.freeDests, d.freeSvcs, d.removedSvcs, d.nextSvc = freeDests, freeSvcs, removedSvcs, nextSvc
		}
	}()
	for i := range specs {
		if err := validateSpec(&specs[i]); err != nil {
			return err
		}
	}
	old := d.state.Load()
	next := &snapshot{
		locals:   map[inet.Addr]bool{},
		byKey:    make(map[serviceKey]*Service, len(specs)),
		services: make([]*Service, len(old.services)),
		dests:    old.dests,
	}
	next.byMark = map[uint32]*Service{}
	nMarks := 0
	for i := range specs {
		sp := &specs[i]
		key := serviceKey{inet.AddrFromNetip(sp.VIP), sp.Port, sp.Proto}
		var prev *Service
		if sp.FwMark != 0 {
			if _, dup := next.byMark[sp.FwMark]; dup {
				return fmt.Errorf("service %q: duplicate of another service (fwmark %d)", sp.Name, sp.FwMark)
			}
			if nMarks += len(sp.Match); nMarks > MaxMarkMatches {
				return fmt.Errorf("service %q: more than %d firewall-mark matches in all", sp.Name, MaxMarkMatches)
			}
			prev = old.byMark[sp.FwMark]
		} else {
			if _, dup := next.byKey[key]; dup {
				return fmt.Errorf("service %q: duplicate of another service", sp.Name)
			}
			prev = old.byKey[key]
		}
		svc, err := d.buildService(sp, prev, next)
		if err != nil {
			return err
		}
		if sp.FwMark != 0 {
			next.byMark[sp.FwMark] = svc
			next.addMarks(svc)
		} else {
			next.byKey[key] = svc
		}
		if int(svc.ID) >= len(next.services) {
			next.services = append(next.services, make([]*Service, int(svc.ID)+1-len(next.services))...)
		}
		next.services[svc.ID] = svc
		for _, la := range svc.LocalAddrs {
			next.locals[la] = true
		}
	}
	// Steering: add new VIPs and real servers first, then drop stale ones.
	for key, svc := range next.byKey {
		if err := d.steer.AddVIP(bpf.Endpoint{Addr: key.Addr, Port: key.Port, Proto: uint8(key.Proto)}, svc.ID); err != nil {
			return fmt.Errorf("service %q: steer vip: %w", svc.Name, err)
		}
	}
	if err := d.steer.SetMarks(next.markPrefixes()); err != nil {
		return err
	}
	for key, svc := range old.byKey {
		if _, keep := next.byKey[key]; !keep {
			d.steer.DelVIP(bpf.Endpoint{Addr: key.Addr, Port: key.Port, Proto: uint8(key.Proto)})
			next.dropService(svc)
			d.removedSvcs = append(d.removedSvcs, removedService{id: svc.ID, at: nanotime()})
			d.log.Info("service removed", "service", svc.Name)
		}
	}
	for mark, svc := range old.byMark {
		if _, keep := next.byMark[mark]; !keep {
			next.dropService(svc)
			d.removedSvcs = append(d.removedSvcs, removedService{id: svc.ID, at: nanotime()})
			d.log.Info("service removed", "service", svc.Name, "fwmark", mark)
		}
	}
	if err := d.syncReals(next); err != nil {
		return err
	}
	d.syncOwnAddrs(next)
	d.state.Store(next)
	// AddVIP of a new service starts without SYN-proxy flags, and a
	// changed service may have a new syn_proxy mode.
	d.reapplySynFlags(next)
	// Flow entries were written for the old services: the next packet of
	// each flow goes to its worker, which writes a fresh one if the
	// connection still stands.
	d.invalidateFlows()
	d.res.want(nextHopsWanted(next))
	d.syncSpread(next)
	return nil
}

// syncReals installs in the steering map the real servers whose replies come
// back through the director (NAT and full-NAT): those in service, and removed
// ones that still have connections (draining), so that their replies are
// still translated until the last connection ends.
func (d *Director) syncReals(s *snapshot) error {
	want := map[bpf.Endpoint]struct{}{}
	for _, dst := range s.dests {
		if !viaDirector(dst.Fwd) {
			continue
		}
		if dst.Removed.Load() && dst.ActiveConns()+dst.InactiveConns() <= 0 {
			continue
		}
		if dst.Proto == 0 { // an fwmark service's: each protocol of the mark
			for _, proto := range dst.Protos {
				want[bpf.Endpoint{Addr: dst.Addr, Port: dst.Port, Proto: uint8(proto)}] = struct{}{}
			}
			continue
		}
		want[bpf.Endpoint{Addr: dst.Addr, Port: dst.Port, Proto: uint8(dst.Proto)}] = struct{}{}
	}
	for e := range want {
		if _, have := d.reals[e]; !have {
			if err := d.steer.AddReal(e); err != nil {
				return fmt.Errorf("steer real server %s: %w", e.Addr, err)
			}
			d.reals[e] = struct{}{}
		}
	}
	for e := range d.reals {
		if _, keep := want[e]; !keep {
			if err := d.steer.DelReal(e); err != nil {
				d.log.Warn("unsteer real server", "addr", e.Addr.String(), "err", err)
			}
			delete(d.reals, e)
		}
	}
	return nil
}

// syncOwnAddrs tells the steering program the director's own addresses
// (those of the served interfaces, full-NAT local addresses excepted), so
// that real servers' answers to the director's own connections — health
// checks above all — reach the kernel instead of the workers.
func (d *Director) syncOwnAddrs(s *snapshot) {
	want := map[inet.Addr]struct{}{}
	for _, ifc := range d.ifaces {
		link, err := netlink.LinkByIndex(ifc.Index)
		if err != nil {
			continue
		}
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			if addr := inet.AddrFromNetip(ip.Unmap()); !s.locals[addr] {
				want[addr] = struct{}{}
			}
		}
	}
	for a := range want {
		if _, have := d.own[a]; !have {
			if err := d.steer.AddOwnAddr(a); err != nil {
				d.log.Warn("steering: own address", "addr", a.String(), "err", err)
				continue
			}
			d.own[a] = struct{}{}
		}
	}
	for a := range d.own {
		if _, keep := want[a]; !keep {
			d.steer.DelOwnAddr(a)
			delete(d.own, a)
		}
	}
}

// nextHopsWanted are the real servers the data path may send to: those in
// service and those draining their last connections.
func nextHopsWanted(s *snapshot) []inet.Addr {
	var out []inet.Addr
	for _, dst := range s.dests {
		if !dst.Removed.Load() || dst.ActiveConns()+dst.InactiveConns() > 0 {
			out = append(out, dst.Addr)
		}
	}
	return out
}

// housekeeping estimates rates, stops steering drained real servers, follows
// the interfaces' MAC addresses (refreshMACs) and,
// more often, decides where the SYN proxy is engaged (synguard.go) and
// adapts the steering meter (overload.go).
func (d *Director) housekeeping(ctx context.Context) {
	t := time.NewTicker(estimateEvery)
	defer t.Stop()
	g := time.NewTicker(synGuardEvery)
	defer g.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-g.C:
			d.guardTick(now)
			d.meterTick(now)
			continue
		case <-t.C:
		}
		s := d.state.Load()
		for _, dst := range s.dests {
			dst.stats.estimate(estimateEvery)
		}
		d.mu.Lock()
		if err := d.syncReals(s); err != nil {
			d.log.Warn("steering upkeep", "err", err)
		}
		d.res.want(nextHopsWanted(s))
		d.syncOwnAddrs(s)
		d.reclaimDests(ctx, s, nanotime())
		d.reclaimServices(s, nanotime())
		d.refreshMACs()
		if d.opts.FastPath {
			d.refreshFastIfaces()
		}
		d.syncSpread(d.state.Load()) // s may predate an Apply
		d.mu.Unlock()
	}
}

// buildService makes the data-path service for sp, reusing prev's scheduler
// and real servers where they are unchanged.
func (d *Director) buildService(sp *ServiceSpec, prev *Service, next *snapshot) (*Service, error) {
	svc := &Service{
		Name:        sp.Name,
		FwMark:      sp.FwMark,
		Match:       sp.Match,
		VIP:         inet.AddrFromNetip(sp.VIP),
		Port:        sp.Port,
		Proto:       sp.Proto,
		Fwd:         sp.Fwd,
		SchedName:   sp.Scheduler,
		Flags:       sp.Flags,
		Persistence: sp.Persistence,
		PersistBits: sp.PersistBits,
	}
	svc.SynProxy = sp.SynProxy
	if err := checkClientAddr(sp); err != nil {
		return nil, fmt.Errorf("service %q: %w", sp.Name, err)
	}
	svc.ProxyProtocol, svc.TOA = sp.ProxyProtocol, sp.TOA
	svc.Sloppy = sp.Sloppy || sched.Consistent(sp.Scheduler)
	for _, la := range sp.LocalAddrs {
		svc.LocalAddrs = append(svc.LocalAddrs, inet.AddrFromNetip(la))
	}
	if prev != nil && prev.SchedName == sp.Scheduler && prev.Flags == sp.Flags {
		svc.ID, svc.Sched = prev.ID, prev.Sched
	} else {
		s, err := sched.New(sp.Scheduler, sp.Flags)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", sp.Name, err)
		}
		svc.Sched = s
		if prev != nil {
			svc.ID = prev.ID
		} else {
			svc.ID = d.serviceID()
		}
	}
	prevDests := map[netip.AddrPort]*Dest{}
	if prev != nil {
		for _, dst := range prev.Dests {
			prevDests[netip.AddrPortFrom(dst.Addr.Netip(), dst.Port)] = dst
		}
	}
	for _, ds := range sp.Dests {
		ap := netip.AddrPortFrom(ds.Addr, ds.Port)
		dst := prevDests[ap]
		if dst != nil && dst.Fwd == ds.Fwd && slices.Equal(dst.Protos, markProtos(sp)) {
			delete(prevDests, ap)
			dst.SetWeight(ds.Weight)
		} else {
			dst = &Dest{
				Dest:    sched.NewDest(inet.AddrFromNetip(ds.Addr), ds.Port, ds.Weight),
				ID:      d.destID(next),
				Service: svc.ID,
				Fwd:     ds.Fwd,
				Proto:   sp.Proto,
				Protos:  markProtos(sp),
				stats:   newDestStats(len(d.workers)),
			}
			dst.stats.fast = d.fastStats(dst.ID)
			dst.Dest.ID = dst.ID
			next.setDest(dst)
		}
		dst.SetThresholds(ds.Upper, ds.Lower)
		dst.Index = len(svc.Dests)
		svc.Dests = append(svc.Dests, dst)
	}
	// Real servers that left drain: quiescent, out of the scheduler, still
	// found by their existing connections.
	now := nanotime()
	for _, dst := range prevDests {
		removeDest(dst, now)
	}
	list := make([]*sched.Dest, len(svc.Dests))
	for i, dst := range svc.Dests {
		list[i] = dst.Dest
	}
	svc.Sched.Update(list)
	return svc, nil
}

// Services returns the current services (for listings).
func (d *Director) Services() []*Service {
	s := d.state.Load()
	var out []*Service
	for _, svc := range s.services {
		if svc != nil {
			out = append(out, svc)
		}
	}
	return out
}

// Counters sums the workers' counters.
func (d *Director) Counters() Counters {
	var c Counters
	for _, w := range d.workers {
		k := &w.ctr
		c.RxPackets += k.RxPackets.Load()
		c.RxBytes += k.RxBytes.Load()
		c.TxPackets += k.TxPackets.Load()
		c.TxBytes += k.TxBytes.Load()
		c.TxErrors += k.TxErrors.Load()
		c.NewConns += k.NewConns.Load()
		c.Inbound += k.Inbound.Load()
		c.Outbound += k.Outbound.Load()
		c.ICMP += k.ICMP.Load()
		c.ICMPSent += k.ICMPSent.Load()
		c.HandedOff += k.HandedOff.Load()
		c.SyncDropped += k.SyncDropped.Load()
		c.SyncUnknown += k.SyncUnknown.Load()
		c.SyncInstalled += k.SyncInstalled.Load()
		c.FastInstalled += k.FastInstalled.Load()
		c.FastFailed += k.FastFailed.Load()
		c.SynCookiesAccepted += k.SynCookiesAccepted.Load()
		c.SynCookiesRejected += k.SynCookiesRejected.Load()
		c.SynProxyDropped += k.SynProxyDropped.Load()
		c.SynProxyResets += k.SynProxyResets.Load()
		c.ProxyHeaders += k.ProxyHeaders.Load()
		c.TOAInserted += k.TOAInserted.Load()
		c.CsumFinished += k.CsumFinished.Load()
		c.FragForwarded += k.FragForwarded.Load()
		c.FragHeld += k.FragHeld.Load()
		c.FragTimedOut += k.FragTimedOut.Load()
		c.FragTableFull += k.FragTableFull.Load()
		for i := range c.Drops {
			c.Drops[i] += k.Drops[i].Load()
		}
		c.Conns += int(w.connCount.Load())
	}
	d.mirrorCounters(&c)
	return c
}

// SteeringCounters returns the XDP program's counters.
func (d *Director) SteeringCounters() (bpf.Counters, error) { return d.steer.Counters() }

// Conn is one connection as listings show it.
type Conn struct {
	Proto   lvs.Proto
	State   string
	Expires time.Duration
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Dest    netip.AddrPort
	Local   netip.AddrPort // full-NAT
}

// Connections lists the live connections of every worker. Each worker builds
// its part between two batches, so the tables are never read concurrently.
func (d *Director) Connections(ctx context.Context) ([]Conn, error) {
	var out []Conn
	for _, w := range d.workers {
		part, err := w.listConns(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// Template is a persistence template as listings show it.
type Template struct {
	Proto   lvs.Proto
	Client  netip.Addr // masked client address
	Virtual netip.AddrPort
	Dest    netip.AddrPort
	Expires time.Duration
	Conns   int // connections it controls
}

// Templates lists the persistence templates of every worker. The workers
// that serve one client toward one server each hold a template of it
// (persistdir.go); the listing shows them as one, as IPVS's one template:
// their connections summed, the latest expiry.
func (d *Director) Templates(ctx context.Context) ([]Template, error) {
	type key struct {
		proto         lvs.Proto
		client        netip.Addr
		virtual, dest netip.AddrPort
	}
	var out []Template
	seen := map[key]int{}
	for _, w := range d.workers {
		part, err := w.listTemplates(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range part {
			k := key{t.Proto, t.Client, t.Virtual, t.Dest}
			if i, ok := seen[k]; ok {
				out[i].Conns += t.Conns
				out[i].Expires = max(out[i].Expires, t.Expires)
				continue
			}
			seen[k] = len(out)
			out = append(out, t)
		}
	}
	return out, nil
}

// SetTimeouts changes the connection timeouts (ipvsadm --set).
func (d *Director) SetTimeouts(t conntrack.Timeouts) {
	for _, w := range d.workers {
		w.setTimeouts(t)
	}
}
