package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/testutil"
)

// path is one way through the director that the bench measures.
type path struct {
	name string // as in --paths and the table
	desc string
	// dsts are the UDP destinations the generator cycles through.
	dsts []string
	// httpURL, if set, is what wrk fetches for connections per second.
	httpURL string
	// mode is the govsd forwarding method; "" for the kernel's paths.
	mode string
	// nft is an nftables ruleset for the director; "" for none.
	nft string
	// workersOnly runs govsd with fast_path: false: every packet through
	// the AF_XDP workers.
	workersOnly bool
	// stateless runs pktgen's reference balancer on the director instead
	// of govsd or the kernel.
	stateless bool
	// queues, if more than 1, gives the director's links that many RX
	// queues (so govsd that many workers) and the director both CPUs;
	// the generator runs a thread per queue (measure).
	queues int
	// ecmp routes the DR VIP to all the real servers (a multipath route,
	// hashed on the 4-tuple): the kernel's forwarding without NAT, spread
	// over the same servers as the balancers spread over.
	ecmp bool
}

// rxQueues is the number of RX queues p runs with.
func (p path) rxQueues() int { return max(p.queues, 1) }

func allPaths() []path {
	var reals []string
	var nftMap []string
	for i := 0; i < numReals; i++ {
		reals = append(reals, fmt.Sprintf("%s:%d", realAddr(i), udpPort))
		nftMap = append(nftMap, fmt.Sprintf("%d : %s", i, realAddr(i)))
	}
	nft := fmt.Sprintf(`table ip gbn {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s meta l4proto { tcp, udp } th dport { %[2]d, %[3]d } dnat to numgen random mod %[4]d map { %[5]s }
	}
}
`, vipNAT, udpPort, httpPort, numReals, strings.Join(nftMap, ", "))
	vipUDP := fmt.Sprintf("%s:%d", vipNAT, udpPort)
	vipDRUDP := fmt.Sprintf("%s:%d", vipDR, udpPort)
	vipHTTP := fmt.Sprintf("http://%s:%d/", vipNAT, vipHTTPPort)
	return []path{
		{name: "kernel", desc: "kernel IP forwarding, no load balancing (to the real servers' addresses)",
			dsts: reals, httpURL: fmt.Sprintf("http://%s:%d/", realAddr(0), httpPort)},
		{name: "direct", desc: "direct to the 4 real servers (kernel forwarding, no NAT: a multipath route to the VIP on their loopback, hashed on the 4-tuple)",
			httpURL: fmt.Sprintf("http://%s:%d/", vipDR, httpPort), ecmp: true},
		{name: "nftables", desc: "nftables DNAT of the VIP, numgen random mod 4",
			dsts: []string{vipUDP}, httpURL: fmt.Sprintf("http://%s:%d/", vipNAT, httpPort), nft: nft},
		{name: "stateless", desc: "stateless XDP balancer (hash of source % 4, DNAT, checksum fix, redirect; no state): the reference",
			dsts: []string{vipUDP}, stateless: true},
		{name: "nat", desc: "govs nat", dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "nat"},
		{name: "fullnat", desc: "govs fullnat", dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "fullnat"},
		{name: "dr", desc: "govs dr", dsts: []string{vipDRUDP}, mode: "dr",
			httpURL: fmt.Sprintf("http://%s:%d/", vipDR, httpPort)},
		{name: "tun", desc: "govs tun (encapsulated packets counted)", dsts: []string{vipDRUDP}, mode: "tun"},
		{name: "nat-workers", desc: "govs nat, workers only (fast_path: false: every packet through AF_XDP)",
			dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "nat", workersOnly: true},
		{name: "nat-2q", desc: "govs nat, 2 RX queues (2 workers, both CPUs, a generator thread per queue)",
			dsts: []string{vipUDP}, mode: "nat", queues: 2},
		{name: "nat-workers-2q", desc: "govs nat, workers only, 2 RX queues (2 workers, both CPUs, a generator thread per queue)",
			dsts: []string{vipUDP}, mode: "nat", workersOnly: true, queues: 2},
	}
}

