package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// offloadConfig is one HTTP service per family on port 8080 (the real
// servers' port: DR and TUN map no ports) in forwarding mode mode.
func offloadConfig(mode string, fastPath bool, xdpMode, vip4, vip6, local4, local6 string) string {
	cfg := testutil.Config{Director: []string{fmt.Sprintf("fast_path: %v", fastPath), "xdp_mode: " + xdpMode}}
	for _, svc := range []struct {
		name, vip, local string
		rs               []string
	}{
		{"web4", vip4, local4, testutil.LabReals4(3)},
		{"web6", vip6, local6, testutil.LabReals6(3)},
	} {
		s := testutil.Service{Name: svc.name, VIP: svc.vip, Port: 8080, Forward: mode, Reals: testutil.Reals(8080, svc.rs...)}
		if svc.local != "" {
			s.LocalAddresses = []string{svc.local}
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg.YAML()
}

// TestModesDefaultOffloads is issue #15's first case: the client and the
// real servers keep their veths' default offloads, as containers do, so
// every TCP segment they send reaches the director with its checksum
// unfinished (TX checksum offload). In every forwarding mode, IPv4 and
// IPv6, the handshake completes and 4 MiB go each way intact (the real
// server checks the upload's SHA-256, the client the download's bytes):
// the workers finish the checksums of the first packets, the XDP fast
// path those of the bulk (NAT also without the fast path: the workers
// finish them all; and in generic XDP mode, where the issue saw it fail
// too). The counters show that checksums were finished.
func TestModesDefaultOffloads(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name, mode string
		fast       bool
		xdpMode    string
	}{{"nat", "nat", true, "auto"}, {"nat-workers", "nat", false, "auto"}, {"fullnat", "fullnat", true, "auto"},
		{"dr", "dr", true, "auto"}, {"tun", "tun", true, "auto"}, {"nat-generic", "nat", true, "generic"}} {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.mode == "fullnat"
			direct := tc.mode == "dr" || tc.mode == "tun"
			lab := newLab(t, "off"+tc.name[:2]+tc.name[len(tc.name)-1:], topo.LabOptions{RealServers: 3, NoReturnRoute: full})
			for _, dev := range []struct {
				ns  *topo.NS
				dev string
			}{{lab.Client, topo.ClientIf}, {lab.Reals[0], topo.RealIf}} {
				out, err := dev.ns.Exec("ethtool", "-k", dev.dev)
				if err != nil || !strings.Contains(out, "tx-checksumming: on") {
					t.Fatalf("%s %s: want TX checksum offload on (the default):\n%s %v", dev.ns.Name, dev.dev, out, err)
				}
			}
			if tc.xdpMode == "generic" {
				// Generic XDP runs on skbs, and sees a TSO/GSO
				// segment of up to 64 KiB whole (only native XDP on
				// a veth makes its peer segment): such a frame fits
				// neither the fast path nor an AF_XDP frame. The
				// peers of the director's veths segment instead.
				for _, dev := range []struct {
					ns  *topo.NS
					dev string
				}{{lab.Client, topo.ClientIf}, {lab.Switch, "swd"}} {
					if _, err := dev.ns.Exec("ethtool", "-K", dev.dev, "tso", "off", "gso", "off"); err != nil {
						t.Fatal(err)
					}
				}
			}
			vip4, vip6 := "198.18.0.100", "2001:db8::100"
			local4, local6 := "", ""
			switch {
			case direct:
				vip4, vip6 = "198.18.2.100", "2001:db8:2::100"
				if err := lab.RealServerVIPs(mustAddr(vip4), mustAddr(vip6)); err != nil {
					t.Fatal(err)
				}
				if tc.mode == "tun" {
					startDecap(t, lab, vip4, vip6)
				}
			default:
				for _, a := range []string{vip4, vip6} {
					if err := lab.AddVIP(mustAddr(a)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if full {
				local4, local6 = "198.18.1.250", "2001:db8:1::250"
				for _, a := range []string{local4, local6} {
					if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr(a)); err != nil {
						t.Fatal(err)
					}
				}
			}
			serveSynProxyHTTP(t, lab)
			g := startGovsd(t, lab.Director, offloadConfig(tc.mode, tc.fast, tc.xdpMode, vip4, vip6, local4, local6))
			t.Cleanup(func() {
				if t.Failed() {
					out, _ := g.adm("--counters")
					t.Logf("govsadm --counters:\n%s", out)
				}
			})
			for _, vip := range []string{vip4, vip6} {
				base := "http://" + net.JoinHostPort(vip, "8080")
				client := topo.HTTPClient(lab.Client, 30*time.Second)
				start := time.Now()
				resp, err := client.Get(base + "/big")
				if err != nil {
					t.Fatalf("GET %s/big: %v", base, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, bigBody) {
					t.Fatalf("GET %s/big: %d bytes (want %d), equal %v, err %v", base, len(got), len(bigBody), bytes.Equal(got, bigBody), err)
				}
				t.Logf("%s: 4 MiB down in %v", base, time.Since(start).Round(time.Millisecond))
				sum := sha256.Sum256(bigBody)
				start = time.Now()
				resp, err = client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(bigBody))
				if err != nil {
					t.Fatalf("POST %s/upload: %v", base, err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(answer) != hex.EncodeToString(sum[:]) {
					t.Fatalf("POST %s/upload: real server saw sha256 %q, want %x", base, answer, sum)
				}
				t.Logf("%s: 4 MiB up in %v", base, time.Since(start).Round(time.Millisecond))
			}
			workers := g.counter(t, "datapath", "csum_finished")
			xdp := g.counter(t, "xdp", "fast_csum_finished")
			fast := g.counter(t, "xdp", "fast_forwarded")
			t.Logf("checksums finished: %d by the workers, %d by the fast path (%d packets fast-forwarded)", workers, xdp, fast)
			if workers == 0 {
				t.Error("the workers finished no checksum: were the client's checksums unfinished?")
			}
			if tc.fast && xdp == 0 {
				t.Error("the fast path finished no checksum")
			}
			if !tc.fast && (xdp != 0 || fast != 0) {
				t.Errorf("fast_path: false, yet the XDP program forwarded %d packets and finished %d checksums", fast, xdp)
			}
		})
	}
}
