package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
	"github.com/govs/govs/pktgen"
)

// Issue #13: a spoofed SYN flood at the generator's full speed (10 s,
// unpaced, bounded by floodMaxFrames too) from 198.19.0.0/16 against a
// TCP service, for NAT, full-NAT and DR, and NAT with fast_path: false
// (established traffic through the workers). During it, a keep-alive HTTP
// connection opened before the flood makes a request every 100 ms, and a
// new HTTP connection is opened every 50 ms; after it, new connections go
// on for afterFlood.
//
// What is asserted is behaviour, not timing: the keep-alive connection
// loses no request (none goes unanswered for keepAliveDeadline), new
// connections get in during the flood (NAT and full-NAT: at least 90%),
// and every connection started from 2 s after the flood succeeds (all
// modes). The figures (ratios, the longest keep-alive wait, the
// director's SYN-cookie, eviction, drop and AF_XDP ring counters) are
// logged: run with -v to see them.
//
// The flood and the legitimate client share one veth into the director,
// whose receive ring takes frames faster than the director can process
// them (the generator has a core of its own; the director, the client and
// the real servers share the other). The client's veth has a qdisc
// (clientQueue), so that its kernel's segments wait for room in that ring
// rather than being dropped at it with the flood's; the veth counters
// logged show what the ring dropped.
//
// The answers to the spoofed sources are dropped in XDP on the client's
// interface (pktgen.ReplyFilter), as a real network routes them away from
// the legitimate client. GOVS_FLOOD_DURATION shortens the flood while
// developing. The client and the real servers keep their veths' default
// offloads (TX checksum offload on), as containers do: the director
// finishes their checksums.

const (
	floodVIP4  = "198.18.0.100" // nat, full-NAT: on the director
	floodDRVIP = "198.18.2.100" // dr: on the real servers' loopback

	// The flood's sources: 198.19.0.0/16 (inside 198.18.0.0/15, away from
	// the lab's own 198.18.0.0/24 and 198.18.1.0/24), 1024 source ports
	// each, so that no flow repeats within the flood.
	floodSrc      = "198.19.0.0"
	floodSrcCount = 1 << 16
	floodFlows    = 1 << 25
	// floodMaxFrames bounds the flood whatever its speed (10 s at 10 Mpps).
	floodMaxFrames = 100_000_000

	keepAliveEvery    = 100 * time.Millisecond
	keepAliveDeadline = 5 * time.Second // a request that takes longer is lost
	newConnEvery      = 50 * time.Millisecond
	newConnDeadline   = 3 * time.Second // dial, request and answer
	recoverWithin     = 2 * time.Second // after the flood, every connection from here on succeeds
	afterFlood        = 5 * time.Second // how long new connections go on after the flood
	floodTableSize    = 1 << 18         // govsd's connection table
)

// floodDuration is 10 s as the issue asks; GOVS_FLOOD_DURATION shortens
// it while developing (e.g. 2s).
func floodDuration(t *testing.T) time.Duration {
	if s := os.Getenv("GOVS_FLOOD_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 10*time.Second {
			t.Fatalf("GOVS_FLOOD_DURATION=%q: want a duration up to 10s", s)
		}
		return d
	}
	return 10 * time.Second
}

// floodCase is one forwarding set-up under flood.
type floodCase struct {
	name     string
	mode     string // nat, fullnat, dr
	fastPath bool
	// newDuring: at least this share of new connections succeeds during
	// the flood (0: not asserted, as for DR, whose SYN-ACKs bypass the
	// director so that it cannot answer SYNs with cookies).
	newDuring float64
}

func TestSynFlood(t *testing.T) {
	needRoot(t)
	for _, c := range []floodCase{
		{name: "nat", mode: "nat", fastPath: true, newDuring: 0.9},
		{name: "fullnat", mode: "fullnat", fastPath: true, newDuring: 0.9},
		{name: "dr", mode: "dr", fastPath: true},
		{name: "nat-workers", mode: "nat", fastPath: false, newDuring: 0.9},
	} {
		t.Run(c.name, func(t *testing.T) { synFlood(t, c) })
	}
}

