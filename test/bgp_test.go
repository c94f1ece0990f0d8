package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestRouteHealthInjection: a gobgpd router (in the client's namespace)
// peers with govsd, learns the VIP /32 while the service has a healthy real
// server, and loses it once every real server fails.
func TestRouteHealthInjection(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"gobgpd", "gobgp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package gobgpd; .ci/deps installs it)", tool)
		}
	}
	lab := newLab(t, "bgp", topo.LabOptions{RealServers: 2})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	stops := []func(){}
	for i := range lab.Reals {
		s, err := lab.ServeHTTPOn(i, 8080)
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, s)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "gobgpd.toml")
	sock := filepath.Join(dir, "gobgpd.sock")
	if err := os.WriteFile(conf, []byte(`[global.config]
  as = 65000
  router-id = "198.18.0.1"
  port = 179
  local-address-list = ["198.18.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.18.0.254"
    peer-as = 65001
`), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, lab.Client, "gobgpd", "-f", conf, "-p", "--api-hosts", "unix://"+sock, "--pprof-disable")
	rib := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, "gobgp", "--target", "unix://"+sock, "global", "rib", "-a", "ipv4").CombinedOutput()
		return string(out)
	}
	g := startGovsd(t, lab.Director, testutil.Config{
		Director: []string{`bgp: {asn: 65001, router_id: 198.18.0.254, peers: [{address: 198.18.0.1, asn: 65000}], communities: ["65001:100"]}`},
		Services: []testutil.Service{{Name: "web", VIP: labVIP4, Port: 80, Scheduler: "mh",
			Settings: []string{"health_check: {type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 2}"},
			Reals:    testutil.Reals(8080, testutil.LabReals4(2)...)}},
	}.YAML())
	// GoBGP's first connection attempt comes a few seconds after start.
	waitFor(t, 30*time.Second, "the router to learn the VIP route", func() bool {
		return strings.Contains(rib(), "198.18.0.100/32")
	})
	if r := rib(); !strings.Contains(r, "198.18.0.254") {
		t.Errorf("VIP route without govsd's next hop:\n%s", r)
	}
	spread(t, lab, "http://198.18.0.100/", 4)

	for _, s := range stops {
		s()
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "the router to lose the VIP route", func() bool {
		return !strings.Contains(rib(), "198.18.0.100/32")
	})
	t.Logf("route withdrawn %v after every real server failed", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(g.Logs(), "vip route withdrawn") {
		t.Errorf("govsd did not log the withdrawal:\n%s", g.Logs())
	}
}
