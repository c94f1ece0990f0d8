package test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/topo"
)

// TestSteerMeter: with the workers forwarding everything (fast_path:
// false) and a steering meter of 1 packet per second per queue (a burst of
// 64), a keep-alive connection goes on far past the burst: once it has
// shown a few packets its flow is known (steer-only flow entries) and its
// packets pass the meter. New flows beyond the burst are dropped by the
// meter and counted.
func TestSteerMeter(t *testing.T) {
	needRoot(t)
	lab := newServingLab(t, "stm", topo.LabOptions{RealServers: 3})

	cfg := lifetime.WithDirector("fast_path: false", "steer_limit: 1").YAML()
	g := startGovsd(t, lab.Director, cfg)
	defer g.stop(syscall.SIGTERM)

	conn := dial(t, lab, "198.18.0.100:80")
	keepAlive(t, conn, 150) // ~300 packets each way, a burst of 64
	conn.Close()
	if m := g.counter(t, "xdp", "steer_metered"); m != 0 {
		t.Errorf("a known connection's packets were metered: steer_metered %d", m)
	}
	if n := g.counter(t, "datapath", "fast_installed"); n < 2 {
		t.Errorf("fast_installed %d, want the connection's two steer-only entries", n)
	}
	if fast := g.counter(t, "xdp", "fast_forwarded"); fast != 0 {
		t.Errorf("fast_path: false, yet the fast path forwarded %d packets", fast)
	}
	out, err := g.adm("--counters")
	if err != nil {
		t.Fatalf("govsadm --counters: %v\n%s", err, out)
	}
	for _, iface := range []string{"d0", "d1"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 8 && f[0] == iface {
				found = true
				if f[7] != "1" {
					t.Errorf("%s: steer_limit %q, want 1: %s", iface, f[7], line)
				}
			}
		}
		if !found {
			t.Errorf("no ring line of %s:\n%s", iface, out)
		}
	}

	// 200 new UDP flows in a burst: the meter lets the bucket's worth
	// through and drops the rest.
	for i := 0; i < 200; i++ {
		c, err := lab.Client.Dial("udp", "198.18.0.100:53", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.counter(t, "xdp", "steer_metered") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("200 new flows over a meter of 1/s: none metered\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
