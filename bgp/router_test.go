package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
)

// This file runs a real router (gobgpd from the Debian package "gobgpd") in
// one network namespace and a Speaker in another, and checks what the router
// learns. The Speaker runs in a child process started with "ip netns exec":
// GoBGP dials from goroutines on arbitrary OS threads, so switching the
// namespace of one locked thread in the test process would not be enough.
// The child is this test binary, re-executed with helperEnv set (see
// TestMain), driven by one-line commands on its stdin.

const (
	helperEnv    = "GBG_SPEAKER_HELPER"
	helperReply  = "gbg-reply: "
	routerASN    = 65000
	speakerASN   = 65001
	routerAddr   = "198.18.0.1"
	speakerAddr  = "198.18.0.2"
	nextHop      = "198.18.0.254"
	nextHop6     = "2001:db8::254"
	vip          = "198.18.0.100/32"
	vip6         = "2001:db8::100/128"
	community    = 65001<<16 | 100 // "65001:100"
	helperMaxRun = 2 * time.Minute
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg))
	}
	os.Exit(m.Run())
}

// helperConfig is the Speaker configuration handed to the child process.
type helperConfig struct {
	ASN         uint32
	RouterID    netip.Addr
	NextHop     netip.Addr
	NextHop6    netip.Addr
	Peers       []Peer
	Communities []uint32
}

// runHelper is the child process: it starts a Speaker and obeys
// "announce PREFIX", "withdraw PREFIX", "states" and "stop" lines on stdin,
// answering each with one helperReply line on stdout. It stops the Speaker
// and exits when stdin closes or after helperMaxRun, so it cannot outlive a
// crashed test for long.
func runHelper(raw string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Start(context.Background(), Config{
		ASN: hc.ASN, RouterID: hc.RouterID, NextHop: hc.NextHop, NextHop6: hc.NextHop6,
		Peers: hc.Peers, Communities: hc.Communities, Logger: logger,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	reply := func(format string, args ...any) { fmt.Printf(helperReply+format+"\n", args...) }
	reply("started")

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(helperMaxRun)
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-deadline:
		}
		if !ok {
			_ = s.Stop()
			return 0
		}
		verb, arg, _ := strings.Cut(line, " ")
		var err error
		switch verb {
		case "announce", "withdraw":
			var p netip.Prefix
			if p, err = netip.ParsePrefix(arg); err == nil {
				if verb == "announce" {
					err = s.Announce(p)
				} else {
					err = s.Withdraw(p)
				}
			}
		case "states":
			var parts []string
			for a, st := range s.PeerStates() {
				parts = append(parts, a.String()+"="+st)
			}
			reply("%s", strings.Join(parts, ","))
			continue
		case "stop":
			err = s.Stop()
			if err == nil {
				reply("ok")
				return 0
			}
		default:
			err = fmt.Errorf("unknown command %q", line)
		}
		if err != nil {
			reply("error %v", err)
		} else {
			reply("ok")
		}
	}
}

// speakerProc is the test's handle on the child process.
type speakerProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string
	stderr  *testutil.LogBuffer
}

func (p *speakerProc) do(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		t.Fatalf("speaker %q: %v", cmd, err)
	}
	select {
	case r, ok := <-p.replies:
		if !ok {
			t.Fatalf("speaker %q: process exited; log:\n%s", cmd, p.stderr)
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("speaker %q: no reply within 15s; log:\n%s", cmd, p.stderr)
	}
	return ""
}