// govsConfig is govsd's configuration for a forwarding mode: the UDP
// service the generator loads and, for nat and fullnat, an HTTP service
// for wrk.
func govsConfig(l *lab, mode string, fast bool, extra []string) string {
	vip := vipNAT
	if mode == "dr" || mode == "tun" {
		vip = vipDR
	}
	var reals []string
	for i := 0; i < numReals; i++ {
		reals = append(reals, realAddr(i))
	}
	service := func(name, proto string, port, rsPort int) testutil.Service {
		s := testutil.Service{Name: name, VIP: vip, Port: port, Protocol: proto, Forward: mode,
			Settings: []string{"health_check: {type: none}"}, Reals: testutil.Reals(rsPort, reals...)}
		if mode == "fullnat" {
			s.LocalAddresses = []string{localAddr}
		}
		return s
	}
	cfg := testutil.Config{
		Director: append([]string{fmt.Sprintf("interfaces: [%s, %s]", l.dev("d0"), l.dev("d1")), fmt.Sprintf("fast_path: %v", fast)}, extra...),
		Services: []testutil.Service{service("bench-udp", "udp", udpPort, udpPort)},
	}
	switch mode {
	case "nat", "fullnat":
		cfg.Services = append(cfg.Services, service("bench-http", "tcp", vipHTTPPort, httpPort))
	case "dr":
		// DR cannot change the port: the VIP's port is the servers'. mh
		// (with the client's port: wrk is one client) lets the XDP
		// program spread the SYNs over the SYN budget during the flood
		// rather than drop them (bpf/include/spread.h).
		http := service("bench-http", "tcp", httpPort, httpPort)
		http.Scheduler = "mh"
		http.Settings = append(http.Settings, "scheduler_flags: [mh-port]")
		cfg.Services = append(cfg.Services, http)
	}
	return cfg.YAML()
}

// startGovsd runs govsd pinned to the director's CPU (both CPUs for a
// multi-queue path), at directorNice, in the director namespace and waits
// until its control socket answers and its XDP program is on the
// client-side interface.
func (b *bench) startGovsd(p path) (*testutil.Govsd, error) {
	dir, err := os.MkdirTemp("", "govs-bench")
	if err != nil {
		return nil, err
	}
	cfg, socket, err := testutil.WriteConfig(dir, govsConfig(b.lab, p.mode, !p.workersOnly, b.directorExtra))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cpus := fmt.Sprint(b.lab.dirCPU)
	if p.rxQueues() > 1 {
		cpus = fmt.Sprintf("%d,%d", b.lab.genCPU, b.lab.dirCPU)
	}
	args := []string{"-n", fmt.Sprint(directorNice), "taskset", "-c", cpus, b.govsdBin, "-c", cfg}
	if b.cpuProfileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.cpuProfileDir, "govsd-"+p.name+".pprof"))
	}
	g, err := testutil.StartGovsd(b.lab.director.Command(context.Background(), "nice", args...), cfg, socket)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { <-g.Done(); os.RemoveAll(dir) }()
	xdpOn := func() bool {
		on, _ := testutil.XDPAttached(b.lab.director, b.lab.dev("d0"))
		return on
	}
	if err := g.WaitReady(20*time.Second, xdpOn); err != nil {
		stopGovsd(g)
		return nil, err
	}
	return g, nil
}

// stopGovsd ends govsd and waits for it (SIGKILL after 15 s); the CPU
// profile, if any, is written on the way out.
func stopGovsd(g *testutil.Govsd) { g.Stop(syscall.SIGTERM, 15*time.Second) }

// setUp makes the director forward path p and returns what undoes it.
func (b *bench) setUp(p path) (func(), error) {
	l := b.lab
	if p.stateless {
		if err := l.kernelPaths(false); err != nil {
			return nil, err
		}
		rb, err := l.refBalancer()
		if err != nil {
			return nil, err
		}
		if err := l.pinNAPI(); err != nil { // d0's NAPI came with the program
			rb.Close()
			return nil, err
		}
		return func() { rb.Close() }, nil
	}
	if p.mode == "" {
		if err := l.kernelPaths(true); err != nil {
			return nil, err
		}
		if p.ecmp {
			return l.ecmpRoute()
		}
		if p.nft == "" {
			return func() {}, nil
		}
		cmd := l.director.Command(context.Background(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(p.nft)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("nft: %w: %s", err, out)
		}
		l.director.Exec("sysctl", "-qw", "net.netfilter.nf_conntrack_max=1048576")
		return func() { l.director.Exec("nft", "delete", "table", "ip", "gbn") }, nil
	}
	if err := l.kernelPaths(false); err != nil {
		return nil, err
	}
	if err := l.setQueues(p.rxQueues()); err != nil {
		return nil, err
	}
	g, err := b.startGovsd(p)
	if err != nil {
		l.setQueues(1)
		return nil, err
	}
	if err := l.pinNAPI(); err != nil {
		stopGovsd(g)
		l.setQueues(1)
		return nil, err
	}
	b.govsdPID, b.govsdSocket = g.Cmd.Process.Pid, g.Socket
	return func() {
		b.govsdPID, b.govsdSocket = 0, ""
		stopGovsd(g)
		if err := l.setQueues(1); err != nil {
			b.logf("warning: %v", err)
		}
		if b.verbose {
			b.logf("govsd %s log:\n%s", p.mode, g.Logs())
		}
	}, nil
}
