package topo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Interface names used by a Lab.
const (
	ClientIf         = "c0" // in the client namespace
	DirectorClientIf = "d0" // director side facing clients
	DirectorRealIf   = "d1" // director side facing the real servers
	RealIf           = "r0" // in each real-server namespace
)

// LabOptions shape a Lab.
type LabOptions struct {
	RealServers int
	// NoReturnRoute leaves the real servers without a default route through
	// the director (full-NAT, DR and TUN need none).
	NoReturnRoute bool
	// Queues gives the director's interfaces (and their peers) that many
	// RX/TX queues, so that govsd runs one worker per queue.
	Queues int
	// TxChecksumOff turns TX checksum offload off on every veth of the
	// lab, so that every frame carries a complete checksum, as from a
	// real NIC. By default the veths keep the kernel's default offloads,
	// as in containers: the client's and the real servers' TCP and UDP
	// checksums reach the director unfinished, and govs finishes them.
	TxChecksumOff bool
}

// Lab is the classic LVS picture in namespaces: a client, a director with a
// client-side and a real-server-side interface, and real servers behind a
// bridge.
//
//	client(c0) ── d0 [director] d1 ── bridge(sw) ── r0(real1..N)
//
// IPv4: clients 198.18.0.0/24, real servers 198.18.1.0/24. IPv6: 2001:db8::/64
// and 2001:db8:1::/64.
type Lab struct {
	*Topology
	Client, Director, Switch *NS
	Reals                    []*NS

	ClientAddr, ClientAddr6     netip.Addr
	DirectorAddr, DirectorAddr6 netip.Addr // client side
	DirectorRS, DirectorRS6     netip.Addr // real-server side
	RealAddrs, RealAddrs6       []netip.Addr
}

