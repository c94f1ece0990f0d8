package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// keepalivedConfig is a VRRP instance that floats the VIP on the client
// side and the real servers' gateway (the DIP) on the other, as an LVS-NAT
// pair needs. The README shows it with govsd tracked, as
// keepalivedTrackConfig does.
const keepalivedConfig = `
global_defs {
  router_id %s
}
vrrp_instance govs {
  state BACKUP
  interface d0
  virtual_router_id 51
  priority %d
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/32 dev d0
    198.18.1.254/24 dev d1
  }
}
`

func startKeepalived(t *testing.T, ns *topo.NS, name string, priority int) *exec.Cmd {
	t.Helper()
	return startKeepalivedConf(t, ns, fmt.Sprintf(keepalivedConfig, name, priority))
}

func startKeepalivedConf(t *testing.T, ns *topo.NS, config string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return startProcess(t, ns, "keepalived", "--dont-fork", "--log-console", "--vrrp",
		"-f", conf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
}

func hasAddr(ns *topo.NS, dev, addr string) bool {
	out, _ := ns.Exec("ip", "addr", "show", "dev", dev)
	return strings.Contains(out, addr+"/")
}

// TestKeepalivedFailover: keepalived's VRRP moves the VIP and the real
// servers' gateway from one govsd director to the other; govsd's connection
// sync keeps an established LVS-NAT connection on its real server.
func TestKeepalivedFailover(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (Debian package keepalived; .ci/deps installs it)")
	}
	l := newSyncLabVia(t, "198.18.1.254")
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key := writeSyncKey(t)
	cfg := func(role string) string {
		return keepalivedGovsdConfig(role, key)
	}
	// Both directors run govsd all the time, as with keepalived in front
	// of IPVS; the sync role would follow VRRP through notify scripts.
	startGovsd(t, l.dirA, cfg("master"))
	backup := startGovsd(t, l.dirB, cfg("backup"))
	ka := startKeepalived(t, l.dirA, "dira", 150)
	startKeepalived(t, l.dirB, "dirb", 100)
	waitFor(t, 15*time.Second, "director A to become VRRP master", func() bool {
		return hasAddr(l.dirA, "d0", "198.18.0.100") && hasAddr(l.dirA, "d1", "198.18.1.254")
	})

	c, err := l.client.Dial("tcp", "198.18.0.100:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	first := keepAliveGet(t, rw)
	local := c.LocalAddr().String()
	waitFor(t, 3*time.Second, "the backup to learn the connection", func() bool {
		return strings.Contains(backup.admOK(t, "-L", "-n", "-c"), local)
	})

	// Director A's keepalived stops: VRRP hands both addresses to B.
	ka.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "director B to take the VIP and the gateway", func() bool {
		return hasAddr(l.dirB, "d0", "198.18.0.100") && hasAddr(l.dirB, "d1", "198.18.1.254")
	})
	before := backup.admOK(t, "--counters")
	for i := 0; i < 3; i++ {
		if got := keepAliveGet(t, rw); got != first {
			t.Fatalf("after the VRRP failover the connection reached %s, want %s", got, first)
		}
	}
	if after := backup.admOK(t, "--counters"); after == before {
		t.Errorf("director B's counters did not move: the traffic did not go through it")
	}
	t.Logf("connection %s stayed on %s across the keepalived failover", local, first)
}

// keepalivedTrackConfig is keepalivedConfig with govsd tracked, as the
// README shows: when the tracker fails, the instance goes to FAULT, gives up
// the addresses and tells the backup at once (priority 0), so the VIP
// follows a running govsd.
// keepalivedGovsdConfig is the directors' govsd configuration: a web
// service of two real servers, connection sync in role over d1.
func keepalivedGovsdConfig(role, key string) string {
	return testutil.Config{
		Director: []string{fmt.Sprintf("sync: {role: %s, interface: d1, group: 239.255.81.49, sync_id: 9, key_file: %s}", role, key)},
		Services: []testutil.Service{httpService("web", labVIP4, 80, 2)},
	}.YAML()
}

const keepalivedTrackConfig = `
global_defs {
  router_id %s
  script_user root
}
%s
vrrp_instance govs {
  state BACKUP
  interface d0
  virtual_router_id 51
  priority %d
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/32 dev d0
    198.18.1.254/24 dev d1
  }
  %s
}
`

// govsdTracker returns keepalived's definition of a govsd tracker and the
// instance's reference to it: a check that govsadm lists govsd's table
// (interval 1 s, fall 1). track_process cannot be tested here: it needs
// the kernel's process events, which only the initial network namespace
// gets (keepalived in a namespace logs "Failed to set/clear process event
// listen" and holds the instance in FAULT).
func govsdTracker(g *govsd) (def, use string) {
	return fmt.Sprintf("vrrp_script govsd {\n  script \"%s --socket %s -L -n\"\n  interval 1\n  timeout 2\n  fall 1\n  rise 2\n}", filepath.Join(binDir, "govsadm"), g.Socket),
		"track_script {\n    govsd\n  }"
}