// floodConfig is govsd's configuration: one TCP (HTTP) service in mode,
// with the defaults of the SYN-flood defence (syn_proxy: auto).
func floodConfig(c floodCase) string {
	s := testutil.Service{Name: "web", VIP: floodVIP4, Port: 80, Forward: c.mode,
		Settings: []string{"health_check: {type: none}"}, Reals: testutil.Reals(8080, testutil.LabReals4(3)...)}
	switch c.mode {
	case "dr":
		s.VIP, s.Reals = floodDRVIP, testutil.Reals(80, testutil.LabReals4(3)...)
	case "fullnat":
		s.LocalAddresses = []string{"198.18.1.250"}
	}
	// A quarter of the default table, so that SYNs the workers take in
	// fill it within the flood even where they take in only some 30,000
	// a second (a slow or shared machine), as the default one fills on a
	// fast machine: the test then always meets a full table.
	return testutil.Config{
		Director: []string{fmt.Sprintf("fast_path: %v", c.fastPath), fmt.Sprintf("conn_table_size: %d", floodTableSize)},
		Services: []testutil.Service{s},
	}.YAML()
}

func synFlood(t *testing.T, c floodCase) {
	lab := newLab(t, "sf"+c.name[:2], topo.LabOptions{RealServers: 3, NoReturnRoute: c.mode == "fullnat"})
	replies := dropSpoofedReplies(t, lab)
	clientQueue(t, lab)
	vip := floodVIP4
	switch c.mode {
	case "dr":
		vip = floodDRVIP
		if err := lab.RealServerVIPs(mustAddr(vip)); err != nil {
			t.Fatal(err)
		}
	case "fullnat":
		if err := lab.AddVIP(mustAddr(vip)); err != nil {
			t.Fatal(err)
		}
		if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr("198.18.1.250")); err != nil {
			t.Fatal(err)
		}
	default:
		if err := lab.AddVIP(mustAddr(vip)); err != nil {
			t.Fatal(err)
		}
	}
	rsPort := 8080
	if c.mode == "dr" {
		rsPort = 80
	}
	stopHTTP, err := lab.ServeHTTP(rsPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopHTTP)
	g := startGovsd(t, lab.Director, floodConfig(c))
	target := net.JoinHostPort(vip, "80")
	url := "http://" + target + "/"

	// The service works before the flood, and the keep-alive connection
	// is established (and, with the fast path, offloaded) before it.
	client := topo.HTTPClient(lab.Client, newConnDeadline)
	if _, err := getRetry(context.Background(), client, url); err != nil {
		t.Fatalf("before the flood: GET %s: %v", url, err)
	}
	ka, err := lab.Client.Dial("tcp", target, 3*time.Second)
	if err != nil {
		t.Fatalf("keep-alive dial %s: %v", target, err)
	}
	t.Cleanup(func() { ka.Close() })
	keepAlive(t, ka, 10) // past the workers' warm-up: offloaded to the fast path where it is on
	before, vethBefore := floodCounters(t, g), vethDrops(lab)

	gen := newFlood(t, lab, vip)
	d := floodDuration(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The keep-alive requests and the new connections run from just
	// before the flood until afterFlood past its end.
	stopAt := make(chan time.Time, 1)
	kaDone := make(chan keepAliveResult, 1)
	go func() { kaDone <- keepAliveLoop(ctx, lab, ka, target, stopAt) }()
	probes := make(chan probe, 1024)
	probesDone := make(chan []probe, 1)
	go func() {
		var all []probe
		for p := range probes {
			all = append(all, p)
		}
		probesDone <- all
	}()
	var wg sync.WaitGroup
	probeCtx, stopProbes := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(newConnEvery)
		defer tick.Stop()
		for {
			select {
			case <-probeCtx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				probes <- newConnection(lab, target)
			}()
		}
	}()

	time.Sleep(300 * time.Millisecond)
	stopLag := make(chan struct{})
	lag := schedLag(stopLag)
	floodStart := time.Now()
	st, genErr := gen.run(ctx, d)
	floodEnd := time.Now()
	close(stopLag)
	worstLag := <-lag
	during, vethDuring := floodCounters(t, g), vethDrops(lab)
	time.Sleep(afterFlood)
	stopProbes()
	wg.Wait()
	close(probes)
	stopAt <- time.Now()
	kar := <-kaDone
	all := <-probesDone
	after := floodCounters(t, g)
	if genErr != nil {
		t.Fatalf("flood: %v", genErr)
	}
	if st.Sent == 0 {
		t.Fatalf("the generator sent nothing: %+v", st)
	}

	// Figures.
	var inFlood, inFloodOK, gap, gapOK, late, lateOK int
	var lateFailures, floodFailures []string
	for _, p := range all {
		switch {
		case p.start.Before(floodStart):
		case p.start.Before(floodEnd):
			inFlood++
			if p.err == nil {
				inFloodOK++
			}
			if p.err != nil || p.total > time.Second {
				floodFailures = append(floodFailures, fmt.Sprintf("at %v: %v", p.start.Sub(floodStart).Round(time.Millisecond), p))
			}
		case p.start.Before(floodEnd.Add(recoverWithin)):
			gap++
			if p.err == nil {
				gapOK++
			}
		default:
			late++
			if p.err == nil {
				lateOK++
			} else {
				lateFailures = append(lateFailures, fmt.Sprintf("%v after the flood: %v", p.start.Sub(floodEnd).Round(time.Millisecond), p.err))
			}
		}
	}
	ratio := func(ok, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(ok) / float64(n)
	}
	t.Logf("%s: flood %v: %d SYNs offered, %.3f Mpps, sources %s +%d, %d flows, to %s",
		c.name, st.Elapsed.Round(time.Millisecond), st.Sent, st.SentRate()/1e6, floodSrc, floodSrcCount-1, floodFlows, target)
	if n, err := replies.Dropped(); err == nil {
		t.Logf("%s: answers to the spoofed sources that reached the client (dropped there): %d", c.name, n)
	}
	t.Logf("%s: keep-alive: %d requests, %d failed (no answer within %v), %d answered after more than 1 s, longest wait of the answered ones %v, first failure: %v",
		c.name, kar.requests, kar.failures, keepAliveDeadline, kar.slow, kar.longest.Round(time.Millisecond), kar.firstErr)
	t.Logf("%s: keep-alive: %d segments retransmitted; the test process's timers fired up to %v late during the flood",
		c.name, kar.retrans, worstLag.Round(time.Millisecond))
	t.Logf("%s: new connections during the flood: %d of %d succeeded (%.2f)", c.name, inFloodOK, inFlood, ratio(inFloodOK, inFlood))
	if len(floodFailures) > 0 {
		t.Logf("%s: new connections during the flood that failed or took over 1 s:\n  %s", c.name, strings.Join(floodFailures, "\n  "))
	}
	t.Logf("%s: new connections in the first %v after it: %d of %d; from then on (%v): %d of %d",
		c.name, recoverWithin, gapOK, gap, afterFlood-recoverWithin, lateOK, late)
	logCounterDelta(t, c.name+": counters during the flood", before, during)
	logVethDrops(t, c.name+": veth drops and errors during the flood", vethBefore, vethDuring)
	logCounterDelta(t, c.name+": counters after the flood", during, after)

	// Behaviour, as issue #13 states it.
	if kar.failures > 0 {
		t.Errorf("%s: the keep-alive connection lost %d of %d requests during the flood (first: %v)", c.name, kar.failures, kar.requests, kar.firstErr)
	}
	if c.newDuring > 0 && ratio(inFloodOK, inFlood) < c.newDuring {
		t.Errorf("%s: %d of %d new connections succeeded during the flood (%.2f), want at least %.2f",
			c.name, inFloodOK, inFlood, ratio(inFloodOK, inFlood), c.newDuring)
	}
	if late == 0 {
		t.Errorf("%s: no new connection started from %v after the flood", c.name, recoverWithin)
	} else if lateOK < late {
		t.Errorf("%s: %d of %d new connections started from %v after the flood failed; first: %s",
			c.name, late-lateOK, late, recoverWithin, lateFailures[0])
	}
}

