package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/topo"
	"github.com/govs/govs/pktgen"
)

// Addresses of the bench topology (all in 198.18.0.0/15).
const (
	clientAddr   = "198.18.0.1"
	directorAddr = "198.18.0.254" // client side
	directorRS   = "198.18.1.254" // real-server side
	localAddr    = "198.18.1.250" // full-NAT local address
	vipNAT       = "198.18.0.100" // nat, fullnat, nftables: on the director's client side
	vipDR        = "198.18.2.100" // dr, tun: routed to the director, on the real servers' loopback
	udpPort      = 9000
	httpPort     = 8080 // the real servers' HTTP port
	vipHTTPPort  = 80
	numReals     = 4
)

// directorNice is the nice value of govsd and of the generator: the
// machine may be busy with other work, which should not take turns with
// what is measured.
const directorNice = -20

// napiNice is the nice value of the director's NAPI threads: that of
// ksoftirqd, where a kernel's receive processing ends up when it cannot
// keep up, below govsd's. A director gives the load balancer its core
// before more receive work than the load balancer can take: at equal
// weights the NAPI thread spent half the core copying frames into AF_XDP
// rings that the workers, with the other half, could not drain (workers-only
// NAT at full load delivered 0.13x its best; with this setting 1.00x, and
// its best rose from 0.50 to 0.88 Mpps).
const napiNice = 0

func realAddr(i int) string { return fmt.Sprintf("198.18.1.%d", i+1) }

// lab is the bench topology:
//
//	client(Pc) ── Pd0 [director] Pd1 ── Psd bridge Ps1..Ps4 ── Pr1..Pr4 (real servers)
//
// Interface names carry the unique prefix P, so that the kernel's NAPI
// threads ("napi/<device>-<id>") of this run can be found by name and
// pinned, whatever else runs on the machine.
type lab struct {
	*topo.Topology
	prefix                   string
	client, director, bridge *topo.NS
	reals                    []*topo.NS
	sinks                    []*pktgen.Sink // one per real server, on its interface
	switchSink               *pktgen.Sink   // on the switch port facing the director (--count-at switch)
	dirSinks                 []*pktgen.Sink // pass-through XDP on the director's interfaces for the kernel paths
	httpStop                 func()
	napiDevs                 map[*topo.NS][]string // the veth ends whose NAPI runs threaded
	genCPU, dirCPU           int
	groFlush                 time.Duration // the director's gro_flush_timeout, with napi_defer_hard_irqs 2 (0: the defaults)
	// queues is the RX (and TX) queue count the director's links have
	// now (setQueues), 1 but for the multi-queue paths; while it is more,
	// the director's NAPI threads may run on both CPUs.
	queues int
	log    func(format string, args ...any)
}

func (l *lab) dev(name string) string { return l.prefix + name }

// veth is topo.Veth with TX checksum offload off on both ends: the
// benchmark compares paths as a real NIC feeds them, with complete
// checksums (the README's figures were measured so). govs finishes the
// unfinished checksums of offloading senders (README "Limits"), which
// the generator's XDP frames never are; wrk's would be.
func veth(a *topo.NS, aName string, b *topo.NS, bName string) error {
	return vethQueues(a, aName, b, bName, 1)
}

// maxQueues is the most RX queues the director's links are given
// (setQueues): one per CPU of the machine the bench was written for.
const maxQueues = 2

// vethQueues is veth with queues TX and RX queues on each end.
func vethQueues(a *topo.NS, aName string, b *topo.NS, bName string, queues int) error {
	if err := topo.VethQueues(a, aName, b, bName, queues); err != nil {
		return err
	}
	if err := a.TxChecksumOff(aName); err != nil {
		return err
	}
	return b.TxChecksumOff(bName)
}

