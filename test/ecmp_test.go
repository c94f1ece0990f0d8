package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// Issue #23: scale-out behind an ECMP router. Two directors announce the
// same VIP over BGP to a router (bird2 in the client's namespace), which
// installs a multipath route and spreads flows over them by their L4 hash.
// When one director goes away the router moves its flows to the other,
// which has no connection entry for them: with the mh scheduler it
// schedules their first non-SYN packet (IPVS's sloppy_tcp) and picks the
// same real server as the lost director did, so every connection goes on.
const (
	ecmpVIP        = "198.18.2.100"
	ecmpConns      = 24                     // keep-alive connections
	ecmpEvery      = 200 * time.Millisecond // one request per connection this often
	ecmpDeadline   = 10 * time.Second       // a request unanswered this long has failed
	ecmpNewConns   = 10                     // new connections after the move
	ecmpConverge   = 30 * time.Second       // BGP sessions up and both paths installed (GoBGP connects after ~8 s)
	ecmpWithdrawal = 10 * time.Second       // the lost director's path removed
)

func TestECMPScaleOut(t *testing.T) {
	needRoot(t)
	bird, err := exec.LookPath("bird")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/bird"); serr != nil {
			t.Skip("bird not installed (Debian package bird2; .ci/deps installs it)")
		}
		bird = "/usr/sbin/bird"
	}
	for _, mode := range []string{"dr", "tun"} {
		t.Run(mode, func(t *testing.T) {
			// sigterm: dirA's govsd stops; its BGP session closes with a
			// Cease and the router withdraws the path at once.
			// linkdown: dirA's links go down and its govsd is killed; the
			// router's hold timer (3 s) removes the path.
			for _, how := range []string{"sigterm", "linkdown"} {
				t.Run(how, func(t *testing.T) { ecmpCase(t, bird, mode, how) })
			}
		})
	}
}

func ecmpConfig(mode, routerID string) string {
	return testutil.Config{
		Director: []string{fmt.Sprintf("bgp: {asn: 65001, router_id: %s, peers: [{address: 198.18.0.1, asn: 65000}]}", routerID)},
		Services: []testutil.Service{{Name: "web", VIP: ecmpVIP, Port: 80, Scheduler: "mh", Forward: mode,
			Settings: []string{"scheduler_flags: [mh-port]"}, Reals: testutil.Reals(80, testutil.LabReals4(2)...)}},
	}.YAML()
}

// birdConfig peers with both directors (bird stays passive: govsd only
// connects out) and installs the VIP's paths as one multipath route.
const birdConfig = `
log stderr all;
router id 198.18.0.1;
protocol device {}
protocol kernel {
	ipv4 { export all; };
	merge paths on;
}
protocol bgp a {
	local 198.18.0.1 as 65000;
	neighbor 198.18.0.11 as 65001;
	hold time 3;
	passive on;
	ipv4 { import all; export none; };
}
protocol bgp b {
	local 198.18.0.1 as 65000;
	neighbor 198.18.0.12 as 65001;
	hold time 3;
	passive on;
	ipv4 { import all; export none; };
}
`

var viaRE = regexp.MustCompile(`via (\d+\.\d+\.\d+\.\d+)`)

// vipNextHops returns the client's next hops for the VIP, sorted.
func vipNextHops(t *testing.T, client *topo.NS) []string {
	t.Helper()
	out, err := client.Exec("ip", "route", "show", ecmpVIP)
	if err != nil {
		t.Fatal(err)
	}
	var hops []string
	for _, m := range viaRE.FindAllStringSubmatch(out, -1) {
		hops = append(hops, m[1])
	}
	sort.Strings(hops)
	return hops
}

// connSources returns the client endpoints ("198.18.0.1:PORT") in a
// director's connection table.
func connSources(t *testing.T, g *govsd) map[string]bool {
	t.Helper()
	out, err := g.adm("-Lnc", "--json")
	if err != nil {
		t.Fatalf("govsadm -Lnc --json: %v\n%s", err, out)
	}
	var conns []struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &conns); err != nil {
		t.Fatalf("govsadm -Lnc --json: %v\n%s", err, out)
	}
	src := map[string]bool{}
	for _, c := range conns {
		src[c.Source] = true
	}
	return src
}