// flood is the SYN generator, loaded and aimed at the director.
type flood struct {
	lab *topo.Lab
	g   *pktgen.Generator
}

// newFlood loads a generator that sends TCP SYNs from 198.19.0.0/16 to
// vip:80 out of the client's interface, to the director's MAC.
func newFlood(t *testing.T, lab *topo.Lab, vip string) *flood {
	t.Helper()
	dstMAC, err := lab.Director.MAC(topo.DirectorClientIf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pktgen.Config{
		Src: netip.MustParseAddr(floodSrc), SrcCount: floodSrcCount, SrcPortMin: 1024, SrcPorts: 1024,
		Dsts:  []netip.AddrPort{netip.AddrPortFrom(mustAddr(vip), 80)},
		Proto: pktgen.TCPSyn, Flows: floodFlows, FrameSize: pktgen.MinFrameSize + 4, DstMAC: dstMAC,
	}
	if err := pktgen.CheckDestinations(cfg.Dsts); err != nil {
		t.Fatal(err)
	}
	if !pktgen.BenchPrefix4.Contains(cfg.Src) || !pktgen.BenchPrefix4.Contains(netip.MustParseAddr("198.19.255.255")) {
		t.Fatal("flood sources outside 198.18.0.0/15")
	}
	err = lab.Client.Do(func() error {
		ifi, err := net.InterfaceByName(topo.ClientIf)
		if err != nil {
			return err
		}
		cfg.Ifindex, cfg.SrcMAC = ifi.Index, ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := pktgen.New(cfg)
	if err != nil {
		t.Fatalf("load the generator: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return &flood{lab: lab, g: g}
}

// run floods for d (at most floodMaxFrames frames) from a thread in the
// client namespace, unpaced.
func (f *flood) run(ctx context.Context, d time.Duration) (pktgen.Stats, error) {
	var st pktgen.Stats
	err := f.lab.Client.Do(func() error {
		var err error
		st, err = f.g.Run(ctx, pktgen.RunOptions{Duration: d, Count: floodMaxFrames})
		return err
	})
	return st, err
}

// keepAliveResult is what the keep-alive connection saw.
type keepAliveResult struct {
	requests, failures int
	slow               int // answered after more than a second
	retrans            uint32
	longest            time.Duration
	firstErr           error
}

// keepAliveLoop makes a request over conn every keepAliveEvery until a
// time arrives on stop. A request that fails (an error, or no answer
// within keepAliveDeadline) counts as lost, and the next one goes over a
// new connection.
func keepAliveLoop(ctx context.Context, lab *topo.Lab, conn net.Conn, target string, stop <-chan time.Time) keepAliveResult {
	var r keepAliveResult
	rd := bufio.NewReader(conn)
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	fail := func(err error) {
		r.failures++
		if r.firstErr == nil {
			r.firstErr = err
		}
		conn.Close()
		conn = nil
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return r
		case <-ctx.Done():
			return r
		case <-tick.C:
		}
		r.requests++
		start := time.Now()
		if conn == nil {
			c, err := lab.Client.Dial("tcp", target, keepAliveDeadline)
			if err != nil {
				fail(fmt.Errorf("request %d: redial: %w", i, err))
				continue
			}
			conn, rd = c, bufio.NewReader(c)
		}
		conn.SetDeadline(start.Add(keepAliveDeadline))
		if _, err := fmt.Fprintf(conn, "GET /ka%d HTTP/1.1\r\nHost: v\r\n\r\n", i); err != nil {
			fail(fmt.Errorf("request %d: %w", i, err))
			continue
		}
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			fail(fmt.Errorf("request %d after %v: %w", i, time.Since(start).Round(time.Millisecond), err))
			continue
		}
		body := make([]byte, 256)
		resp.Body.Read(body)
		resp.Body.Close()
		wait := time.Since(start)
		r.retrans = tcpRetrans(conn)
		r.longest = max(r.longest, wait)
		if wait > time.Second {
			r.slow++
		}
	}
}

// probe is one new connection: when it started and how it ended.
type probe struct {
	start   time.Time
	dial    time.Duration // how long the handshake took (SYN retransmitted: 1 s or more)
	total   time.Duration
	retrans uint32 // the connection's retransmitted segments (TCP_INFO), once connected
	err     error
}

func (p probe) String() string {
	return fmt.Sprintf("dial %v, total %v, %d retransmitted: %v", p.dial.Round(time.Millisecond),
		p.total.Round(time.Millisecond), p.retrans, p.err)
}

// newConnection opens a TCP connection to target and makes one HTTP
// request over it, all within newConnDeadline.
func newConnection(lab *topo.Lab, target string) (p probe) {
	p.start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), newConnDeadline)
	defer cancel()
	defer func() { p.total = time.Since(p.start) }()
	c, err := lab.Client.DialContext(ctx, "tcp", target)
	p.dial = time.Since(p.start)
	if err != nil {
		p.err = fmt.Errorf("dial: %w", err)
		return p
	}
	defer c.Close()
	c.SetDeadline(p.start.Add(newConnDeadline))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n"); err != nil {
		p.err = fmt.Errorf("request: %w", err)
		return p
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
	}
	p.retrans = tcpRetrans(c)
	if err != nil {
		p.err = fmt.Errorf("answer: %w", err)
	}
	return p
}

