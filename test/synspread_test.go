package test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestSynSpread: a DR service under a SYN budget of about one SYN per
// second. With mh, the SYNs over the budget are spread by the XDP program
// to the server mh picks and the workers start each connection from the
// client's ACK (sloppy), so every one of 30 connections opens at once, each
// on the server mh gives its client (one with plain mh, several with
// mh-port: the connection's first segment and the SYN went to the same
// one), over veths with default offloads; DR over IPv4, TUN over IPv6. With
// wlc (no table to spread by) the same SYNs are dropped and most
// connections wait for a SYN retransmission: what the spreading is for.
func TestSynSpread(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name, mode, scheduler string
		hashPort              bool
		v6                    bool
		spread                bool
	}{
		{"dr-mh-port", "dr", "mh", true, false, true},
		{"tun-mh-6", "tun", "mh", false, true, true},
		{"dr-wlc", "dr", "wlc", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := newLab(t, "ss"+tc.name[:2]+tc.name[len(tc.name)-1:], topo.LabOptions{RealServers: 3})
			vip4, vip6 := "198.18.2.100", "2001:db8:2::100"
			if err := lab.RealServerVIPs(mustAddr(vip4), mustAddr(vip6)); err != nil {
				t.Fatal(err)
			}
			if tc.mode == "tun" {
				startDecap(t, lab, vip4, vip6)
			}
			serveSynProxyHTTP(t, lab)
			vip, reals := vip4, testutil.LabReals4(3)
			if tc.v6 {
				vip, reals = vip6, testutil.LabReals6(3)
			}
			settings := []string{"health_check: {type: none}"}
			if tc.hashPort {
				settings = append(settings, "scheduler_flags: [mh-port]")
			}
			cfg := testutil.Config{
				// syn_limit is per CPU: about one SYN a second in all
				// on this machine's CPUs gets to the workers.
				Director: []string{"syn_limit: 1", "syn_limit_burst: 1"},
				Services: []testutil.Service{{Name: "web", VIP: vip, Port: 8080, Forward: tc.mode, Scheduler: tc.scheduler,
					Settings: settings, Reals: testutil.Reals(8080, reals...)}},
			}
			g := startGovsd(t, lab.Director, cfg.YAML())
			t.Cleanup(func() {
				if t.Failed() {
					out, _ := g.adm("--counters")
					t.Logf("govsadm --counters:\n%s", out)
				}
			})
			// The housekeeping writes the real servers' entries once
			// their next hops resolve (every 2 s): a first connection
			// resolves them.
			if _, err := topo.HTTPClient(lab.Client, 10*time.Second).Get("http://" + net.JoinHostPort(vip, "8080") + "/"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2500 * time.Millisecond)

			const conns = 30
			slow := 0
			servers := map[string]int{}
			for i := range conns {
				// A connection whose SYN was dropped opens after the
				// retransmission, 1 s later.
				c, err := lab.Client.Dial("tcp", net.JoinHostPort(vip, "8080"), 800*time.Millisecond)
				if err != nil {
					slow++
					continue
				}
				c.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
				r := bufio.NewReader(c)
				var body string
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						break
					}
					body = line
				}
				c.Close()
				name, _, _ := strings.Cut(strings.TrimSpace(body), " ")
				if !strings.HasPrefix(name, "rs") {
					t.Fatalf("connection %d: answer %q", i, body)
				}
				servers[name]++
			}
			spread := g.counter(t, "xdp", "syn_spread")
			throttled := g.counter(t, "xdp", "syn_throttled")
			newConns := g.counter(t, "datapath", "new_conns")
			t.Logf("%d connections, %d not open in 800 ms; servers %v; xdp syn_spread %d, syn_throttled %d; new_conns %d",
				conns, slow, servers, spread, throttled, newConns)
			if tc.spread {
				if slow != 0 || spread < conns/2 {
					t.Errorf("%d connections waited for a SYN retransmission, %d SYNs spread; want none waiting, most spread", slow, spread)
				}
				// mh-port spreads the client's ports; plain mh keeps
				// the client on one server, whoever took the SYN.
				if tc.hashPort && len(servers) < 2 {
					t.Errorf("every client port went to %v, want mh-port to spread them", servers)
				}
				if !tc.hashPort && len(servers) != 1 {
					t.Errorf("one client went to %v, want one server (mh)", servers)
				}
			} else if spread != 0 || slow < conns/3 {
				t.Errorf("wlc: %d SYNs spread, %d connections slow; want none spread and the budget felt (the test's contrast)", spread, slow)
			}
		})
	}
}
