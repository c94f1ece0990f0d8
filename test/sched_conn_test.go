package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/control"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

var schedConfig = func() string {
	weighted := httpService("weighted", labVIP4, 80, 2)
	weighted.Scheduler = "wrr"
	weighted.Reals[0].Weight, weighted.Reals[1].Weight = 3, 1
	hashed := httpService("hashed", labVIP4, 81, 3)
	hashed.Scheduler = "sh"
	sticky := httpService("sticky", labVIP4, 82, 3)
	sticky.Settings = []string{"persistence: {timeout: 60s, netmask: 255.255.255.0}"}
	return testutil.Config{
		Director: []string{"timeouts: {tcp: 3s, tcpfin: 2s, udp: 5s}"},
		Services: []testutil.Service{weighted, hashed, sticky},
	}.YAML()
}()

// spread sends n requests to url and counts the answering servers.
func spread(t *testing.T, lab *topo.Lab, url string, n int) map[string]int {
	t.Helper()
	client := topo.HTTPClient(lab.Client, 3*time.Second)
	hits := map[string]int{}
	for i := 0; i < n; i++ {
		body, err := getRetry(context.Background(), client, url)
		if err != nil {
			t.Fatalf("GET %s #%d: %v", url, i, err)
		}
		hits[strings.Fields(body)[0]]++
	}
	return hits
}

func TestSchedulersAndConnections(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "sch", topo.LabOptions{RealServers: 3})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	stop, err := lab.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	g := startGovsd(t, lab.Director, schedConfig)

	t.Run("wrr 3:1", func(t *testing.T) {
		hits := spread(t, lab, "http://198.18.0.100:80/", 80)
		// IPVS's wrr sequence for 3,1 is A A A B: exactly 3:1 over whole rounds.
		if hits["rs1"] != 60 || hits["rs2"] != 20 || hits["rs3"] != 0 {
			t.Errorf("wrr 3:1 over 80 flows gave %v, want rs1=60 rs2=20", hits)
		}
	})
	t.Run("sh keeps a client on one server", func(t *testing.T) {
		if hits := spread(t, lab, "http://198.18.0.100:81/", 20); len(hits) != 1 {
			t.Errorf("sh sent one client's 20 connections to %v, want a single server", hits)
		}
	})
	t.Run("persistence", func(t *testing.T) {
		if hits := spread(t, lab, "http://198.18.0.100:82/", 20); len(hits) != 1 {
			t.Errorf("persistent rr sent one client's 20 connections to %v, want a single server", hits)
		}
		out, err := g.adm("-L", "-n", "-c", "--persistent-conn")
		if err != nil {
			t.Fatalf("listing: %v\n%s", err, out)
		}
		tmpls, err := control.NewClient(g.Socket).Connections(true)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range tmpls {
			if c.Template && c.Virtual == "198.18.0.100:82" && c.Source == "198.18.0.0:0" {
				found = true
			}
		}
		if !found {
			t.Errorf("no persistence template for 198.18.0.0/24 -> 198.18.0.100:82 in %+v", tmpls)
		}
	})
	t.Run("states and idle timeout", func(t *testing.T) {
		// An open, idle connection is ESTABLISHED in the listing...
		c, err := lab.Client.Dial("tcp", "198.18.0.100:80", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		local := c.LocalAddr().String()
		listed := func() string {
			out, err := g.adm("-L", "-n", "-c")
			if err != nil {
				t.Fatalf("govsadm -Lnc: %v\n%s", err, out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, local) {
					return line
				}
			}
			return ""
		}
		line := listed()
		if !strings.Contains(line, "ESTABLISHED") || !strings.Contains(line, "198.18.0.100:80") {
			t.Fatalf("open connection %s listed as %q, want ESTABLISHED", local, line)
		}
		// ...and gone once idle past the 3 s tcp timeout.
		deadline := time.Now().Add(8 * time.Second)
		for listed() != "" {
			if time.Now().After(deadline) {
				t.Fatalf("idle connection still listed 8 s after it went quiet (tcp timeout 3 s): %q", listed())
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}
