package test

import (
	"bytes"
	"math/rand"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/topo"
)

// TestFragments sends 3000-byte UDP datagrams, which the client's kernel
// fragments, to an IPv4 and an IPv6 VIP in every forwarding mode, with two
// workers (so fragments cross between them); the real server answers each
// datagram whole with a datagram as large, which its kernel fragments too
// (for NAT and full-NAT the reply's fragments come back through the
// director). Each must arrive whole and intact.
func TestFragments(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"nat", "fullnat", "dr", "tun"} {
		t.Run(mode, func(t *testing.T) { testFragments(t, mode) })
	}
}

func testFragments(t *testing.T, mode string) {
	opts := topo.LabOptions{RealServers: 3, Queues: 2}
	vip4, vip6, local4, local6 := "198.18.0.100", "2001:db8::100", "", ""
	var bind []netip.Addr
	switch mode {
	case "fullnat":
		opts.NoReturnRoute = true
		local4, local6 = "198.18.1.250", "2001:db8:1::250"
	case "dr", "tun":
		vip4, vip6 = "198.18.2.100", "2001:db8:2::100"
		bind = []netip.Addr{mustAddr(vip4), mustAddr(vip6)}
	}
	lab := newLab(t, "fg"+mode, opts)
	switch mode {
	case "nat", "fullnat":
		for _, a := range []string{vip4, vip6} {
			if err := lab.AddVIP(mustAddr(a)); err != nil {
				t.Fatal(err)
			}
		}
		if mode == "fullnat" {
			for _, a := range []string{local4, local6} {
				if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr(a)); err != nil {
					t.Fatal(err)
				}
			}
		}
	default:
		if err := lab.RealServerVIPs(bind...); err != nil {
			t.Fatal(err)
		}
	}
	if mode == "tun" {
		startDecap(t, lab, vip4, vip6)
		// Each fragment is encapsulated as it is, and govs does not
		// fragment: the client's fragments must leave room for the
		// outer header on the real servers' 1500-byte link (a path
		// MTU of 1400 toward the VIPs; the answers come back at 1500).
		for _, r := range [][]string{
			{"ip", "route", "add", vip4 + "/32", "via", "198.18.0.254", "mtu", "lock", "1400"},
			{"ip", "-6", "route", "add", vip6 + "/128", "via", "2001:db8::fe", "mtu", "1400"},
		} {
			if _, err := lab.Client.Exec(r[0], r[1:]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	g := startGovsd(t, lab.Director, modeConfig(mode, vip4, vip6, local4, local6))
	udpPort := 53
	if mode == "nat" || mode == "fullnat" {
		udpPort = 8053
	}
	stop, err := lab.ServeUDPEcho(udpPort, bind...)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	for _, vip := range []string{vip4, vip6} {
		addr := net.JoinHostPort(vip, "53")
		for i := range 3 {
			msg := make([]byte, 3000)
			rand.Read(msg)
			var got []byte
			var err error
			for try := 0; try < 3; try++ {
				if got, err = bigUDPExchange(lab.Client, addr, msg, 2*time.Second); err == nil {
					break
				}
			}
			if err != nil {
				c, _ := g.adm("--counters")
				t.Fatalf("3000-byte datagram %d to %s: %v\n%s", i, addr, err, c)
			}
			name, body, _ := bytes.Cut(got, []byte(" "))
			if !strings.HasPrefix(string(name), "rs") || !bytes.Equal(body, msg) {
				t.Fatalf("datagram %d to %s: answer of %d bytes from %q does not echo the %d sent", i, addr, len(got), name, len(msg))
			}
		}
	}
	if mode == "nat" {
		// A real server's own fragmented traffic through the director
		// (its gateway), from a port no service uses, is not the load
		// balancer's: it must still get through (the kernel's).
		checkOwnFragments(t, lab)
	}
	out, err := g.adm("--counters")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"frag_forwarded", "steered_frag"} {
		if n := counterValue(out, name); n == 0 {
			t.Errorf("%s is 0 after fragmented datagrams:\n%s", name, out)
		}
	}
	if n := counterValue(out, "frag_timed_out"); n != 0 {
		t.Errorf("frag_timed_out %d:\n%s", n, out)
	}
}

// counterValue returns the value of the counter name in govsadm --counters
// output (its first table), 0 when absent.
func counterValue(out, name string) uint64 {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == name {
			n, _ := strconv.ParseUint(f[2], 10, 64)
			return n
		}
	}
	return 0
}

// bigUDPExchange sends msg from ns to addr and returns the answer, of any size.
func bigUDPExchange(ns *topo.NS, addr string, msg []byte, timeout time.Duration) ([]byte, error) {
	c, err := ns.Dial("udp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// checkOwnFragments sends 3000-byte datagrams from the first real server's
// port 7000 to the client and checks they arrive.
func checkOwnFragments(t *testing.T, lab *topo.Lab) {
	t.Helper()
	for _, c := range []struct{ client, real string }{{"198.18.0.1", "198.18.1.1"}, {"2001:db8::1", "2001:db8:1::1"}} {
		l, err := lab.Client.ListenPacket("udp", net.JoinHostPort(c.client, "7777"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var got []byte
		for try := 0; try < 3 && got == nil; try++ {
			err = lab.Reals[0].Do(func() error {
				conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(c.real), Port: 7000},
					&net.UDPAddr{IP: net.ParseIP(c.client), Port: 7777})
				if err != nil {
					return err
				}
				defer conn.Close()
				_, err = conn.Write(bytes.Repeat([]byte("x"), 3000))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 65536)
			l.SetReadDeadline(time.Now().Add(time.Second))
			if n, _, err := l.ReadFrom(buf); err == nil {
				got = buf[:n]
			}
		}
		if len(got) != 3000 {
			t.Errorf("real server's own 3000-byte datagram to %s: got %d bytes", c.client, len(got))
		}
	}
}
