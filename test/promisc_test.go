package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

var promiscConfig = testutil.Config{Services: []testutil.Service{echoService("echo", labVIP4, 53, 2), httpService("web", labVIP4, 80, 2)}}

// xdpCounter reads one xdp counter from govsadm --counters; a counter
// that is not listed is 0.
func (g *govsd) xdpCounter(t *testing.T, name string) uint64 {
	t.Helper()
	out, err := g.adm("--counters")
	if err != nil {
		t.Fatalf("govsadm --counters: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "xdp" && f[1] == name {
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("counter line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// TestPromiscForeignMAC: a director interface in promiscuous mode receives
// frames for the VIP unicast to another host's MAC (as a backup director
// on a bridge or a promiscuous switch port sees its master's traffic).
// The XDP program must leave them to the kernel, which drops them, rather
// than forward them to a real server; traffic to the director's own MAC
// keeps working, also after the MAC changes at run time; and with
// accept_foreign_mac the interface forwards them as before.
func TestPromiscForeignMAC(t *testing.T) {
	needRoot(t)
	lab := newServingLab(t, "pm", topo.LabOptions{RealServers: 2})
	if _, err := lab.Director.Exec("ip", "link", "set", "d0", "promisc", "on"); err != nil {
		t.Fatal(err)
	}
	own, err := lab.Director.MAC("d0")
	if err != nil {
		t.Fatal(err)
	}
	const foreign = "02:00:5e:99:99:01"
	// pointVIP makes the client send the VIP's frames to mac.
	pointVIP := func(t *testing.T, mac string) {
		t.Helper()
		if out, err := lab.Client.Exec("ip", "neigh", "replace", "198.18.0.100", "lladdr", mac, "dev", "c0", "nud", "permanent"); err != nil {
			t.Fatalf("neighbour entry: %v\n%s", err, out)
		}
	}
	ctx := context.Background()
	client := topo.HTTPClient(lab.Client, 2*time.Second)
	works := func(t *testing.T, what string) {
		t.Helper()
		var err error
		for try := 0; try < 5; try++ {
			var got string
			if got, err = udpExchange(lab.Client, "198.18.0.100:53", "hello", time.Second); err == nil {
				if !strings.HasSuffix(got, "hello") {
					t.Fatalf("%s: udp answer %q", what, got)
				}
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: udp to the vip: %v", what, err)
		}
		if _, err := getRetry(ctx, client, "http://198.18.0.100/"); err != nil {
			t.Fatalf("%s: http to the vip: %v", what, err)
		}
	}

	g := startGovsd(t, lab.Director, promiscConfig.YAML())
	pointVIP(t, own.String())
	works(t, "own MAC")

	t.Run("foreign MAC not forwarded", func(t *testing.T) {
		pointVIP(t, foreign)
		t.Cleanup(func() { pointVIP(t, own.String()) })
		vip0, fm0 := g.xdpCounter(t, "steered_vip"), g.xdpCounter(t, "foreign_mac")
		for i := 0; i < 5; i++ {
			if got, err := udpExchange(lab.Client, "198.18.0.100:53", fmt.Sprint("stray", i), 300*time.Millisecond); err == nil {
				t.Fatalf("a frame to another MAC was forwarded: answer %q", got)
			}
		}
		if _, err := lab.Client.DialContext(ctxTimeout(t, time.Second), "tcp", "198.18.0.100:80"); err == nil {
			t.Errorf("a TCP connection was made through frames to another MAC")
		}
		if d := g.xdpCounter(t, "steered_vip") - vip0; d != 0 {
			t.Errorf("steered_vip moved by %d on frames to another MAC", d)
		}
		if d := g.xdpCounter(t, "foreign_mac") - fm0; d < 5 {
			t.Errorf("foreign_mac moved by %d, want at least 5", d)
		}
	})
	t.Run("own MAC still works", func(t *testing.T) { works(t, "own MAC after") })

	t.Run("MAC changes at run time", func(t *testing.T) {
		const newMAC = "02:00:5e:99:99:02"
		if out, err := lab.Director.Exec("ip", "link", "set", "d0", "address", newMAC); err != nil {
			t.Fatalf("change d0's MAC: %v\n%s", err, out)
		}
		t.Cleanup(func() { lab.Director.Exec("ip", "link", "set", "d0", "address", own.String()) })
		pointVIP(t, newMAC)
		// housekeeping rereads the MAC every 2 s.
		deadline := time.Now().Add(8 * time.Second)
		for {
			if _, err := udpExchange(lab.Client, "198.18.0.100:53", "new mac", 500*time.Millisecond); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer to the new MAC\n%s", g.Logs())
			}
		}
		works(t, "new MAC")
		// The old MAC is another host's now.
		pointVIP(t, own.String())
		fm0 := g.xdpCounter(t, "foreign_mac")
		if got, err := udpExchange(lab.Client, "198.18.0.100:53", "old mac", 300*time.Millisecond); err == nil {
			t.Errorf("a frame to the old MAC was forwarded: answer %q", got)
		}
		if d := g.xdpCounter(t, "foreign_mac") - fm0; d == 0 {
			t.Errorf("foreign_mac did not count the frame to the old MAC")
		}
		if out, err := lab.Director.Exec("ip", "link", "set", "d0", "address", own.String()); err != nil {
			t.Fatalf("restore d0's MAC: %v\n%s", err, out)
		}
		time.Sleep(2500 * time.Millisecond) // the next housekeeping pass
		works(t, "MAC restored")
	})

	t.Run("accept_foreign_mac", func(t *testing.T) {
		g.shutdown(t)
		g := startGovsd(t, lab.Director, promiscConfig.WithDirector("accept_foreign_mac: [d0]").YAML())
		pointVIP(t, foreign)
		t.Cleanup(func() { pointVIP(t, own.String()) })
		works(t, "accepting foreign MACs")
		if n := g.xdpCounter(t, "foreign_mac"); n != 0 {
			t.Errorf("foreign_mac %d with accept_foreign_mac", n)
		}
	})
}

// ctxTimeout returns a context that ends after d or with the test.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