func newLab(prefix string, genCPU, dirCPU int, countAtSwitch bool, nginxBin string, log func(string, ...any)) (l *lab, err error) {
	l = &lab{Topology: topo.New(prefix), prefix: prefix, genCPU: genCPU, dirCPU: dirCPU, log: log}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.client, err = l.AddNS("cli"); err != nil {
		return nil, err
	}
	if l.director, err = l.AddNS("dir"); err != nil {
		return nil, err
	}
	if l.bridge, err = l.AddNS("sw"); err != nil {
		return nil, err
	}
	// The director's links can have maxQueues queues; they have one but
	// while a multi-queue path is measured (setQueues).
	if err = vethQueues(l.client, l.dev("c"), l.director, l.dev("d0"), maxQueues); err != nil {
		return nil, err
	}
	if err = vethQueues(l.director, l.dev("d1"), l.bridge, l.dev("sd"), maxQueues); err != nil {
		return nil, err
	}
	if err = l.setQueues(1); err != nil {
		return nil, err
	}
	if err = l.bridge.MustExec(
		[]string{"ip", "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "link", "set", "br0", "up"},
		[]string{"ip", "link", "set", l.dev("sd"), "master", "br0"},
	); err != nil {
		return nil, err
	}
	if err = l.client.MustExec(
		[]string{"ip", "addr", "add", clientAddr + "/24", "dev", l.dev("c")},
		[]string{"ip", "route", "add", "default", "via", directorAddr},
		[]string{"sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"},
		[]string{"sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"},
	); err != nil {
		return nil, err
	}
	if err = l.director.MustExec(
		[]string{"ip", "addr", "add", directorAddr + "/24", "dev", l.dev("d0")},
		[]string{"ip", "addr", "add", vipNAT + "/32", "dev", l.dev("d0")},
		[]string{"ip", "addr", "add", directorRS + "/24", "dev", l.dev("d1")},
		[]string{"ip", "addr", "add", localAddr + "/32", "dev", l.dev("d1")},
		[]string{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		[]string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
		[]string{"sysctl", "-qw", "net.ipv4.conf." + l.dev("d0") + ".rp_filter=0"},
		[]string{"sysctl", "-qw", "net.ipv4.conf." + l.dev("d1") + ".rp_filter=0"},
		// Room for a connection per flow and per wrk connection.
		[]string{"sysctl", "-qw", "net.netfilter.nf_conntrack_max=1048576"},
	); err != nil {
		// nf_conntrack may not be loaded yet; it is set again with the rules.
		if !strings.Contains(err.Error(), "nf_conntrack_max") {
			return nil, err
		}
	}
	for i := 0; i < numReals; i++ {
		rs, err := l.AddNS(fmt.Sprintf("rs%d", i+1))
		if err != nil {
			return nil, err
		}
		rdev, sdev := l.dev(fmt.Sprintf("r%d", i+1)), l.dev(fmt.Sprintf("s%d", i+1))
		if err = veth(rs, rdev, l.bridge, sdev); err != nil {
			return nil, err
		}
		if _, err = l.bridge.Exec("ip", "link", "set", sdev, "master", "br0"); err != nil {
			return nil, err
		}
		// Ready for every mode: the route back through the director
		// (nat), the VIP on loopback without ARP for it (dr, tun). No
		// TIME_WAIT sockets: wrk's client ports come round again from
		// run to run, and a SYN that meets the TIME_WAIT of an earlier
		// run's connection can stall for a second, which measured the
		// order of the runs rather than the director.
		if err = rs.MustExec(
			[]string{"ip", "addr", "add", realAddr(i) + "/24", "dev", rdev},
			[]string{"ip", "route", "add", "default", "via", directorRS},
			[]string{"ip", "addr", "add", vipDR + "/32", "dev", "lo"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
			[]string{"sysctl", "-qw", "net.ipv4.conf." + rdev + ".rp_filter=0"},
			[]string{"sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=0"},
		); err != nil {
			return nil, err
		}
		l.reals = append(l.reals, rs)
		sink, err := pktgen.LoadSink(false)
		if err != nil {
			return nil, err
		}
		l.sinks = append(l.sinks, sink)
		if err = attach(rs, sink, rdev); err != nil {
			return nil, err
		}
	}
	if countAtSwitch {
		// The frames are counted (and dropped) where they reach the
		// real servers' network, before the bridge: forwarding them on
		// to the servers costs the generator's CPU more than
		// generating them, and this measures the same director.
		if l.switchSink, err = pktgen.LoadSink(false); err != nil {
			return nil, err
		}
		if err = attach(l.bridge, l.switchSink, l.dev("sd")); err != nil {
			return nil, err
		}
	}
	if nginxBin != "" {
		l.httpStop, err = l.serveNginx(nginxBin)
	} else {
		l.httpStop, err = l.serveHTTP()
	}
	if err != nil {
		return nil, err
	}
	if err = l.threadedNAPI(); err != nil {
		return nil, err
	}
	return l, nil
}

// setQueues gives both ends of the director's two links n RX and TX
// queues (ethtool -L). A veth end refuses more TX queues than an XDP peer
// has RX queues, so the ends are set in two passes when needed.
func (l *lab) setQueues(n int) error {
	if n == l.queues {
		return nil
	}
	ends := []struct {
		ns  *topo.NS
		dev string
	}{{l.client, l.dev("c")}, {l.bridge, l.dev("sd")}, {l.director, l.dev("d0")}, {l.director, l.dev("d1")}}
	var failed []string
	for pass := 0; pass < 2; pass++ {
		failed = nil
		for _, e := range ends {
			if _, err := e.ns.Exec("ethtool", "-L", e.dev, "rx", strconv.Itoa(n), "tx", strconv.Itoa(n)); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", e.dev, err))
			}
		}
		if len(failed) == 0 {
			l.queues = n
			return nil
		}
	}
	return fmt.Errorf("%d queues on the director's links: %s", n, strings.Join(failed, "; "))
}

func attach(ns *topo.NS, s *pktgen.Sink, dev string) error {
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		return s.Attach(ifi.Index)
	})
}

