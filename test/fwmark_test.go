package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// fwmarkConfig: fwmark 1 (IPv4) and 3 (IPv6) group ports 80 and 8443 of a
// VIP into one persistent rr service whose real servers have port 0 (each
// connection keeps its port); the marks section defines fwmark 2 for
// govsadm -A -f 2.
var fwmarkConfig = testutil.Config{Extra: `marks:
  - fwmark: 2
    addresses: [198.18.0.101]
    ports: [80, 8443]
services:
  - name: web
    fwmark: 1
    scheduler: rr
    forward: nat
    persistence: {timeout: 300s}
    match: {addresses: [198.18.0.100], ports: [80, 8443], protocols: [tcp]}
    real_servers:
      - {address: 198.18.1.1}
      - {address: 198.18.1.2}
  - name: web6
    fwmark: 3
    scheduler: rr
    forward: nat
    persistence: {timeout: 300s}
    match: {addresses: ["2001:db8::100/128"], ports: [80, 8443]}
    real_servers:
      - {address: "2001:db8:1::1"}
      - {address: "2001:db8:1::2"}
`}.YAML()

// TestFwmark: an fwmark service over two ports with persistence, defined in
// the YAML and made with govsadm (-A -f / -a -f) on a running govsd: a
// client's connections to both ports land on one real server, and the
// listings are ipvsadm's.
func TestFwmark(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "fwm", topo.LabOptions{RealServers: 2})
	for _, vip := range []string{"198.18.0.100", "198.18.0.101", "2001:db8::100"} {
		if err := lab.AddVIP(mustAddr(vip)); err != nil {
			t.Fatal(err)
		}
	}
	for _, port := range []int{80, 8443} {
		stop, err := lab.ServeHTTP(port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	g := startGovsd(t, lab.Director, fwmarkConfig)
	client := topo.HTTPClient(lab.Client, 3*time.Second)

	// sticky sends 8 requests, alternating the ports, to host and wants one
	// real server for all (rr without persistence would alternate).
	sticky := func(t *testing.T, host, clientAddr string) string {
		t.Helper()
		first := ""
		for i := 0; i < 8; i++ {
			port := []int{80, 8443}[i%2]
			url := fmt.Sprintf("http://%s:%d/", host, port)
			body, err := getRetry(context.Background(), client, url)
			if err != nil {
				t.Fatalf("request %d to %s: %v\n%s", i, url, err, g.Logs())
			}
			f := strings.Fields(body)
			if len(f) != 2 || f[1] != clientAddr {
				t.Fatalf("request %d to %s: body %q: want the real server's name and the client's address", i, url, body)
			}
			if first == "" {
				first = f[0]
			} else if f[0] != first {
				t.Fatalf("request %d to %s went to %s, the first to %s: persistence does not cover the mark's ports", i, url, f[0], first)
			}
		}
		return first
	}

	t.Run("yaml", func(t *testing.T) {
		sticky(t, "198.18.0.100", "198.18.0.1")
		sticky(t, "[2001:db8::100]", "2001:db8::1")
		out, err := g.adm("-L", "-n")
		if err != nil {
			t.Fatalf("govsadm -L -n: %v\n%s", err, out)
		}
		for _, want := range []string{"FWM  1 rr persistent 300\n", "  -> 198.18.1.1:0                 Masq    1 ",
			"FWM  3 IPv6 rr persistent 300\n", "  -> [2001:db8:1::1]:0"} {
			if !strings.Contains(out, want) {
				t.Errorf("govsadm -L -n lacks %q:\n%s", want, out)
			}
		}
		out, _ = g.adm("-Lnc")
		if !strings.Contains(out, "198.18.0.100:80") || !strings.Contains(out, "198.18.0.100:8443") {
			t.Errorf("govsadm -Lnc lacks connections to both ports:\n%s", out)
		}
	})

	t.Run("govsadm", func(t *testing.T) {
		for _, args := range [][]string{
			{"-A", "-f", "2", "-s", "rr", "-p", "300"},
			{"-a", "-f", "2", "-r", "198.18.1.1", "-m"},
			{"-a", "-f", "2", "-r", "198.18.1.2", "-m"},
		} {
			if out, err := g.adm(args...); err != nil {
				t.Fatalf("govsadm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		sticky(t, "198.18.0.101", "198.18.0.1")
		out, err := g.adm("-L", "-n", "-f", "2")
		if err != nil || !strings.Contains(out, "FWM  2 rr persistent 300\n") || !strings.Contains(out, "-> 198.18.1.2:0") {
			t.Errorf("govsadm -L -n -f 2: %v\n%s", err, out)
		}
		out, err = g.adm("-S", "-n")
		if err != nil || !strings.Contains(out, "-A -f 2 -s rr -p 300\n-a -f 2 -r 198.18.1.1:0 -m -w 1\n") {
			t.Errorf("govsadm -S -n: %v\n%s", err, out)
		}
		// A mark the YAML does not define matches nothing: refused.
		out, err = g.adm("-A", "-f", "9", "-s", "rr")
		if err == nil || !strings.Contains(out, "fwmark 9 has no match") {
			t.Errorf("govsadm -A -f 9: %v, want a refusal naming the missing match:\n%s", err, out)
		}
		if out, err := g.adm("-D", "-f", "2"); err != nil {
			t.Fatalf("govsadm -D -f 2: %v\n%s", err, out)
		}
		if _, err := topo.Get(context.Background(), topo.HTTPClient(lab.Client, time.Second), "http://198.18.0.101:8443/"); err == nil {
			t.Errorf("fwmark 2 still served after -D -f 2")
		}
	})
}