// tcpRetrans is c's count of retransmitted segments (TCP_INFO), 0 where
// it cannot be read.
func tcpRetrans(c net.Conn) uint32 {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	var n uint32
	raw.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = info.Total_retrans
		}
	})
	return n
}

// schedLag measures how late a 10 ms ticker fires in the test process
// until stop is closed: a long lag means the client (this process) was
// starved of CPU, so a slow answer need not be a lost packet.
func schedLag(stop <-chan struct{}) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		const every = 10 * time.Millisecond
		var worst time.Duration
		last := time.Now()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- worst
				return
			case now := <-tick.C:
				worst = max(worst, now.Sub(last)-every)
				last = now
			}
		}
	}()
	return out
}

// floodCounterLine picks the counters about the defence and overload from
// govsadm --counters: SYN cookies, evictions, rings, drops, connections.
var floodCounterLine = regexp.MustCompile(`(?i)cookie|evict|half|ring|fill|drop|conns|syn|rx_|tx_|xsk|throttl|proxy|steer`)

// counterSnapshot is one govsadm --counters: the datapath and xdp lines
// as "part name" -> value, and the tables after them (SYN proxy per
// service, AF_XDP rings per interface and queue) as printed.
type counterSnapshot struct {
	values map[string]uint64
	tables string
}