// TestKeepalivedGovsdKilled: govsd on the VRRP master dies (SIGKILL), and
// keepalived, tracking it, moves the VIP and the gateway to the backup
// director within its advert timing. An idle keep-alive connection goes on
// on its real server through the backup (connection sync); a busy one that
// sends while the master's kernel still holds the VIP is reset by that
// kernel: the test logs what it saw and how long each step took.
func TestKeepalivedGovsdKilled(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (Debian package keepalived; .ci/deps installs it)")
	}
	l := newSyncLabVia(t, "198.18.1.254")
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key := writeSyncKey(t)
	cfg := keepalivedGovsdConfig("both", key)
	master := startGovsd(t, l.dirA, cfg)
	backup := startGovsd(t, l.dirB, cfg)
	for _, d := range []struct {
		ns       *topo.NS
		name     string
		g        *govsd
		priority int
	}{{l.dirA, "dira", master, 150}, {l.dirB, "dirb", backup, 100}} {
		def, use := govsdTracker(d.g)
		startKeepalivedConf(t, d.ns, fmt.Sprintf(keepalivedTrackConfig, d.name, def, d.priority, use))
	}
	onA := func() bool { return hasAddr(l.dirA, "d0", "198.18.0.100") && hasAddr(l.dirA, "d1", "198.18.1.254") }
	onB := func() bool { return hasAddr(l.dirB, "d0", "198.18.0.100") && hasAddr(l.dirB, "d1", "198.18.1.254") }
	waitFor(t, 15*time.Second, "director A to become VRRP master", onA)
	if onB() {
		t.Fatal("both directors hold the VIP")
	}

	dial := func() (net.Conn, *bufio.ReadWriter) {
		t.Helper()
		c, err := l.client.Dial("tcp", "198.18.0.100:80", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(60 * time.Second))
		return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	}
	idle, idleRW := dial()
	first := keepAliveGet(t, idleRW)
	busy, busyRW := dial()
	keepAliveGet(t, busyRW)
	waitFor(t, 3*time.Second, "the backup to learn both connections", func() bool {
		out := backup.admOK(t, "-L", "-n", "-c")
		return strings.Contains(out, idle.LocalAddr().String()) && strings.Contains(out, busy.LocalAddr().String())
	})

	// The busy connection sends a request every 50 ms through the
	// failover, and records how it ends.
	type outcome struct {
		ok     int
		err    error
		at     time.Time
		maxGap time.Duration // the longest wait for an answer
	}
	busyDone := make(chan outcome, 1)
	stopBusy := make(chan struct{})
	var busyOK atomic.Int64
	go func() {
		var o outcome
		for {
			select {
			case <-stopBusy:
				busyDone <- o
				return
			case <-time.After(50 * time.Millisecond):
			}
			sent := time.Now()
			busy.SetDeadline(sent.Add(5 * time.Second))
			if _, err := fmt.Fprintf(busyRW, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err == nil {
				err = busyRW.Flush()
			}
			if err := readResponse(busyRW); err != nil {
				o.err, o.at = err, time.Now()
				busyDone <- o
				return
			}
			o.ok++
			o.maxGap = max(o.maxGap, time.Since(sent))
			busyOK.Add(1)
		}
	}()
	waitFor(t, 3*time.Second, "the busy connection's first answers", func() bool { return busyOK.Load() >= 3 })

	// Kill govsd on the master: only the process this test started.
	pid := master.Cmd.Process.Pid
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "govsd" {
		t.Fatalf("pid %d is %q, not govsd", pid, comm)
	}
	killed := time.Now()
	master.stop(syscall.SIGKILL)
	var leftA, tookB time.Duration
	deadline := killed.Add(5 * time.Second) // script interval 1 s + 3 adverts of 1 s + skew, with margin
	for leftA == 0 || tookB == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after govsd was killed: VIP still on A %v, on B %v", onA(), onB())
		}
		if leftA == 0 && !hasAddr(l.dirA, "d0", "198.18.0.100") {
			leftA = time.Since(killed)
		}
		if tookB == 0 && onB() {
			tookB = time.Since(killed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("govsd on A killed: A gave up the VIP after %v, B held the VIP and gateway after %v",
		leftA.Round(time.Millisecond), tookB.Round(time.Millisecond))

	// The idle connection goes on, on the same real server, through B.
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	var again time.Duration
	for i := 0; i < 3; i++ {
		if got := keepAliveGet(t, idleRW); got != first {
			t.Fatalf("after the failover the idle connection reached %s, want %s", got, first)
		}
		if i == 0 {
			again = time.Since(killed)
		}
	}
	t.Logf("idle keep-alive connection %s stayed on %s (answered again %v after the kill)",
		idle.LocalAddr(), first, again.Round(time.Millisecond))
	// New connections work through B.
	c, err := l.client.Dial("tcp", "198.18.0.100:80", 3*time.Second)
	if err != nil {
		t.Fatalf("a new connection after the failover: %v", err)
	}
	c.Close()

	// Let the busy connection go on a while through B, unless it ended.
	n := busyOK.Load()
	for end := time.Now().Add(3 * time.Second); busyOK.Load() < n+5 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stopBusy)
	o := <-busyDone
	if o.err != nil {
		t.Logf("busy keep-alive connection: %d requests answered, then %v, %v after the kill (A's kernel answered while it held the VIP)",
			o.ok, o.err, o.at.Sub(killed).Round(time.Millisecond))
	} else {
		t.Logf("busy keep-alive connection: %d requests answered, none failed; the longest answer took %v",
			o.ok, o.maxGap.Round(time.Millisecond))
	}
}

// readResponse reads one HTTP response from a keep-alive connection.
func readResponse(rw *bufio.ReadWriter) error {
	length := 0
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			length, _ = strconv.Atoi(v)
		}
	}
	_, err := io.ReadFull(rw, make([]byte, length))
	return err
}