func (p *speakerProc) mustOK(t *testing.T, cmd string) {
	t.Helper()
	if r := p.do(t, cmd); r != "ok" {
		t.Fatalf("speaker %q: %s", cmd, r)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// setupNamespaces creates the router and speaker namespaces joined by a veth
// pair, and deletes them (which deletes the veth pair) on cleanup.
func setupNamespaces(t *testing.T) (routerNS, speakerNS string) {
	t.Helper()
	pid := os.Getpid()
	routerNS = fmt.Sprintf("gbg-r-%d", pid)
	speakerNS = fmt.Sprintf("gbg-s-%d", pid)
	routerIf, speakerIf := fmt.Sprintf("gbgr%d", pid), fmt.Sprintf("gbgs%d", pid)
	for _, ns := range []string{routerNS, speakerNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", routerNS, "link", "add", routerIf, "type", "veth", "peer", "name", speakerIf, "netns", speakerNS)
	for _, side := range []struct{ ns, ifname, addr string }{
		{routerNS, routerIf, routerAddr},
		{speakerNS, speakerIf, speakerAddr},
	} {
		run(t, "ip", "-n", side.ns, "addr", "add", side.addr+"/24", "dev", side.ifname)
		run(t, "ip", "-n", side.ns, "link", "set", side.ifname, "up")
		run(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		run(t, "ip", "netns", "exec", side.ns, "ethtool", "-K", side.ifname, "tx", "off")
	}
	return routerNS, speakerNS
}

const gobgpdConfig = `[global.config]
  as = %d
  router-id = "%s"
  port = 179
  local-address-list = ["%s"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.timers.config]
    connect-retry = 5
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`

// gobgpRouter is a gobgpd process in the router namespace, queried through
// the gobgp CLI on a Unix socket so that no TCP API port is involved.
type gobgpRouter struct {
	ns     string
	socket string
}

func startGobgpd(t *testing.T, ns string) *gobgpRouter {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gobgpd.toml")
	body := fmt.Sprintf(gobgpdConfig, routerASN, routerAddr, routerAddr, speakerAddr, speakerASN)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &gobgpRouter{ns: ns, socket: filepath.Join(dir, "gobgpd.sock")}
	log := &testutil.LogBuffer{}
	cmd := exec.Command("ip", "netns", "exec", ns, "gobgpd", "-f", conf, "-p",
		"--api-hosts", "unix://"+r.socket, "--pprof-disable")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gobgpd: %v", err)
	}
	// "ip netns exec" execs gobgpd, so this PID is gobgpd's.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gobgpd log:\n%s", log)
		}
	})
	waitFor(t, 10*time.Second, "gobgpd API socket", func() error {
		_, err := r.cli("global")
		return err
	})
	return r
}

