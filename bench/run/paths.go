package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
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
}

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
		{name: "nftables", desc: "nftables DNAT of the VIP, numgen random mod 4",
			dsts: []string{vipUDP}, httpURL: fmt.Sprintf("http://%s:%d/", vipNAT, httpPort), nft: nft},
		{name: "nat", desc: "govs nat", dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "nat"},
		{name: "fullnat", desc: "govs fullnat", dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "fullnat"},
		{name: "dr", desc: "govs dr", dsts: []string{vipDRUDP}, mode: "dr",
			httpURL: fmt.Sprintf("http://%s:%d/", vipDR, httpPort)},
		{name: "tun", desc: "govs tun (encapsulated packets counted)", dsts: []string{vipDRUDP}, mode: "tun"},
		{name: "nat-workers", desc: "govs nat, workers only (fast_path: false: every packet through AF_XDP)",
			dsts: []string{vipUDP}, httpURL: vipHTTP, mode: "nat", workersOnly: true},
	}
}

// govsConfig is govsd's configuration for a forwarding mode: the UDP
// service the generator loads and, for nat and fullnat, an HTTP service
// for wrk.
func govsConfig(l *lab, mode, socket string, fast bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "director:\n  interfaces: [%s, %s]\n  control_socket: %s\n  metrics_listen: \"\"\n  fast_path: %v\nservices:\n",
		l.dev("d0"), l.dev("d1"), socket, fast)
	vip := vipNAT
	if mode == "dr" || mode == "tun" {
		vip = vipDR
	}
	service := func(name, proto string, port, rsPort int) {
		fmt.Fprintf(&b, "  - name: %s\n    vip: %q\n    port: %d\n    protocol: %s\n    scheduler: rr\n    forward: %s\n    health_check: {type: none}\n",
			name, vip, port, proto, mode)
		if mode == "fullnat" {
			fmt.Fprintf(&b, "    local_addresses: [%q]\n", localAddr)
		}
		b.WriteString("    real_servers:\n")
		for i := 0; i < numReals; i++ {
			fmt.Fprintf(&b, "      - {address: %q, port: %d}\n", realAddr(i), rsPort)
		}
	}
	service("bench-udp", "udp", udpPort, udpPort)
	switch mode {
	case "nat", "fullnat":
		service("bench-http", "tcp", vipHTTPPort, httpPort)
	case "dr":
		// DR cannot change the port: the VIP's port is the servers'.
		service("bench-http", "tcp", httpPort, httpPort)
	}
	return b.String()
}

// govsd is a running govsd process.
type govsd struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs bytes.Buffer
}

func (g *govsd) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.Write(p)
}

func (g *govsd) Logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

// startGovsd runs govsd pinned to the director's CPU, at directorNice, in the director
// namespace and waits until its control socket answers and its XDP program
// is on the client-side interface.
func (b *bench) startGovsd(p path) (*govsd, error) {
	mode := p.mode
	dir, err := os.MkdirTemp("", "govs-bench")
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "govs.sock")
	cfg := filepath.Join(dir, "govs.yaml")
	if err := os.WriteFile(cfg, []byte(govsConfig(b.lab, mode, socket, !p.workersOnly)), 0o644); err != nil {
		return nil, err
	}
	args := []string{"-n", fmt.Sprint(directorNice), "taskset", "-c", fmt.Sprint(b.lab.dirCPU), b.govsdBin, "-c", cfg}
	if b.cpuProfileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.cpuProfileDir, "govsd-"+p.name+".pprof"))
	}
	g := &govsd{done: make(chan struct{})}
	g.cmd = b.lab.director.Command(context.Background(), "nice", args...)
	g.cmd.Stdout, g.cmd.Stderr = g, g
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start govsd: %w", err)
	}
	go func() { g.cmd.Wait(); close(g.done); os.RemoveAll(dir) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			out, _ := b.lab.director.Exec("ip", "-d", "link", "show", "dev", b.lab.dev("d0"))
			if strings.Contains(out, "prog/xdp") || strings.Contains(out, "xdpdrv") || strings.Contains(out, "xdpgeneric") {
				return g, nil
			}
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("govsd exited early: %v\n%s", g.cmd.ProcessState, g.Logs())
		default:
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("govsd did not come up in time\n%s", g.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends govsd (the process we started, by PID) and waits for it; the
// CPU profile, if any, is written on the way out.
func (g *govsd) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// setUp makes the director forward path p and returns what undoes it.
func (b *bench) setUp(p path) (func(), error) {
	l := b.lab
	if p.mode == "" {
		if err := l.kernelPaths(true); err != nil {
			return nil, err
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
	g, err := b.startGovsd(p)
	if err != nil {
		return nil, err
	}
	if err := l.pinNAPI(); err != nil {
		g.stop()
		return nil, err
	}

	return func() {
		g.stop()
		if b.verbose {
			b.logf("govsd %s log:\n%s", p.mode, g.Logs())
		}
	}, nil
}
