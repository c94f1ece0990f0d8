package test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

var natConfig = testutil.Config{
	Director: []string{"xdp_mode: auto", "metrics_listen: 127.0.0.1:9469"},
	Services: []testutil.Service{
		withForward(httpService("web", labVIP4, 80, 3), "nat"), echoService("echo", labVIP4, 53, 3),
		httpService("web6", labVIP6, 80, 3), echoService("echo6", labVIP6, 53, 3),
	},
}.YAML()

// TestNAT is the foundation's proof: HTTP and UDP through a LVS-NAT VIP with
// real clients and servers, the director's own traffic untouched, and no XDP
// program left behind when govsd stops.
func TestNAT(t *testing.T) {
	needRoot(t)
	lab := newServingLab(t, "nat", topo.LabOptions{RealServers: 3}, "198.18.0.100", "2001:db8::100")
	// The director's own service, reached without the load balancer.
	own, err := lab.Director.Listen("tcp", "198.18.0.254:2222")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	go func() {
		for {
			c, err := own.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("director\n"))
			c.Close()
		}
	}()

	g := startGovsd(t, lab.Director, natConfig)
	client := topo.HTTPClient(lab.Client, 3*time.Second)
	ctx := context.Background()

	t.Run("http", func(t *testing.T) {
		hits := map[string]int{}
		const n = 30
		for i := 0; i < n; i++ {
			body, err := getRetry(ctx, client, "http://198.18.0.100/")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			f := strings.Fields(body)
			if len(f) != 2 || f[1] != "198.18.0.1" {
				t.Fatalf("request %d: body %q: want the real server's name and the client's address", i, body)
			}
			hits[f[0]]++
		}
		// rr over three servers: exactly a third each.
		for _, rs := range []string{"rs1", "rs2", "rs3"} {
			if hits[rs] != n/3 {
				t.Errorf("rr spread %v: want %d each", hits, n/3)
				break
			}
		}
	})
	t.Run("http6", func(t *testing.T) {
		hits := map[string]int{}
		for i := 0; i < 9; i++ {
			body, err := getRetry(ctx, client, "http://[2001:db8::100]/")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			f := strings.Fields(body)
			if len(f) != 2 || f[1] != "2001:db8::1" {
				t.Fatalf("body %q: want the real server's name and the client's address", body)
			}
			hits[f[0]]++
		}
		if len(hits) != 3 {
			t.Errorf("spread %v: want all three servers", hits)
		}
	})
	t.Run("udp", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 6; i++ {
			var got string
			var err error
			for try := 0; try < 3; try++ {
				if got, err = udpExchange(lab.Client, "198.18.0.100:53", fmt.Sprintf("ping%d", i), time.Second); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("udp exchange %d: %v", i, err)
			}
			f := strings.Fields(got)
			if len(f) != 2 || f[1] != fmt.Sprintf("ping%d", i) {
				t.Fatalf("udp answer %q", got)
			}
			seen[f[0]] = true
		}
		if len(seen) != 3 {
			t.Errorf("udp flows reached %v, want all three servers", seen)
		}
	})
	t.Run("fast path", func(t *testing.T) {
		checkLongFlows(t, lab, g, "198.18.0.100")
		checkLongFlows(t, lab, g, "2001:db8::100")
	})
	t.Run("director traffic untouched", func(t *testing.T) {
		if out, err := lab.Client.Exec("ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.0.254"); err != nil {
			t.Errorf("ping director: %v\n%s", err, out)
		}
		c, err := lab.Client.Dial("tcp", "198.18.0.254:2222", 2*time.Second)
		if err != nil {
			t.Fatalf("tcp to the director's own address: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		if strings.TrimSpace(string(buf[:n])) != "director" {
			t.Errorf("director's own service answered %q", buf[:n])
		}
	})
	t.Run("govsadm", func(t *testing.T) {
		out, err := g.adm("-L", "-n")
		if err != nil {
			t.Fatalf("govsadm -L -n: %v\n%s", err, out)
		}
		for _, want := range []string{"TCP  198.18.0.100:80 rr", "-> 198.18.1.1:8080", "Masq", "UDP  198.18.0.100:53 rr"} {
			if !strings.Contains(out, want) {
				t.Errorf("govsadm -L -n lacks %q:\n%s", want, out)
			}
		}
		out, err = g.adm("-Lnc")
		if err != nil {
			t.Fatalf("govsadm -Lnc: %v\n%s", err, out)
		}
		if !strings.Contains(out, "198.18.0.100:80") || !strings.Contains(out, "TIME_WAIT") && !strings.Contains(out, "CLOSE") && !strings.Contains(out, "FIN_WAIT") {
			t.Errorf("connection listing lacks the finished HTTP connections:\n%s", out)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		mc := topo.HTTPClient(lab.Director, 2*time.Second)
		body, err := topo.Get(ctx, mc, "http://127.0.0.1:9469/metrics")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		if !strings.Contains(body, `govs_datapath_packets_total{event="inbound"}`) {
			t.Errorf("metrics lack the inbound counter:\n%.2000s", body)
		}
	})

	if out, err := g.adm("--counters"); err == nil {
		t.Logf("counters:\n%s", out)
	}
	g.shutdown(t)
	for _, dev := range []string{topo.DirectorClientIf, topo.DirectorRealIf} {
		if xdpAttached(t, lab.Director, dev) {
			t.Errorf("%s still has an XDP program after govsadm --shutdown", dev)
		}
	}
	if !strings.Contains(g.Logs(), "xdp detached") {
		t.Errorf("govsd did not log its clean shutdown:\n%s", g.Logs())
	}
}

// TestCrashLeavesNoXDP kills govsd with SIGKILL with nothing pinned
// (bpf_pin_path: ""): the XDP program is held by a bpf_link that the kernel
// releases with the process, so the NIC never stays black-holed, and
// traffic to the VIP falls back to the kernel. (With the default pin path
// the program stays for the next govsd: restart_test.go.)
func TestCrashLeavesNoXDP(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "crash", topo.LabOptions{RealServers: 1})
	web := httpService("web", labVIP4, 80, 1)
	web.Scheduler = "wlc" // govsd's default
	g := startGovsd(t, lab.Director, testutil.Config{Director: []string{`bpf_pin_path: ""`}, Services: []testutil.Service{web}}.YAML())
	if !xdpAttached(t, lab.Director, topo.DirectorClientIf) {
		t.Fatal("no XDP program attached while govsd runs")
	}
	g.stop(syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for xdpAttached(t, lab.Director, topo.DirectorClientIf) {
		if time.Now().After(deadline) {
			t.Fatal("XDP program still attached 5 s after govsd was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := lab.Client.Exec("ping", "-c", "1", "-W", "1", "198.18.0.254"); err != nil {
		t.Errorf("director unreachable after the crash: %v\n%s", err, out)
	}
}

// getRetry retries a failed request twice: the very first packets toward a
// real server may meet a neighbour entry still being resolved (counted and
// dropped), and a lost SYN costs TCP a second.
func getRetry(ctx context.Context, c *http.Client, url string) (string, error) {
	var err error
	for try := 0; try < 3; try++ {
		var body string
		if body, err = topo.Get(ctx, c, url); err == nil {
			return body, nil
		}
	}
	return "", err
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
