package daemon

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/control"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/version"
)

func writeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sync.key")
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(p, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeUDPPort returns a UDP port nothing listens on now.
func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestSyncDaemonCommands: --start-daemon and --stop-daemon refuse what they
// cannot run with the right status, run each role once, list what runs and
// count what it does.
func TestSyncDaemonCommands(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	t.Cleanup(d.sync.stop)
	key := writeKey(t)
	worldKey := filepath.Join(t.TempDir(), "open.key")
	os.WriteFile(worldKey, make([]byte, 32), 0o644)
	refusals := []struct {
		name string
		sd   control.SyncDaemon
		want error
	}{
		{"no interface", control.SyncDaemon{Role: "master", KeyFile: key}, control.ErrInvalid},
		{"no key", control.SyncDaemon{Role: "master", Interface: "lo"}, control.ErrInvalid},
		{"unreadable key", control.SyncDaemon{Role: "master", Interface: "lo", KeyFile: filepath.Join(t.TempDir(), "none")}, control.ErrInvalid},
		{"key open to others", control.SyncDaemon{Role: "master", Interface: "lo", KeyFile: worldKey}, control.ErrInvalid},
		{"bad peer", control.SyncDaemon{Role: "master", Interface: "lo", KeyFile: key, Peers: []string{"198.18.0"}}, control.ErrInvalid},
		{"unicast group", control.SyncDaemon{Role: "master", Interface: "lo", KeyFile: key, Group: "198.18.0.1"}, control.ErrInvalid},
		{"bad role", control.SyncDaemon{Role: "both", Interface: "lo", KeyFile: key, Peers: []string{"127.0.0.1"}}, control.ErrInvalid},
	}
	for _, c := range refusals {
		if err := d.StartSyncDaemon(c.sd); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else if c.name == "unicast group" && !strings.Contains(err.Error(), "bad multicast group") {
			t.Errorf("%s: %v, want it refused as not a multicast group", c.name, err)
		}
	}
	if sds := d.SyncDaemons(); len(sds) != 0 {
		t.Errorf("refused daemons are listed: %+v", sds)
	}
	for _, role := range []string{"master", "backup"} {
		if err := d.StopSyncDaemon(role); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("stop of a %s not running: %v, want ErrNotFound", role, err)
		}
	}
	if err := d.StopSyncDaemon("both"); !errors.Is(err, control.ErrInvalid) {
		t.Errorf("stop of role both: %v, want ErrInvalid", err)
	}

	port := freeUDPPort(t)
	master := control.SyncDaemon{Role: "master", Interface: "lo", Peers: []string{"127.0.0.1"}, Port: port, SyncID: 7, KeyFile: key}
	if err := d.StartSyncDaemon(master); err != nil {
		if !testutil.IsRoot() && strings.Contains(err.Error(), "permitted") {
			t.Skipf("sync sockets need privileges here: %v", err)
		}
		t.Fatal(err)
	}
	if err := d.StartSyncDaemon(master); !errors.Is(err, control.ErrExists) {
		t.Errorf("a second master: %v, want ErrExists", err)
	}
	backup := master
	backup.Role, backup.Port, backup.KeyFile = "backup", freeUDPPort(t), ""
	d.cfg.Director.Sync = &config.Sync{KeyFile: key} // the default key file
	if err := d.StartSyncDaemon(backup); err != nil {
		t.Fatal(err)
	}
	backup.KeyFile = key
	got := d.SyncDaemons()
	if len(got) != 2 || got[0].Role != "master" || got[1].Role != "backup" || got[0].Port != port || got[0].SyncID != 7 ||
		got[1].Port != backup.Port || got[1].KeyFile != key || len(got[0].Peers) != 1 || got[0].Peers[0] != "127.0.0.1" {
		t.Errorf("sync daemons %+v", got)
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sync_sent_messages", "sync_sent_entries", "sync_send_errors", "sync_send_dropped", "sync_received_messages", "sync_received_entries"} {
		if _, ok := c.DataPath[k]; !ok {
			t.Errorf("counter %s missing while both parts run", k)
		}
	}
	m := daemonMetrics(t, d)
	for _, k := range []string{`govs_sync_messages_total{role="master"}`, `govs_sync_entries_total{role="master"}`,
		`govs_sync_send_errors_total`, `govs_sync_dropped_entries_total{stage="sender"}`,
		`govs_sync_messages_total{role="backup"}`, `govs_sync_entries_total{role="backup"}`,
		`govs_sync_rejected_messages_total{reason="bad_mac"}`} {
		if _, ok := m[k]; !ok {
			t.Errorf("metric %s missing while both parts run", k)
		}
	}
	if m[`govs_sync_running{role="master"}`] != 1 || m[`govs_sync_running{role="backup"}`] != 1 {
		t.Errorf("govs_sync_running while both parts run: %v", m)
	}
	for _, role := range []string{"master", "backup"} {
		if err := d.StopSyncDaemon(role); err != nil {
			t.Errorf("stop %s: %v", role, err)
		}
	}
	if sds := d.SyncDaemons(); len(sds) != 0 {
		t.Errorf("stopped daemons are listed: %+v", sds)
	}
	m = daemonMetrics(t, d)
	if _, ok := m[`govs_sync_messages_total{role="master"}`]; ok || m[`govs_sync_running{role="master"}`] != 0 || m[`govs_sync_running{role="backup"}`] != 0 {
		t.Errorf("sync metrics after both parts stopped: %v", m)
	}
	// director.sync with role both starts both parts.
	if err := d.startSync(&config.Sync{Role: config.SyncBoth, Interface: "lo", Peers: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Port: freeUDPPort(t), KeyFile: key}); err != nil {
		t.Fatal(err)
	}
	if sds := d.SyncDaemons(); len(sds) != 2 {
		t.Errorf("director.sync role both: %+v", sds)
	}
	d.sync.stop()
	if sds := d.SyncDaemons(); len(sds) != 0 {
		t.Errorf("after stop: %+v", sds)
	}
}

