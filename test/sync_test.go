package test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// syncLab: a client and two directors on one LAN, the directors and two
// real servers on another; the VIP is routed by the client to the active
// director (as a router would, after VRRP or BGP moved it).
//
//	client ── lan ── dirA, dirB ── rsnet ── rs1, rs2
type syncLab struct {
	*topo.Topology
	client, dirA, dirB *topo.NS
	reals              []*topo.NS
}

func newSyncLab(t *testing.T) *syncLab { return newSyncLabVia(t, "198.18.1.11") }

// newSyncLabVia builds the lab with the real servers' default route via gw.
func newSyncLabVia(t *testing.T, gw string) *syncLab {
	t.Helper()
	l := &syncLab{Topology: topo.New(prefix("sy"))}
	t.Cleanup(func() { l.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ns := func(name string) *topo.NS {
		n, err := l.AddNS(name)
		must(err)
		return n
	}
	l.client, l.dirA, l.dirB = ns("client"), ns("dira"), ns("dirb")
	lan, rsnet := ns("lan"), ns("rsnet")
	for _, br := range []*topo.NS{lan, rsnet} {
		must(br.MustExec([]string{"ip", "link", "add", "br0", "type", "bridge"}, []string{"ip", "link", "set", "br0", "up"}))
	}
	port := 0
	attach := func(n *topo.NS, dev string, br *topo.NS, addr string) {
		port++
		p := fmt.Sprintf("p%d", port)
		must(topo.Veth(n, dev, br, p))
		must(br.MustExec([]string{"ip", "link", "set", p, "master", "br0"}))
		must(n.MustExec([]string{"ip", "addr", "add", addr, "dev", dev}))
	}
	attach(l.client, "c0", lan, "198.18.0.1/24")
	attach(l.dirA, "d0", lan, "198.18.0.11/24")
	attach(l.dirB, "d0", lan, "198.18.0.12/24")
	attach(l.dirA, "d1", rsnet, "198.18.1.11/24")
	attach(l.dirB, "d1", rsnet, "198.18.1.12/24")
	must(l.client.MustExec([]string{"ip", "route", "add", "198.18.2.100/32", "via", "198.18.0.11"}))
	for _, d := range []*topo.NS{l.dirA, l.dirB} {
		must(d.MustExec(
			[]string{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.d1.rp_filter=0"},
		))
	}
	for i := 1; i <= 2; i++ {
		rs := ns(fmt.Sprintf("rs%d", i))
		attach(rs, "r0", rsnet, fmt.Sprintf("198.18.1.%d/24", i))
		must(rs.MustExec(
			[]string{"ip", "route", "add", "default", "via", gw},
			[]string{"ip", "addr", "add", "198.18.2.100/32", "dev", "lo"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"},
			[]string{"sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"},
		))
		l.reals = append(l.reals, rs)
	}
	return l
}

// syncConfig is the directors' configuration: a DR service of both real
// servers, and the director's sync setting sync ("" for none).
func syncConfig(sync string) testutil.Config {
	cfg := testutil.Config{Services: []testutil.Service{{Name: "dr", VIP: "198.18.2.100", Port: 80, Forward: "dr",
		Reals: testutil.Reals(80, testutil.LabReals4(2)...)}}}
	if sync != "" {
		cfg.Director = []string{"sync: " + sync}
	}
	return cfg
}

// TestSyncFailover: a long-lived TCP connection through the master goes on
// through the backup after the traffic moves there, because the backup
// learned the connection from the master's sync messages.
func TestSyncFailover(t *testing.T) {
	needRoot(t)
	l := newSyncLab(t)
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key := writeSyncKey(t)
	// Unicast sync: the master sends to the backup's address only.
	master := startGovsd(t, l.dirA, syncConfig("{role: master, interface: d1, peers: [198.18.1.12], sync_id: 7, key_file: "+key+"}").YAML())
	// The backup starts without sync and gets it at run time, as with
	// ipvsadm --start-daemon, accepting the master only (--sync-peer).
	backup := startGovsd(t, l.dirB, syncConfig("").YAML())
	backup.admOK(t, "--start-daemon", "backup", "--mcast-interface", "d1", "--syncid", "7", "--sync-key", key, "--sync-peer", "198.18.1.11")
	if out := backup.admOK(t, "-L", "--daemon"); out != "backup sync daemon (ucast=d1, syncid=7, peers=198.18.1.11, port=8849)\n  received 0 messages, 0 entries; 0 rejected\n" {
		t.Errorf("-L --daemon on the backup: %q", out)
	}

	c, err := l.client.Dial("tcp", "198.18.2.100:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	first := keepAliveGet(t, rw)
	local := c.LocalAddr().String()
	waitFor(t, 3*time.Second, "the backup to learn the connection", func() bool {
		return strings.Contains(backup.admOK(t, "-L", "-n", "-c"), local)
	})
	// Both listings show the unicast peer and what went between them.
	mOut, bOut := master.admOK(t, "-L", "--daemon"), backup.admOK(t, "-L", "--daemon")
	t.Logf("-L --daemon on the master:\n%son the backup:\n%s", mOut, bOut)
	if !strings.HasPrefix(mOut, "master sync daemon (ucast=d1, syncid=7, peers=198.18.1.12, port=8849)\n") {
		t.Errorf("-L --daemon on the master: %q", mOut)
	}
	var sent, sentEntries, errs, dropped, recv, recvEntries, rejected uint64
	if _, err := fmt.Sscanf(strings.SplitN(mOut, "\n", 2)[1], "  sent %d messages, %d entries; %d send errors, %d entries dropped", &sent, &sentEntries, &errs, &dropped); err != nil || sent == 0 || sentEntries == 0 {
		t.Errorf("master's counters (%v): %q", err, mOut)
	}
	if _, err := fmt.Sscanf(strings.SplitN(bOut, "\n", 2)[1], "  received %d messages, %d entries; %d rejected", &recv, &recvEntries, &rejected); err != nil || recv == 0 || recvEntries == 0 || rejected != 0 {
		t.Errorf("backup's counters (%v): %q", err, bOut)
	}

	// Failover: the master stops, the VIP's route moves to the backup.
	master.stop(syscall.SIGTERM)
	if _, err := l.client.Exec("ip", "route", "replace", "198.18.2.100/32", "via", "198.18.0.12"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got := keepAliveGet(t, rw); got != first {
			t.Fatalf("after failover the connection reached %s, want %s", got, first)
		}
	}
	out := backup.admOK(t, "--counters")
	if !strings.Contains(out, "sync_installed") {
		t.Errorf("backup counters lack sync_installed:\n%s", out)
	}
	t.Logf("connection %s kept %s across the failover", local, first)
}

// TestMaglevSameOnEveryDirector: two independently started directors with
// the same configuration pick the same real server for every flow, so a
// flow that ECMP moves from one director to the other keeps its server
// without any sync.
func TestMaglevSameOnEveryDirector(t *testing.T) {
	needRoot(t)
	l := newSyncLab(t)
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mh := syncConfig("")
	mh.Services[0].Scheduler, mh.Services[0].Settings = "mh", []string{"scheduler_flags: [mh-port]"}
	cfg := mh.YAML()
	startGovsd(t, l.dirA, cfg)
	startGovsd(t, l.dirB, cfg)
	// The same 30 flows (fixed source ports) through each director.
	pick := func() map[int]string {
		out := map[int]string{}
		for port := 41000; port < 41030; port++ {
			var body string
			err := l.client.Do(func() error {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: port}, Timeout: 2 * time.Second}
				c, err := d.Dial("tcp", "198.18.2.100:80")
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				body = keepAliveGet(t, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)))
				// Close from the server side first would leave our port
				// in TIME_WAIT; SO_LINGER 0 frees it for the second round.
				c.(*net.TCPConn).SetLinger(0)
				return nil
			})
			if err != nil {
				t.Fatalf("flow from port %d: %v", port, err)
			}
			out[port] = body
		}
		return out
	}
	viaA := pick()
	if _, err := l.client.Exec("ip", "route", "replace", "198.18.2.100/32", "via", "198.18.0.12"); err != nil {
		t.Fatal(err)
	}
	viaB := pick()
	used := map[string]bool{}
	for port, rs := range viaA {
		used[rs] = true
		if viaB[port] != rs {
			t.Errorf("flow from port %d: director A chose %s, director B %s", port, rs, viaB[port])
		}
	}
	if len(used) < 2 {
		t.Errorf("30 flows all went to %v: the test proves nothing", used)
	}
}