// ecmpConn is a keep-alive connection making a request every ecmpEvery;
// every answer must come from the real server that answered the first.
type ecmpConn struct {
	local  string // client endpoint
	server string // the real server of the first answer
	dir    string // the director it went through at first ("A" or "B")

	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	requests int
	lastOK   time.Time     // when the last answer came
	longest  time.Duration // the longest wait for an answer
	longAt   time.Time     // when that request was sent
	err      error         // the first failure; the loop ends there
}

func openECMPConn(client *topo.NS) (*ecmpConn, error) {
	c, err := client.Dial("tcp", net.JoinHostPort(ecmpVIP, "80"), 3*time.Second)
	if err != nil {
		return nil, err
	}
	k := &ecmpConn{local: c.LocalAddr().String(), stop: make(chan struct{}), done: make(chan struct{})}
	rd := bufio.NewReader(c)
	get := func(i int) (string, error) {
		c.SetDeadline(time.Now().Add(ecmpDeadline))
		if _, err := fmt.Fprintf(c, "GET /ecmp%d HTTP/1.1\r\nHost: v\r\n\r\n", i); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return "", fmt.Errorf("empty answer")
		}
		return f[0], nil
	}
	if k.server, err = get(0); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: first request: %w", k.local, err)
	}
	k.lastOK = time.Now()
	go func() {
		defer close(k.done)
		defer c.Close()
		tick := time.NewTicker(ecmpEvery)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-k.stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			rs, err := get(i)
			wait := time.Since(start)
			k.mu.Lock()
			k.requests++
			if err == nil && rs != k.server {
				err = fmt.Errorf("answered by %s, first by %s", rs, k.server)
			}
			if err != nil {
				k.err = fmt.Errorf("request %d (sent at %s, after %v): %w", i, start.Format("15:04:05.000"), wait.Round(time.Millisecond), err)
				k.mu.Unlock()
				return
			}
			k.lastOK = time.Now()
			if wait > k.longest {
				k.longest, k.longAt = wait, start
			}
			k.mu.Unlock()
		}
	}()
	return k, nil
}

// okSince reports whether the connection has had an answer after t, and
// whether it has failed.
func (k *ecmpConn) okSince(t time.Time) (ok, failed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastOK.After(t), k.err != nil
}

func (k *ecmpConn) close() {
	close(k.stop)
	<-k.done
}

