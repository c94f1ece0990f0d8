package test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// weightOf returns the weight govsadm -L -n shows for a real server, or -1
// when it is not listed.
func weightOf(t *testing.T, g *govsd, server string) int {
	t.Helper()
	out := g.admOK(t, "-L", "-n")
	m := regexp.MustCompile(`-> ` + regexp.QuoteMeta(server) + `\s+\S+\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	w := 0
	for _, c := range m[1] {
		w = w*10 + int(c-'0')
	}
	return w
}

func TestHealthChecks(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "hc", topo.LabOptions{RealServers: 4})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	stops := make([]func(), 4)
	for i := range stops {
		s, err := lab.ServeHTTPOn(i, 8080)
		if err != nil {
			t.Fatal(err)
		}
		stops[i] = s
	}
	t.Cleanup(func() {
		for _, s := range stops {
			if s != nil {
				s()
			}
		}
	})
	// interval 500ms, timeout 300ms, fall 2, rise 2: down within
	// fall*interval+timeout = 1.3 s, up within rise*interval = 1 s.
	web := httpService("web", labVIP4, 80, 3)
	web.Reals[0].Weight = 2
	web.Settings = []string{
		"health_check: {type: http, interval: 500ms, timeout: 300ms, rise: 2, fall: 2, http: {path: /, expect_status: [200]}}",
		"on_failure: quiesce",
		"sorry_server: {address: 198.18.1.4, port: 8080}",
	}
	g := startGovsd(t, lab.Director, testutil.Config{
		Director: []string{"metrics_listen: 127.0.0.1:9469"},
		Services: []testutil.Service{web},
	}.YAML())
	client := topo.HTTPClient(lab.Client, 2*time.Second)
	get := func() (string, error) {
		body, err := topo.Get(context.Background(), client, "http://198.18.0.100/")
		if err != nil {
			return "", err
		}
		return strings.Fields(body)[0], nil
	}

	// rs1 fails: quiesced within fall*interval+timeout, then no request fails.
	stops[0]()
	stops[0] = nil
	start := time.Now()
	waitFor(t, 1300*time.Millisecond+time.Second, "rs1 quiesced", func() bool { return weightOf(t, g, "198.18.1.1:8080") == 0 })
	t.Logf("rs1 quiesced %v after its server stopped", time.Since(start).Round(10*time.Millisecond))
	for i := 0; i < 20; i++ {
		rs, err := get()
		if err != nil || rs == "rs1" {
			t.Fatalf("request %d after rs1 was quiesced: %q, %v", i, rs, err)
		}
	}
	if !regexp.MustCompile(`real server down.*198\.18\.1\.1:8080.*reason=`).MatchString(g.Logs()) {
		t.Errorf("no log line for rs1 going down with its reason:\n%s", g.Logs())
	}

	// rs1 recovers: back with its configured weight within rise*interval.
	s, err := lab.ServeHTTPOn(0, 8080)
	if err != nil {
		t.Fatal(err)
	}
	stops[0] = s
	start = time.Now()
	waitFor(t, time.Second+time.Second, "rs1 restored", func() bool { return weightOf(t, g, "198.18.1.1:8080") == 2 })
	t.Logf("rs1 restored with weight 2 %v after its server came back", time.Since(start).Round(10*time.Millisecond))
	if hits := spread(t, lab, "http://198.18.0.100/", 8); hits["rs1"] == 0 {
		t.Errorf("rs1 takes no traffic after recovering: %v", hits)
	}

	// Every real server down: the sorry server answers.
	for i := 0; i < 3; i++ {
		stops[i]()
		stops[i] = nil
	}
	waitFor(t, 3*time.Second, "the sorry server", func() bool { return weightOf(t, g, "198.18.1.4:8080") == 1 })
	for i := 0; i < 5; i++ {
		if rs, err := get(); err != nil || rs != "rs4" {
			t.Fatalf("with every server down, request %d got %q, %v; want the sorry server rs4", i, rs, err)
		}
	}
	if v := metric(t, lab, `govs_real_server_up\{server="198\.18\.1\.2:8080",service="web"\}`); v != 0 {
		t.Errorf("govs_real_server_up for a down server = %v", v)
	}
}

// TestCheckViaVIP: a DR real server that lacks the VIP on its loopback
// answers on its own address but drops clients' packets; only a check sent
// to the VIP, the way clients' packets reach it, finds that out.
func TestCheckViaVIP(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "cvv", topo.LabOptions{RealServers: 3})
	if err := lab.RealServerVIPs(mustAddr("198.18.2.100")); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Reals[0].Exec("ip", "addr", "del", "198.18.2.100/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	stop, err := lab.ServeHTTP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	g := startGovsd(t, lab.Director, testutil.Config{Services: []testutil.Service{{
		Name: "dr", VIP: "198.18.2.100", Port: 80, Forward: "dr",
		Settings: []string{"check_via_vip: true", "health_check: {type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 2}"},
		Reals:    testutil.Reals(80, testutil.LabReals4(3)...),
	}}}.YAML())
	// on_failure defaults to remove (keepalived's default): a failed
	// server leaves the listing.
	waitFor(t, 3*time.Second, "rs1 (no VIP on lo) to be found down and removed", func() bool { return weightOf(t, g, "198.18.1.1:80") == -1 })
	time.Sleep(time.Second)
	if weightOf(t, g, "198.18.1.2:80") != 1 || weightOf(t, g, "198.18.1.3:80") != 1 {
		t.Fatalf("healthy servers were taken out:\n%s", g.admOK(t, "-L", "-n"))
	}
	if hits := spread(t, lab, "http://198.18.2.100/", 10); hits["rs1"] != 0 || len(hits) != 2 {
		t.Errorf("traffic %v, want rs2 and rs3 only", hits)
	}
}
