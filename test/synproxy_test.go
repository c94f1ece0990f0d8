package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// synProxyConfig is one HTTP service per family with syn_proxy: on: every
// SYN is answered by the XDP program with a cookie, and every connection
// is opened to its real server by a worker (dataplane/synproxy.go).
func synProxyConfig(mode string, fastPath bool, local4, local6 string) string {
	cfg := testutil.Config{Director: []string{fmt.Sprintf("fast_path: %v", fastPath)}}
	for _, svc := range []struct{ name, vip, local string }{{"web4", labVIP4, local4}, {"web6", labVIP6, local6}} {
		s := httpService(svc.name, svc.vip, 80, 3)
		s.Forward, s.Settings = mode, []string{"syn_proxy: on"}
		if svc.local != "" {
			s.LocalAddresses = []string{svc.local}
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg.YAML()
}

// bigBody is the 4 MiB the real servers send for /big.
var bigBody = func() []byte {
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}()

// serveSynProxyHTTP runs an HTTP server on port 8080 of every real server:
// / answers "rsN <client address seen>", /big sends bigBody, /upload
// answers the SHA-256 of what it received.
func serveSynProxyHTTP(t *testing.T, lab *topo.Lab) {
	t.Helper()
	for i, rs := range lab.Reals {
		name := fmt.Sprintf("rs%d", i+1)
		ln, err := rs.Listen("tcp", ":8080")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/big":
				w.Header().Set("Content-Length", fmt.Sprint(len(bigBody)))
				w.Write(bigBody)
			case "/upload":
				h := sha256.New()
				io.Copy(h, r.Body)
				fmt.Fprintf(w, "%x", h.Sum(nil))
			default:
				host, _, _ := net.SplitHostPort(r.RemoteAddr)
				fmt.Fprintf(w, "%s %s\n", name, host)
			}
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
}

// TestSynProxy proves the SYN proxy end to end: with syn_proxy: on, HTTP
// requests, a 4 MiB download and a 1 MiB upload through NAT and full-NAT
// VIPs of both families, with the XDP fast path and without it, over veths
// with their default offloads. Every connection is opened by the director
// (SYN cookies sent by the XDP program and accepted by a worker), and its
// sequence numbers are translated for its whole life.
func TestSynProxy(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		mode string
		fast bool
	}{{"nat", true}, {"fullnat", true}, {"nat", false}, {"fullnat", false}} {
		name := tc.mode
		if !tc.fast {
			name += "-workers"
		}
		t.Run(name, func(t *testing.T) {
			full := tc.mode == "fullnat"
			lab := newLab(t, "sp"+name[:1]+name[len(name)-1:], topo.LabOptions{RealServers: 3, NoReturnRoute: full})
			for _, a := range []string{"198.18.0.100", "2001:db8::100"} {
				if err := lab.AddVIP(mustAddr(a)); err != nil {
					t.Fatal(err)
				}
			}
			local4, local6 := "", ""
			if full {
				local4, local6 = "198.18.1.250", "2001:db8:1::250"
				for _, a := range []string{local4, local6} {
					if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr(a)); err != nil {
						t.Fatal(err)
					}
				}
			}
			serveSynProxyHTTP(t, lab)
			if os.Getenv("GOVS_SP_DEBUG") != "" { // the handshakes as both ends see them, in the log of a failed test
				for _, ns := range []*topo.NS{lab.Client, lab.Reals[0]} {
					dev := topo.ClientIf
					if ns != lab.Client {
						dev = topo.RealIf
					}
					startProcess(t, ns, "tcpdump", "-l", "-n", "-v", "-S", "-i", dev, "tcp")
				}
			}
			g := startGovsd(t, lab.Director, synProxyConfig(tc.mode, tc.fast, local4, local6))
			t.Cleanup(func() {
				if t.Failed() {
					out, _ := g.adm("--counters")
					t.Logf("govsadm --counters:\n%s", out)
					out, _ = g.adm("-L", "-n", "-c")
					t.Logf("govsadm -Lnc:\n%s", out)
				}
			})
			conns := 0
			for _, c := range []struct{ vip, seen string }{
				{"198.18.0.100", map[bool]string{false: "198.18.0.1", true: local4}[full]},
				{"2001:db8::100", map[bool]string{false: "2001:db8::1", true: local6}[full]},
			} {
				base := "http://" + net.JoinHostPort(c.vip, "80")
				client := topo.HTTPClient(lab.Client, 5*time.Second)
				hits := map[string]int{}
				for i := 0; i < 6; i++ {
					body, err := getRetry(context.Background(), client, base+"/")
					if err != nil {
						t.Fatalf("GET %s/ #%d: %v", base, i, err)
					}
					f := strings.Fields(body)
					if len(f) != 2 || f[1] != c.seen {
						t.Fatalf("GET %s/: body %q: the real server should have seen %s", base, body, c.seen)
					}
					hits[f[0]]++
				}
				if len(hits) != 3 {
					t.Errorf("GET %s/ spread %v: want all three real servers", base, hits)
				}
				conns += 6

				// 4 MiB down, 1 MiB up: long enough for the window to open,
				// SACK and window scaling to matter, the fast path to take over.
				big := topo.HTTPClient(lab.Client, 30*time.Second)
				start := time.Now()
				resp, err := big.Get(base + "/big")
				if err != nil {
					t.Fatalf("GET %s/big: %v", base, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, bigBody) {
					t.Fatalf("GET %s/big: %d bytes (want %d), equal %v, err %v", base, len(got), len(bigBody), bytes.Equal(got, bigBody), err)
				}
				t.Logf("%s: 4 MiB in %v", base, time.Since(start).Round(time.Millisecond))
				up := bigBody[:1<<20]
				sum := sha256.Sum256(up)
				start = time.Now()
				resp, err = big.Post(base+"/upload", "application/octet-stream", bytes.NewReader(up))
				if err != nil {
					t.Fatalf("POST %s/upload: %v", base, err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(answer) != hex.EncodeToString(sum[:]) {
					t.Fatalf("POST %s/upload: real server saw sha256 %q, want %x", base, answer, sum)
				}
				t.Logf("%s: 1 MiB up in %v", base, time.Since(start).Round(time.Millisecond))
				conns += 2

				// One keep-alive connection, many requests.
				conn := dial(t, lab, net.JoinHostPort(c.vip, "80"))
				names := keepAlive(t, conn, 30)
				conn.Close()
				for i, n := range names {
					if n != names[0] {
						t.Fatalf("keep-alive request %d answered by %s, earlier ones by %s", i, n, names[0])
					}
				}
				conns++
			}
			sent := g.counter(t, "xdp", "syncookies_sent")
			accepted := g.counter(t, "datapath", "syncookies_accepted")
			rejected := g.counter(t, "datapath", "syncookies_rejected")
			dropped := g.counter(t, "datapath", "synproxy_dropped")
			t.Logf("connections %d: syncookies sent %d, accepted %d, rejected %d; synproxy_dropped %d", conns, sent, accepted, rejected, dropped)
			if accepted < uint64(conns) || sent < accepted {
				t.Errorf("%d connections: %d SYN cookies sent, %d accepted: the SYN proxy did not open them all", conns, sent, accepted)
			}
			// With the fast path, the XDP program translates the bulk of
			// the transfers itself (bpf/include/fastpath.h).
			if fast := g.counter(t, "xdp", "fast_forwarded"); tc.fast && fast < 2000 {
				t.Errorf("fast path forwarded %d packets of 2 x 5 MiB over proxied connections, want most of them", fast)
			} else {
				t.Logf("fast path forwarded %d packets", fast)
			}
		})
	}
}