// kernelPaths readies the director for the kernel's own forwarding: a
// pass-through XDP program on both of its interfaces, as govsd has its
// steering program there. Frames sent with XDP_TX reach a veth only where
// the peer runs NAPI (an XDP program or GRO); and a veth end without NAPI
// receives in the sender's context, so the kernel's forwarding of the real
// servers' answers would run on the generator's CPU, not the director's.
func (l *lab) kernelPaths(on bool) error {
	if !on {
		var first error
		for _, s := range l.dirSinks {
			if err := s.Close(); err != nil && first == nil {
				first = err
			}
		}
		l.dirSinks = nil
		return first
	}
	if l.dirSinks != nil {
		return nil
	}
	for _, dev := range []string{l.dev("d0"), l.dev("d1")} {
		s, err := pktgen.LoadSink(true)
		if err != nil {
			l.kernelPaths(false)
			return err
		}
		if err := attach(l.director, s, dev); err != nil {
			s.Close()
			l.kernelPaths(false)
			return err
		}
		l.dirSinks = append(l.dirSinks, s)
	}
	return l.pinNAPI()
}

// ecmpRoute routes the DR VIP from the director to every real server (the
// VIP is on their loopback), one next hop each, hashed on the 4-tuple
// (fib_multipath_hash_policy 1) so that a connection stays on one server;
// it returns what removes the route.
func (l *lab) ecmpRoute() (func(), error) {
	args := []string{"route", "replace", vipDR + "/32"}
	for i := 0; i < numReals; i++ {
		args = append(args, "nexthop", "via", realAddr(i), "dev", l.dev("d1"))
	}
	if out, err := l.director.Exec("sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"); err != nil {
		return nil, fmt.Errorf("sysctl: %w: %s", err, out)
	}
	if out, err := l.director.Exec("ip", args...); err != nil {
		return nil, fmt.Errorf("ip route: %w: %s", err, out)
	}
	return func() { l.director.Exec("ip", "route", "del", vipDR+"/32") }, nil
}