// NewLab builds the topology. On error everything created so far is removed.
func NewLab(prefix string, o LabOptions) (lab *Lab, err error) {
	if o.RealServers <= 0 {
		o.RealServers = 3
	}
	l := &Lab{
		Topology:      New(prefix),
		ClientAddr:    netip.MustParseAddr("198.18.0.1"),
		ClientAddr6:   netip.MustParseAddr("2001:db8::1"),
		DirectorAddr:  netip.MustParseAddr("198.18.0.254"),
		DirectorAddr6: netip.MustParseAddr("2001:db8::fe"),
		DirectorRS:    netip.MustParseAddr("198.18.1.254"),
		DirectorRS6:   netip.MustParseAddr("2001:db8:1::fe"),
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.Client, err = l.AddNS("client"); err != nil {
		return nil, err
	}
	if l.Director, err = l.AddNS("dir"); err != nil {
		return nil, err
	}
	if l.Switch, err = l.AddNS("sw"); err != nil {
		return nil, err
	}
	if err = VethQueues(l.Client, ClientIf, l.Director, DirectorClientIf, o.Queues); err != nil {
		return nil, err
	}
	if err = VethQueues(l.Director, DirectorRealIf, l.Switch, "swd", o.Queues); err != nil {
		return nil, err
	}
	// The director's XDP fast path redirects frames to its interfaces; a
	// veth accepts them only while its peer has GRO on (or runs XDP), as a
	// NIC driver with ndo_xdp_xmit always does.
	if _, err = l.Client.Exec("ethtool", "-K", ClientIf, "gro", "on"); err != nil {
		return nil, err
	}
	if err = l.Switch.MustExec(
		[]string{"ethtool", "-K", "swd", "gro", "on"},
		[]string{"ip", "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "link", "set", "br0", "up"},
		[]string{"ip", "link", "set", "swd", "master", "br0"},
	); err != nil {
		return nil, err
	}
	if err = l.Client.MustExec(
		[]string{"ip", "addr", "add", "198.18.0.1/24", "dev", ClientIf},
		[]string{"ip", "-6", "addr", "add", "2001:db8::1/64", "dev", ClientIf, "nodad"},
		[]string{"ip", "route", "add", "default", "via", "198.18.0.254"},
		[]string{"ip", "-6", "route", "add", "default", "via", "2001:db8::fe"},
	); err != nil {
		return nil, err
	}
	if err = l.Director.MustExec(
		[]string{"ip", "addr", "add", "198.18.0.254/24", "dev", DirectorClientIf},
		[]string{"ip", "-6", "addr", "add", "2001:db8::fe/64", "dev", DirectorClientIf, "nodad"},
		[]string{"ip", "addr", "add", "198.18.1.254/24", "dev", DirectorRealIf},
		[]string{"ip", "-6", "addr", "add", "2001:db8:1::fe/64", "dev", DirectorRealIf, "nodad"},
		[]string{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		[]string{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
	); err != nil {
		return nil, err
	}
	if o.TxChecksumOff {
		for _, e := range []struct {
			ns  *NS
			dev string
		}{{l.Client, ClientIf}, {l.Director, DirectorClientIf}, {l.Director, DirectorRealIf}, {l.Switch, "swd"}} {
			if err = e.ns.TxChecksumOff(e.dev); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; i < o.RealServers; i++ {
		rs, err := l.AddNS(fmt.Sprintf("rs%d", i+1))
		if err != nil {
			return nil, err
		}
		sw := fmt.Sprintf("sw%d", i+1)
		if err = Veth(rs, RealIf, l.Switch, sw); err != nil {
			return nil, err
		}
		if _, err = l.Switch.Exec("ip", "link", "set", sw, "master", "br0"); err != nil {
			return nil, err
		}
		if o.TxChecksumOff {
			if err = rs.TxChecksumOff(RealIf); err != nil {
				return nil, err
			}
			if err = l.Switch.TxChecksumOff(sw); err != nil {
				return nil, err
			}
		}
		a4 := netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)})
		a6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", i+1))
		cmds := [][]string{
			{"ip", "addr", "add", a4.String() + "/24", "dev", RealIf},
			{"ip", "-6", "addr", "add", a6.String() + "/64", "dev", RealIf, "nodad"},
		}
		if !o.NoReturnRoute {
			cmds = append(cmds,
				[]string{"ip", "route", "add", "default", "via", "198.18.1.254"},
				[]string{"ip", "-6", "route", "add", "default", "via", "2001:db8:1::fe"})
		}
		if err = rs.MustExec(cmds...); err != nil {
			return nil, err
		}
		l.Reals = append(l.Reals, rs)
		l.RealAddrs = append(l.RealAddrs, a4)
		l.RealAddrs6 = append(l.RealAddrs6, a6)
	}
	return l, nil
}

// AddVIP puts a VIP on the director's client-side interface so that the
// director's kernel answers ARP/ND for it, as an LVS director does.
func (l *Lab) AddVIP(vip netip.Addr) error {
	bits := 32
	if vip.Is6() {
		bits = 128
	}
	args := []string{"ip", "addr", "add", fmt.Sprintf("%s/%d", vip, bits), "dev", DirectorClientIf}
	if vip.Is6() {
		args = append(args, "nodad")
	}
	_, err := l.Director.Exec(args[0], args[1:]...)
	return err
}

// ServeHTTP starts an HTTP server in every real-server namespace on port that
// answers each request with the server's name ("rs1", "rs2", ...) and the
// client address it saw. It returns a function that stops them all.
func (l *Lab) ServeHTTP(port int) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for i := range l.Reals {
		s, err := l.ServeHTTPOn(i, port)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}

// ServeHTTPOn starts the HTTP server of real server i (0-based) alone.
func (l *Lab) ServeHTTPOn(i, port int) (stop func(), err error) {
	name := fmt.Sprintf("rs%d", i+1)
	ln, err := l.Reals[i].Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "%s %s\n", name, host)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// ServeUDPEcho starts a UDP responder in every real-server namespace that
// answers each datagram, whatever its size, with "rsN <payload>". With bind addresses (VIPs on
// the real servers' loopback, for DR and TUN) it listens on each of them,
// so that answers leave from the address the client sent to, as a UDP
// server behind LVS-DR must.
func (l *Lab) ServeUDPEcho(port int, bind ...netip.Addr) (stop func(), err error) {
	var conns []net.PacketConn
	stop = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i, rs := range l.Reals {
		name := fmt.Sprintf("rs%d", i+1)
		addrs := []string{fmt.Sprintf(":%d", port)}
		if len(bind) > 0 {
			addrs = addrs[:0]
			for _, b := range bind {
				addrs = append(addrs, netip.AddrPortFrom(b, uint16(port)).String())
			}
		}
		for _, a := range addrs {
			c, err := rs.ListenPacket("udp", a)
			if err != nil {
				stop()
				return nil, err
			}
			conns = append(conns, c)
			go func() {
				buf := make([]byte, 65536) // a datagram of any size (fragmented ones too)
				for {
					n, from, err := c.ReadFrom(buf)
					if err != nil {
						return
					}
					c.WriteTo([]byte(name+" "+string(buf[:n])), from)
				}
			}()
		}
	}
	return stop, nil
}

// HTTPClient returns a client whose connections are made from ns. Keep-alives
// are off so that every request is a new connection (a new scheduling
// decision).
func HTTPClient(ns *NS, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       ns.DialContext,
			DisableKeepAlives: true,
		},
	}
}

// Get fetches url through c and returns the trimmed body.
func Get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// RealServerVIPs prepares the real servers for VS/DR and VS/TUN: the VIPs
// on loopback, and arp_ignore/arp_announce so that they neither answer ARP
// for the VIP nor announce it, as the LVS-DR how-to prescribes.
func (l *Lab) RealServerVIPs(vips ...netip.Addr) error {
	for _, rs := range l.Reals {
		cmds := [][]string{
			{"sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"},
			{"sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"},
			{"sysctl", "-qw", "net.ipv4.conf." + RealIf + ".arp_ignore=1"},
			{"sysctl", "-qw", "net.ipv4.conf." + RealIf + ".arp_announce=2"},
			{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
			{"sysctl", "-qw", "net.ipv4.conf." + RealIf + ".rp_filter=0"},
		}
		for _, v := range vips {
			bits := "32"
			if v.Is6() {
				bits = "128"
			}
			cmds = append(cmds, []string{"ip", "addr", "add", v.String() + "/" + bits, "dev", "lo"})
		}
		if err := rs.MustExec(cmds...); err != nil {
			return err
		}
	}
	// The real servers answer clients directly with the VIP as source; the
	// director's kernel routes those answers (it does not own the VIP).
	return l.Director.MustExec(
		[]string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
		[]string{"sysctl", "-qw", "net.ipv4.conf." + DirectorRealIf + ".rp_filter=0"},
	)
}

// AddDirectorAddr adds an address to one of the director's interfaces (for
// example a full-NAT local address on the real-server side).
func (l *Lab) AddDirectorAddr(dev string, a netip.Addr) error {
	bits := 32
	if a.Is6() {
		bits = 128
	}
	args := []string{"ip", "addr", "add", fmt.Sprintf("%s/%d", a, bits), "dev", dev}
	if a.Is6() {
		args = append(args, "nodad")
	}
	_, err := l.Director.Exec(args[0], args[1:]...)
	return err
}