func floodCounters(t *testing.T, g *govsd) counterSnapshot {
	t.Helper()
	out, err := g.adm("--counters")
	if err != nil {
		t.Logf("govsadm --counters: %v\n%s", err, out)
		return counterSnapshot{}
	}
	c := counterSnapshot{values: map[string]uint64{}}
	var tables []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[0] == "datapath" || f[0] == "xdp") {
			var v uint64
			if _, err := fmt.Sscan(f[2], &v); err == nil {
				c.values[f[0]+" "+f[1]] = v
				continue
			}
		}
		if len(f) > 0 {
			tables = append(tables, line)
		}
	}
	c.tables = strings.Join(tables, "\n  ")
	return c
}

// logCounterDelta logs how the flood-related counters moved between a and
// b, and b's tables.
func logCounterDelta(t *testing.T, what string, a, b counterSnapshot) {
	t.Helper()
	var parts []string
	for k, v := range b.values {
		if floodCounterLine.MatchString(k) && v != a.values[k] {
			parts = append(parts, fmt.Sprintf("%s %+d (now %d)", k, int64(v-a.values[k]), v))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		parts = append(parts, "no SYN, cookie, eviction, ring, drop or connection counter moved")
	}
	if b.tables != "" {
		parts = append(parts, b.tables)
	}
	t.Logf("%s:\n  %s", what, strings.Join(parts, "\n  "))
}

// clientQueue gives the client's veth a pfifo qdisc instead of the
// default noqueue. The generator overruns the director's receive ring
// (the veth's 256 frames) several times over on a 2-core machine; with
// noqueue, the legitimate client's segments are dropped there too, before
// any code of the director sees them, as on a saturated link, and its
// connections wait out SYN and data retransmissions (1 s and more) for
// reasons outside the director. With a qdisc, the veth holds the client's
// segments back while that ring is full (the kernel stops the queue and
// wakes it when the ring has room): what is measured is what the director
// does with the legitimate traffic that reaches it.
func clientQueue(t *testing.T, lab *topo.Lab) {
	t.Helper()
	if out, err := lab.Client.Exec("tc", "qdisc", "replace", "dev", topo.ClientIf, "root", "pfifo"); err != nil {
		t.Fatalf("tc qdisc replace dev %s root pfifo: %v\n%s", topo.ClientIf, err, out)
	}
}

// dropSpoofedReplies attaches pktgen's reply filter to the client's
// interface: it drops the director's (and the real servers') answers to
// the flood's spoofed sources (198.19.0.0/16), which on a real network go
// wherever those addresses are routed, not to the legitimate client. Here
// all of them come back over the one veth, and at millions per second the
// client's receive ring would drop legitimate answers with them.
func dropSpoofedReplies(t *testing.T, lab *topo.Lab) *pktgen.ReplyFilter {
	t.Helper()
	f, err := pktgen.LoadReplyFilter(netip.MustParsePrefix(floodSrc + "/16"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	err = lab.Client.Do(func() error {
		ifi, err := net.InterfaceByName(topo.ClientIf)
		if err != nil {
			return err
		}
		return f.Attach(ifi.Index)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// vethDrops is the drop and error counters of the lab's veths (ethtool
// -S: a receive ring that refused frames shows as its peer's
// tx_queue_N_xdp_xmit_errors), keyed "namespace/interface counter".
func vethDrops(lab *topo.Lab) map[string]uint64 {
	m := map[string]uint64{}
	for _, v := range []struct {
		ns  *topo.NS
		dev string
	}{{lab.Client, topo.ClientIf}, {lab.Director, topo.DirectorClientIf}, {lab.Director, topo.DirectorRealIf}, {lab.Switch, "swd"}} {
		out, err := v.ns.Exec("ethtool", "-S", v.dev)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			k, val, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !(strings.Contains(k, "drop") || strings.Contains(k, "err")) {
				continue
			}
			var n uint64
			if _, err := fmt.Sscan(strings.TrimSpace(val), &n); err == nil {
				m[v.dev+" "+k] = n
			}
		}
	}
	return m
}

// logVethDrops logs the veth counters that moved between a and b.
func logVethDrops(t *testing.T, what string, a, b map[string]uint64) {
	t.Helper()
	var parts []string
	for k, v := range b {
		if v != a[k] {
			parts = append(parts, fmt.Sprintf("%s +%d", k, v-a[k]))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	t.Logf("%s: %s", what, strings.Join(parts, ", "))
}