// refBalancer loads pktgen's stateless reference balancer for the UDP
// service of the paths (vipNAT:udpPort to the real servers' udpPort) and
// attaches it to the director's client-side interface: it redirects to d1,
// toward the real servers' MACs, with d1's MAC as the source.
func (l *lab) refBalancer() (*pktgen.RefBalancer, error) {
	cfg := pktgen.RefBalancerConfig{VIP: netip.AddrPortFrom(netip.MustParseAddr(vipNAT), udpPort)}
	for i, rs := range l.reals {
		var mac net.HardwareAddr
		if err := rs.Do(func() error {
			ifi, err := net.InterfaceByName(l.dev(fmt.Sprintf("r%d", i+1)))
			if err != nil {
				return err
			}
			mac = ifi.HardwareAddr
			return nil
		}); err != nil {
			return nil, fmt.Errorf("real server %d's MAC: %w", i+1, err)
		}
		cfg.Reals = append(cfg.Reals, pktgen.RefBalancerReal{
			Addr: netip.AddrPortFrom(netip.MustParseAddr(realAddr(i)), udpPort), MAC: mac})
	}
	var rb *pktgen.RefBalancer
	err := l.director.Do(func() error {
		out, err := net.InterfaceByName(l.dev("d1"))
		if err != nil {
			return err
		}
		in, err := net.InterfaceByName(l.dev("d0"))
		if err != nil {
			return err
		}
		cfg.EgressIfindex, cfg.EgressMAC = out.Index, out.HardwareAddr
		if rb, err = pktgen.LoadRefBalancer(cfg); err != nil {
			return err
		}
		if err := rb.Attach(in.Index); err != nil {
			rb.Close()
			return err
		}
		return nil
	})
	return rb, err
}

// delivered sums what the sinks counted, and returns each real server's
// share (zero when counting at the switch).
func (l *lab) delivered() (uint64, []uint64, error) {
	var total uint64
	per := make([]uint64, len(l.sinks))
	if l.switchSink != nil {
		c, err := l.switchSink.Counters()
		if err != nil {
			return 0, nil, err
		}
		total = c.UDP + c.Tunnel
	}
	for i, s := range l.sinks {
		c, err := s.Counters()
		if err != nil {
			return 0, nil, err
		}
		per[i] = c.UDP + c.Tunnel
		total += per[i]
	}
	return total, per, nil
}

// serveHTTP starts a tiny HTTP server on every real server.
func (l *lab) serveHTTP() (func(), error) {
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for i, rs := range l.reals {
		ln, err := rs.Listen("tcp", fmt.Sprintf(":%d", httpPort))
		if err != nil {
			stop()
			return nil, err
		}
		body := []byte(fmt.Sprintf("rs%d\n", i+1))
		srv := &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }),
			ReadHeaderTimeout: 5 * time.Second,
		}
		servers = append(servers, srv)
		go srv.Serve(ln)
	}
	return stop, nil
}