func ecmpCase(t *testing.T, bird, mode, how string) {
	// The real servers' default route goes via dirB (198.18.1.12), the
	// director that stays: DR and TUN answers go from the real server to
	// the client directly, through its gateway, and must keep flowing
	// when dirA is stopped or cut off.
	l := newSyncLabVia(t, "198.18.1.12")
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(80)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if mode == "tun" {
		for _, rs := range l.reals {
			if err := rs.MustExec(
				[]string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
				[]string{"sysctl", "-qw", "net.ipv4.conf.r0.rp_filter=0"},
			); err != nil {
				t.Fatal(err)
			}
		}
		startDecap(t, servers, ecmpVIP)
	}
	// The router (the client's namespace) learns the VIP from BGP instead
	// of the lab's static route, and hashes flows over its paths by their
	// addresses and ports (L4).
	if err := l.client.MustExec(
		[]string{"ip", "route", "del", ecmpVIP + "/32"},
		[]string{"sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"},
	); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(birdConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, l.client, bird, "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"))
	start := time.Now()
	dirA := startGovsd(t, l.dirA, ecmpConfig(mode, "198.18.0.11"))
	dirB := startGovsd(t, l.dirB, ecmpConfig(mode, "198.18.0.12"))
	both := []string{"198.18.0.11", "198.18.0.12"}
	waitFor(t, ecmpConverge, "the router's multipath route to the VIP via both directors", func() bool {
		return fmt.Sprint(vipNextHops(t, l.client)) == fmt.Sprint(both)
	})
	t.Logf("%s/%s: multipath route via both directors %v after the start", mode, how, time.Since(start).Round(10*time.Millisecond))

	// Keep-alive connections, spread over the directors by the router.
	var conns []*ecmpConn
	t.Cleanup(func() {
		for _, k := range conns {
			select {
			case <-k.stop:
			default:
				k.close()
			}
		}
	})
	for i := 0; i < ecmpConns; i++ {
		k, err := openECMPConn(l.client)
		if err != nil {
			t.Fatalf("keep-alive connection %d: %v", i, err)
		}
		conns = append(conns, k)
	}
	srcA, srcB := connSources(t, dirA), connSources(t, dirB)
	perDir, perServer := map[string]int{}, map[string]int{}
	for _, k := range conns {
		switch {
		case srcA[k.local] && srcB[k.local]:
			t.Fatalf("%s is in both directors' connection tables", k.local)
		case srcA[k.local]:
			k.dir = "A"
		case srcB[k.local]:
			k.dir = "B"
		default:
			t.Fatalf("%s is in neither director's connection table\nA: %v\nB: %v", k.local, srcA, srcB)
		}
		perDir[k.dir]++
		perServer[k.server]++
	}
	t.Logf("%s/%s: %d connections: director A %d, B %d; real servers %v", mode, how, len(conns), perDir["A"], perDir["B"], perServer)
	if perDir["A"] == 0 || perDir["B"] == 0 {
		t.Fatalf("the router sent all %d connections through one director (%v): ECMP does not spread them, the test proves nothing", len(conns), perDir)
	}
	time.Sleep(time.Second) // requests flow through both directors

	// dirA goes away.
	cut := time.Now()
	switch how {
	case "sigterm":
		dirA.stop(syscall.SIGTERM)
	case "linkdown":
		// The links first, so that nothing of the killed process's BGP
		// session (a FIN) reaches the router: only its hold timer tells.
		if err := l.dirA.MustExec(
			[]string{"ip", "link", "set", "d0", "down"},
			[]string{"ip", "link", "set", "d1", "down"},
		); err != nil {
			t.Fatal(err)
		}
		dirA.stop(syscall.SIGKILL)
	}
	waitFor(t, ecmpWithdrawal, "the router to remove dirA's path", func() bool {
		return fmt.Sprint(vipNextHops(t, l.client)) == "[198.18.0.12]"
	})
	moved := time.Now()
	t.Logf("%s/%s: dirA's path removed %v after the %s", mode, how, moved.Sub(cut).Round(10*time.Millisecond), how)

	// Every connection answers again, through dirB.
	deadline := moved.Add(ecmpDeadline + 2*time.Second)
	for {
		all := true
		for _, k := range conns {
			ok, failed := k.okSince(moved)
			all = all && (ok || failed)
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // and goes on answering

	// New connections go through dirB.
	newOK, newServers := 0, map[string]int{}
	client := topo.HTTPClient(l.client, 5*time.Second)
	for i := 0; i < ecmpNewConns; i++ {
		body, err := topo.Get(t.Context(), client, "http://"+ecmpVIP+"/new")
		if err != nil {
			t.Errorf("new connection %d after the move: %v", i, err)
			continue
		}
		newOK++
		newServers[strings.Fields(body)[0]]++
	}
	srcB = connSources(t, dirB)

	var pauseA, pauseB time.Duration
	var failedA, failedB, requests int
	for _, k := range conns {
		k.close()
		k.mu.Lock()
		requests += k.requests
		if k.dir == "A" {
			pauseA = max(pauseA, k.longest)
		} else {
			pauseB = max(pauseB, k.longest)
		}
		if k.err != nil {
			if k.dir == "A" {
				failedA++
			} else {
				failedB++
			}
			t.Errorf("%s (director %s, %s): %v", k.local, k.dir, k.server, k.err)
		} else if !srcB[k.local] {
			t.Errorf("%s (director %s, %s) answers but is not in dirB's connection table", k.local, k.dir, k.server)
		}
		k.mu.Unlock()
	}
	t.Logf("%s/%s: %d requests; the %d connections moved from A: %d failed, longest wait %v; the %d that stayed on B: %d failed, longest wait %v; %d of %d new connections answered (real servers %v)",
		mode, how, requests, perDir["A"], failedA, pauseA.Round(time.Millisecond), perDir["B"], failedB, pauseB.Round(time.Millisecond),
		newOK, ecmpNewConns, newServers)
	if failedA+failedB > 0 {
		out, _ := dirB.adm("--counters")
		var drops []string
		for _, line := range strings.Split(out, "\n") {
			// "datapath drop_no_conn 92": the moved connections' packets
			// that dirB did not schedule.
			if f := strings.Fields(line); len(f) == 3 && f[0] == "datapath" && strings.Contains(f[1], "drop") && f[2] != "0" {
				drops = append(drops, f[1]+" "+f[2])
			}
		}
		t.Logf("dirB's non-zero drop counters: %s", strings.Join(drops, ", "))
	}
}