func (r *gobgpRouter) cli(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args = append([]string{"--target", "unix://" + r.socket}, args...)
	out, err := exec.CommandContext(ctx, "gobgp", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("gobgp %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// learnedRoute is what the router holds for one prefix.
type learnedRoute struct {
	nextHop     string
	communities []uint32
}

// rib returns the router's best paths for family ("ipv4" or "ipv6").
func (r *gobgpRouter) rib(family string) (map[string]learnedRoute, error) {
	out, err := r.cli("global", "rib", "-a", family, "-j")
	if err != nil {
		return nil, err
	}
	var raw map[string][]struct {
		Best  bool `json:"best"`
		Attrs []struct {
			Type        int      `json:"type"`
			Nexthop     string   `json:"nexthop"`
			Communities []uint32 `json:"communities"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("decode gobgp rib %q: %w", out, err)
	}
	routes := map[string]learnedRoute{}
	for prefix, paths := range raw {
		for _, p := range paths {
			if !p.Best {
				continue
			}
			var lr learnedRoute
			for _, a := range p.Attrs {
				switch a.Type {
				case 3, 14: // NEXT_HOP, MP_REACH_NLRI
					lr.nextHop = a.Nexthop
				case 8: // COMMUNITIES
					lr.communities = a.Communities
				}
			}
			routes[prefix] = lr
		}
	}
	return routes, nil
}

// waitRoute waits until the router has (present) or lacks (!present) prefix;
// a present route must have the expected next hop and community.
func (r *gobgpRouter) waitRoute(t *testing.T, timeout time.Duration, family, prefix, wantNextHop string, present bool) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("router route %s present=%v", prefix, present), func() error {
		routes, err := r.rib(family)
		if err != nil {
			return err
		}
		lr, ok := routes[prefix]
		switch {
		case ok != present:
			return fmt.Errorf("rib: %v", routes)
		case present && lr.nextHop != wantNextHop:
			return fmt.Errorf("next hop %q, want %q", lr.nextHop, wantNextHop)
		case present && !slices.Contains(lr.communities, community):
			return fmt.Errorf("communities %v lack %d", lr.communities, community)
		}
		if present {
			t.Logf("router learned %s via %s communities %v", prefix, lr.nextHop, lr.communities)
		}
		return nil
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startSpeakerProc(t *testing.T, ns string) *speakerProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := json.Marshal(helperConfig{
		ASN:         speakerASN,
		RouterID:    netip.MustParseAddr(speakerAddr),
		NextHop:     netip.MustParseAddr(nextHop),
		NextHop6:    netip.MustParseAddr(nextHop6),
		Peers:       []Peer{{Address: netip.MustParseAddr(routerAddr), ASN: routerASN, Port: 179}},
		Communities: []uint32{community},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(hc))
	p := &speakerProc{cmd: cmd, replies: make(chan string, 16), stderr: &testutil.LogBuffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start speaker process: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), helperReply); ok {
				p.replies <- r
			}
		}
		close(p.replies)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("speaker log:\n%s", p.stderr)
		}
	})
	select {
	case r := <-p.replies:
		if r != "started" {
			t.Fatalf("speaker process: %q; log:\n%s", r, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("speaker process did not start; log:\n%s", p.stderr)
	}
	return p
}

func skipUnlessRouterTest(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t, "creates network namespaces")
	for _, tool := range []string{"ip", "ethtool", "gobgpd", "gobgp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (the router side needs the Debian package gobgpd): %v", tool, err)
		}
	}
	if testing.Short() {
		t.Skip("BGP session test takes ~15 s; skipped with -short")
	}
}

// TestRouterLearnsVIP is the end-to-end check: a router learns the VIP with
// our next hop and community, loses it on Withdraw, learns it again on
// Announce and loses it on Stop.
func TestRouterLearnsVIP(t *testing.T) {
	skipUnlessRouterTest(t)
	routerNS, speakerNS := setupNamespaces(t)
	router := startGobgpd(t, routerNS)
	sp := startSpeakerProc(t, speakerNS)

	// Announced before the session is up: sent once it is established.
	sp.mustOK(t, "announce "+vip)
	sp.mustOK(t, "announce "+vip6)
	waitFor(t, 45*time.Second, "bgp session established", func() error {
		if st := sp.do(t, "states"); st != routerAddr+"=established" {
			return errors.New(st)
		}
		return nil
	})
	router.waitRoute(t, 10*time.Second, "ipv4", vip, nextHop, true)
	router.waitRoute(t, 10*time.Second, "ipv6", vip6, nextHop6, true)

	// The speaker only connects out: no BGP listener, no gRPC API port.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", speakerNS, "ss", "-ltnH").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	if listening := strings.TrimSpace(string(out)); listening != "" {
		t.Fatalf("speaker namespace has listening TCP sockets:\n%s", listening)
	}

	sp.mustOK(t, "withdraw "+vip)
	router.waitRoute(t, 5*time.Second, "ipv4", vip, "", false)
	router.waitRoute(t, 5*time.Second, "ipv6", vip6, nextHop6, true) // untouched

	sp.mustOK(t, "announce "+vip)
	router.waitRoute(t, 5*time.Second, "ipv4", vip, nextHop, true)

	sp.mustOK(t, "stop")
	router.waitRoute(t, 5*time.Second, "ipv4", vip, "", false)
	router.waitRoute(t, 5*time.Second, "ipv6", vip6, "", false)
}