// threadedNAPI moves the receive processing of every veth end that has
// NAPI into kernel threads (best effort): the director's to dirCPU, the
// rest (client, switch, real servers) to genCPU, so that the director's
// core does the director's work only. The switch port facing the director
// and the client's end get GRO so that they have NAPI (and a thread) too;
// without it, the bridge and the client's receive processing would run on
// the director's core, in the sender's context.
func (l *lab) threadedNAPI() error {
	if _, err := l.bridge.Exec("ethtool", "-K", l.dev("sd"), "gro", "on"); err != nil {
		l.log("warning: GRO on %s: %v", l.dev("sd"), err)
	}
	// The client's end too: without NAPI there, what the director sends
	// it (the real servers' answers) would be received on the director's
	// core, in the sender's context, and charged to the director; and a
	// veth without XDP or GRO takes no XDP redirects, which the fast path
	// sends it.
	if _, err := l.client.Exec("ethtool", "-K", l.dev("c"), "gro", "on"); err != nil {
		l.log("warning: GRO on %s: %v", l.dev("c"), err)
	}
	devs := map[*topo.NS][]string{
		l.client:   {l.dev("c")},
		l.director: {l.dev("d0"), l.dev("d1")},
		l.bridge:   {l.dev("sd")},
	}
	for i, rs := range l.reals {
		devs[rs] = []string{l.dev(fmt.Sprintf("r%d", i+1))}
		devs[l.bridge] = append(devs[l.bridge], l.dev(fmt.Sprintf("s%d", i+1)))
	}
	l.napiDevs = devs
	return l.pinNAPI()
}

// pinNAPI pins this lab's NAPI threads: the director's devices to dirCPU,
// the others to genCPU. NAPI instances (and their threads) come and go
// with XDP programs, so it runs again whenever one is attached.
func (l *lab) pinNAPI() error {
	// A veth end has NAPI only while it has an XDP program or GRO, and
	// threaded mode can be set only then (the bridge's ports toward the
	// real servers never have it: the kernel refuses, harmlessly). New
	// NAPI instances inherit the device's setting.
	for ns, list := range l.napiDevs {
		for _, d := range list {
			ns.Exec("sh", "-c", "echo 1 > /sys/class/net/"+d+"/threaded")
		}
	}
	if l.groFlush > 0 {
		// Deferred NAPI (--gro-flush-timeout): a poll that ends keeps the
		// instance scheduled on a timer instead of being woken by the
		// next frame; with busy_poll, the workers' syscalls poll it.
		for _, d := range []string{l.dev("d0"), l.dev("d1")} {
			l.director.Exec("sh", "-c", fmt.Sprintf("echo 2 > /sys/class/net/%s/napi_defer_hard_irqs; echo %d > /sys/class/net/%s/gro_flush_timeout",
				d, l.groFlush.Nanoseconds(), d))
		}
	}
	procs, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return err
	}
	director := []string{"napi/" + l.dev("d0"), "napi/" + l.dev("d1")}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		comm := strings.TrimSpace(string(b))
		if !strings.HasPrefix(comm, "napi/"+l.prefix) {
			continue
		}
		cpus, mine := []int{l.genCPU}, false
		for _, d := range director {
			if strings.HasPrefix(comm, d+"-") || comm == d {
				cpus, mine = []int{l.dirCPU}, true
			}
		}
		if mine && l.queues > 1 {
			// Several queues: as many CPUs, shared with the generator's
			// threads (one per queue).
			cpus = []int{l.genCPU, l.dirCPU}
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err := pinPID(pid, cpus...); err != nil {
			l.log("warning: pin %s (%d) to cpus %v: %v", comm, pid, cpus, err)
		}
		if !mine {
			// The "other machines" (switch, real servers) must not
			// lose packets while the generator's busy loop holds the
			// CPU: their NAPI threads preempt it.
			if err := realtime(pid); err != nil {
				l.log("warning: SCHED_FIFO for %s (%d): %v", comm, pid, err)
			}
		} else if err := unix.Setpriority(unix.PRIO_PROCESS, pid, napiNice); err != nil {
			// The director's keep the ordinary policy (how they share
			// the CPU with govsd is part of what is measured), at
			// ksoftirqd's weight, below govsd's (napiNice).
			l.log("warning: nice %s (%d): %v", comm, pid, err)
		}
	}
	return nil
}

func (l *lab) close() {
	if l.httpStop != nil {
		l.httpStop()
	}
	l.kernelPaths(false)
	for _, s := range l.sinks {
		s.Close()
	}
	if l.switchSink != nil {
		l.switchSink.Close()
	}
	l.Close()
}