// TestRouteHealthInjection: a VIP is announced while one of its services has
// a healthy real server in service, withdrawn when none has (a sorry server
// does not count) and when its services are gone.
func TestRouteHealthInjection(t *testing.T) {
	d, _ := newTestDaemon(t, healthConfigFor("quiesce", true))
	withHealth(t, d)
	// A peer that never answers: the speaker's RIB is what is checked.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := d.startBGP(&config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("198.18.0.254"),
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65000, Port: uint16(port)}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stopBGP)
	announced := func() string {
		var s []string
		for _, p := range d.bgp.Announced() {
			s = append(s, p.String())
		}
		return strings.Join(s, " ")
	}
	d.mu.Lock()
	d.syncRoutes()
	d.mu.Unlock()
	if got := announced(); got != "198.18.0.100/32" {
		t.Fatalf("announced %q at start", got)
	}
	// The peer never answers: its session is not up.
	m := daemonMetrics(t, d)
	if m[`govs_bgp_announced_routes`] != 1 {
		t.Errorf("govs_bgp_announced_routes %v, want 1", m[`govs_bgp_announced_routes`])
	}
	peers := 0
	for k, v := range m {
		if strings.HasPrefix(k, `govs_bgp_session_up{peer="127.0.0.1",state="`) {
			peers++
			if v != 0 || strings.Contains(k, `"established"`) {
				t.Errorf("%s = %v with a peer that never answers", k, v)
			}
		}
	}
	if peers != 1 {
		t.Errorf("%d govs_bgp_session_up series for the one peer: %v", peers, m)
	}
	transition(d, "198.18.1.1:8080", false)
	transition(d, "198.18.1.2:8080", false)
	if got := announced(); got != "198.18.0.100/32" {
		t.Errorf("announced %q with the unchecked server up", got)
	}
	if err := d.DeleteDest(d.services[0].key(), "198.18.1.3", 8080); err != nil {
		t.Fatal(err)
	}
	if got := announced(); got != "" {
		t.Errorf("announced %q with only the sorry server", got)
	}
	transition(d, "198.18.1.2:8080", true)
	if got := announced(); got != "198.18.0.100/32" {
		t.Errorf("announced %q after recovery", got)
	}
	// Servers quiesced by govsadm (weight 0) do not keep the route up.
	zero := 0
	for _, s := range []string{"198.18.1.1", "198.18.1.2"} {
		if err := d.EditDest(control.DestSpec{Service: d.services[0].key(), Address: s, Port: 8080, Weight: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	if got := announced(); got != "" {
		t.Errorf("announced %q with every healthy server quiesced", got)
	}
	one := 1
	if err := d.EditDest(control.DestSpec{Service: d.services[0].key(), Address: "198.18.1.2", Port: 8080, Weight: &one}); err != nil {
		t.Fatal(err)
	}
	if got := announced(); got != "198.18.0.100/32" {
		t.Errorf("announced %q after weight 1 again", got)
	}
	if err := d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.105", Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if got := announced(); got != "198.18.0.100/32" {
		t.Errorf("announced %q: a service without real servers announced", got)
	}
	if err := d.Clear(); err != nil {
		t.Fatal(err)
	}
	if got := announced(); got != "" {
		t.Errorf("announced %q after -C", got)
	}
}

func healthConfigFor(onFailure string, sorry bool) string {
	cfg := strings.Replace(healthConfig, "@ONFAILURE@", onFailure, 1)
	if !sorry {
		cfg = strings.Replace(cfg, "    sorry_server: {address: 198.18.1.200, port: 8080}\n", "", 1)
	}
	return cfg
}

// TestMetricsEndpoint: /metrics serves the collector over HTTP, and a bad
// metrics_listen is refused.
func TestMetricsEndpoint(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	d.dp = countingDataPath()
	srv := httptest.NewServer(newMetricsHandler(d))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`govs_datapath_tx_errors_total 105`, `govs_config_reloads_total{result="ok"} 0`,
		`govs_real_server_inactive_conns{server="198.18.1.1:8080",service="web"} 2`,
		`govs_real_server_up{server="198.18.1.1:8080",service="web"} 1`,
		`govs_build_info{goversion="` + version.Go() + `",version="` + version.String() + `"} 1`,
		"go_goroutines ", "process_cpu_seconds_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// MetricNames (what dashboards are checked against) names every
	// family served.
	names := map[string]bool{}
	for _, n := range MetricNames() {
		names[n] = true
	}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && !names[f[2]] {
			t.Errorf("/metrics serves %s, MetricNames does not list it", f[2])
		}
	}
	if _, err := d.serveMetrics("198.18.0.1:notaport"); err == nil {
		t.Error("a bad metrics_listen was accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := d.serveMetrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			break
		}
		if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPersistentListing: -L shows persistence as ipvsadm does.
func TestPersistentListing(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	if err := d.EditService(control.ServiceSpec{ServiceKey: web(), Scheduler: "rr", Persistent: 30, Netmask: "/16"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "2001:db8::1", Port: 443}, Persistent: 60, Netmask: "64"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddLocalAddr(control.LocalAddr{Service: web(), Address: "198.18.2.1"}); err != nil {
		t.Fatal(err)
	}
	ls := d.Services()
	if ls[0].Persistent != 30 || ls[0].Netmask != "255.255.0.0" || strings.Join(ls[0].LocalAddresses, ",") != "198.18.2.1" {
		t.Errorf("web %+v", ls[0])
	}
	if ls[1].Persistent != 0 || ls[1].Netmask != "" || ls[1].Protocol != "UDP" {
		t.Errorf("dns %+v", ls[1])
	}
	if v6 := ls[3]; v6.Persistent != 60 || v6.Netmask != "64" || v6.Name != "tcp-[2001:db8::1]:443" {
		t.Errorf("v6 %+v", v6)
	}
}

// TestManagedVIPsMissingInterface: with no interface to put a VIP on,
// syncing the managed VIPs is refused.
func TestManagedVIPsMissingInterface(t *testing.T) {
	// The frames themselves are tested in internal/neighbor.
	vip := netip.MustParseAddr("2001:db8::100")
	// With no interface to put a VIP on, syncing is refused.
	m2 := newManagedVIPs(quietLog())
	if err := m2.sync([]netip.Addr{vip}, []string{"govs-no-such-if" + strconv.Itoa(os.Getpid()%1000)}); err == nil {
		t.Error("a VIP was put on a missing interface")
	}
}
