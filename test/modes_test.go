package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// modeConfig is a TCP (HTTP) and a UDP service for each family, in one
// forwarding mode.
func modeConfig(mode, vip4, vip6, local4, local6 string) string {
	port := func(p int) int {
		if mode == "dr" || mode == "tun" {
			return p // port mapping is not allowed there
		}
		return p + 8000
	}
	var cfg testutil.Config
	for _, svc := range []struct {
		name, vip, proto, local string
		port                    int
		rs                      []string
	}{
		{"web4", vip4, "tcp", local4, 80, testutil.LabReals4(3)},
		{"udp4", vip4, "udp", local4, 53, testutil.LabReals4(3)},
		{"web6", vip6, "tcp", local6, 80, testutil.LabReals6(3)},
		{"udp6", vip6, "udp", local6, 53, testutil.LabReals6(3)},
	} {
		s := testutil.Service{Name: svc.name, VIP: svc.vip, Port: svc.port, Protocol: svc.proto, Forward: mode,
			Reals: testutil.Reals(port(svc.port), svc.rs...)}
		if svc.local != "" {
			s.LocalAddresses = []string{svc.local}
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg.YAML()
}

// checkModeTraffic drives HTTP and UDP through both VIPs and checks which
// client address the real servers saw.
func checkModeTraffic(t *testing.T, lab *topo.Lab, vip4, vip6 string, httpPort, udpPort int, seen4, seen6 string, udpBind ...netip.Addr) {
	t.Helper()
	stopHTTP, err := lab.ServeHTTP(httpPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopHTTP)
	stopUDP, err := lab.ServeUDPEcho(udpPort, udpBind...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopUDP)
	client := topo.HTTPClient(lab.Client, 3*time.Second)
	for _, c := range []struct{ vip, seen string }{{vip4, seen4}, {vip6, seen6}} {
		url := "http://" + net.JoinHostPort(c.vip, "80") + "/"
		hits := map[string]int{}
		for i := 0; i < 6; i++ {
			body, err := getRetry(context.Background(), client, url)
			if err != nil {
				t.Fatalf("GET %s #%d: %v", url, i, err)
			}
			f := strings.Fields(body)
			if len(f) != 2 || f[1] != c.seen {
				t.Fatalf("GET %s: body %q: the real server should have seen the client as %s", url, body, c.seen)
			}
			hits[f[0]]++
		}
		if len(hits) != 3 {
			t.Errorf("GET %s spread %v: want all three real servers", url, hits)
		}
		addr := net.JoinHostPort(c.vip, "53")
		for i := 0; i < 3; i++ {
			var got string
			for try := 0; try < 3; try++ {
				if got, err = udpExchange(lab.Client, addr, fmt.Sprintf("q%d", i), time.Second); err == nil {
					break
				}
			}
			if err != nil || !strings.HasSuffix(got, fmt.Sprintf(" q%d", i)) {
				t.Fatalf("udp %s: got %q, %v", addr, got, err)
			}
		}
	}
}

func TestFullNAT(t *testing.T) {
	needRoot(t)
	// The real servers have no route back through the director: full-NAT
	// needs none, replies go to the local address.
	lab := newLab(t, "fnat", topo.LabOptions{RealServers: 3, NoReturnRoute: true})
	for _, a := range []string{"198.18.0.100", "2001:db8::100"} {
		if err := lab.AddVIP(mustAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"198.18.1.250", "2001:db8:1::250"} {
		if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	g := startGovsd(t, lab.Director, modeConfig("fullnat", "198.18.0.100", "2001:db8::100", "198.18.1.250", "2001:db8:1::250"))
	checkModeTraffic(t, lab, "198.18.0.100", "2001:db8::100", 8080, 8053, "198.18.1.250", "2001:db8:1::250")
	checkLongFlows(t, lab, g, "198.18.0.100")
	checkLongFlows(t, lab, g, "2001:db8::100")
	out, _ := g.adm("-Lnc")
	if !strings.Contains(out, "198.18.0.1:") {
		t.Errorf("connection listing lacks the client:\n%s", out)
	}
}

func TestDR(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "dr", topo.LabOptions{RealServers: 3})
	// The VIP is routed to the director (not on its interface) and lives on
	// the real servers' loopback.
	if err := lab.RealServerVIPs(mustAddr("198.18.2.100"), mustAddr("2001:db8:2::100")); err != nil {
		t.Fatal(err)
	}
	g := startGovsd(t, lab.Director, modeConfig("dr", "198.18.2.100", "2001:db8:2::100", "", ""))
	checkModeTraffic(t, lab, "198.18.2.100", "2001:db8:2::100", 80, 53, "198.18.0.1", "2001:db8::1",
		mustAddr("198.18.2.100"), mustAddr("2001:db8:2::100"))
	checkLongFlows(t, lab, g, "198.18.2.100")
	checkLongFlows(t, lab, g, "2001:db8:2::100")
}

// startDecap runs `govsd decap` on every real server until the test ends.
func startDecap(t *testing.T, lab *topo.Lab, vips ...string) {
	t.Helper()
	for _, rs := range lab.Reals {
		args := []string{"decap", "--interface", topo.RealIf}
		for _, v := range vips {
			args = append(args, "--vip", v)
		}
		startProcess(t, rs, filepath.Join(binDir, "govsd"), args...)
		deadline := time.Now().Add(10 * time.Second)
		for !xdpAttached(t, rs, topo.RealIf) {
			if time.Now().After(deadline) {
				t.Fatalf("govsd decap did not attach on %s", rs.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestTUN(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "tun", topo.LabOptions{RealServers: 3})
	if err := lab.RealServerVIPs(mustAddr("198.18.2.100"), mustAddr("2001:db8:2::100")); err != nil {
		t.Fatal(err)
	}
	startDecap(t, lab, "198.18.2.100", "2001:db8:2::100")
	g := startGovsd(t, lab.Director, modeConfig("tun", "198.18.2.100", "2001:db8:2::100", "", ""))
	checkModeTraffic(t, lab, "198.18.2.100", "2001:db8:2::100", 80, 53, "198.18.0.1", "2001:db8::1",
		mustAddr("198.18.2.100"), mustAddr("2001:db8:2::100"))
	checkLongFlows(t, lab, g, "198.18.2.100")
	checkLongFlows(t, lab, g, "2001:db8:2::100")

	// Path MTU: a full-size datagram with DF set cannot be encapsulated
	// within the 1500-byte MTU of the real servers' link; the client must
	// get "fragmentation needed" with MTU 1480 and then refuse to send it.
	t.Run("pmtu", func(t *testing.T) {
		var sendErr error
		err := lab.Client.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
				return err
			}
			sa := &unix.SockaddrInet4{Port: 53, Addr: [4]byte{198, 18, 2, 100}}
			big := make([]byte, 1472) // 1500 bytes of IP
			for i := 0; i < 20; i++ {
				if sendErr = unix.Sendto(fd, big, 0, sa); sendErr != nil {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(sendErr, unix.EMSGSIZE) {
			t.Fatalf("sending 1500-byte DF datagrams to the TUN VIP: got %v, want EMSGSIZE after the director's fragmentation-needed", sendErr)
		}
		out, _ := lab.Client.Exec("ip", "route", "get", "198.18.2.100")
		if !strings.Contains(out, "mtu 1480") {
			t.Errorf("client's route cache lacks the learned path MTU 1480:\n%s", out)
		}
	})
}
