package xsk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/testutil"
)

// Privileged test scaffolding: every test builds its own network namespaces
// (named gx<pid>-<n>) joined by veth pairs with 198.18.0.0/15 addresses, and
// deletes them at cleanup.

func requireRoot(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t, "creates network namespaces, veth pairs, XDP programs and AF_XDP sockets")
}

func sh(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var nsSeq atomic.Int32

// newNS creates a namespace with IPv6 off (no router solicitations or MLD
// reports to confuse the receive counts) and deletes it at cleanup.
func newNS(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("gx%d-%d", os.Getpid(), nsSeq.Add(1))
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "netns", "exec", name, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return name
}

// inNS runs fn on a fresh OS thread switched into namespace ns.
var inNS = testutil.InNetns

type vethEnd struct {
	ns      string
	name    string
	mac     net.HardwareAddr
	ip      netip.Addr
	ifindex int
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0x67, 0x78, last} }

// addVeth joins x and p with a veth pair, addresses and brings up both ends,
// turns TX checksum offload off (so frames carry real checksums) and gives p
// a static neighbour entry for x, since x's XDP program swallows ARP.
func addVeth(t testing.TB, x, p *vethEnd) {
	t.Helper()
	sh(t, "ip", "-n", x.ns, "link", "add", x.name, "address", x.mac.String(), "type", "veth",
		"peer", "name", p.name, "address", p.mac.String(), "netns", p.ns)
	for _, e := range []*vethEnd{x, p} {
		sh(t, "ip", "-n", e.ns, "addr", "add", e.ip.String()+"/24", "dev", e.name)
		sh(t, "ip", "-n", e.ns, "link", "set", e.name, "up")
		sh(t, "ip", "netns", "exec", e.ns, "ethtool", "-K", e.name, "tx", "off")
		err := inNS(e.ns, func() error {
			ifi, err := net.InterfaceByName(e.name)
			if err == nil {
				e.ifindex = ifi.Index
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "ip", "-n", p.ns, "neigh", "replace", x.ip.String(), "lladdr", x.mac.String(),
		"dev", p.name, "nud", "permanent")
}

// attachRedirect attaches, in native mode, the XDP program
//
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// to the interface and returns its XSKMAP.
func attachRedirect(t testing.TB, e *vethEnd) *ebpf.Map {
	t.Helper()
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		t.Fatalf("xskmap: %v", err)
	}
	t.Cleanup(func() { xsks.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // r2 = ctx->rx_queue_index
			asm.LoadMapPtr(asm.R1, xsks.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the slot is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("xdp program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	err = inNS(e.ns, func() error {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: e.ifindex, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		t.Fatalf("attach xdp to %s: %v", e.name, err)
	}
	t.Cleanup(func() { l.Close() })
	return xsks
}

func newTestUMEM(t testing.TB, frames, headroom int) *UMEM {
	t.Helper()
	u, err := NewUMEMWithHeadroom(frames, 2048, headroom)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// openSocket creates a socket inside e's namespace and, when xsks is not
// nil, registers it for queue 0.
func openSocket(t testing.TB, u *UMEM, e *vethEnd, xsks *ebpf.Map, o Options) *Socket {
	t.Helper()
	var s *Socket
	err := inNS(e.ns, func() error {
		var err error
		s, err = NewSocket(u, e.ifindex, 0, o)
		return err
	})
	if err != nil {
		t.Fatalf("socket on %s: %v", e.name, err)
	}
	t.Cleanup(func() { s.Close() })
	if xsks != nil {
		if err := xsks.Update(uint32(0), uint32(s.FD()), ebpf.UpdateAny); err != nil {
			t.Fatalf("xskmap update: %v", err)
		}
	}
	return s
}

func listenUDP(t testing.TB, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pairTopo is the common single-link setup: the AF_XDP side x (with the
// redirect program) and a peer p with ordinary sockets.
type pairTopo struct {
	x, p vethEnd
	xsks *ebpf.Map
}

func newPairTopo(t testing.TB) *pairTopo {
	t.Helper()
	requireRoot(t)
	tp := &pairTopo{
		x: vethEnd{ns: newNS(t), name: "gxv0", mac: mac(1), ip: netip.MustParseAddr("198.18.0.1")},
		p: vethEnd{ns: newNS(t), name: "gxv1", mac: mac(2), ip: netip.MustParseAddr("198.18.0.2")},
	}
	addVeth(t, &tp.x, &tp.p)
	tp.xsks = attachRedirect(t, &tp.x)
	return tp
}

// freeList is the worker-side stack of free chunk addresses; its methods do
// not allocate once it has its capacity.
type freeList struct{ addrs []uint64 }

func newFreeList(u *UMEM) *freeList {
	f := &freeList{addrs: make([]uint64, 0, u.NumFrames())}
	for i := range u.NumFrames() {
		f.addrs = append(f.addrs, u.FrameAddr(i))
	}
	return f
}

func (f *freeList) pop() (uint64, bool) {
	if len(f.addrs) == 0 {
		return 0, false
	}
	a := f.addrs[len(f.addrs)-1]
	f.addrs = f.addrs[:len(f.addrs)-1]
	return a, true
}

func (f *freeList) push(addr uint64) { f.addrs = append(f.addrs, addr) }

// fill gives up to n free chunks to s.
func (f *freeList) fill(s *Socket, n int) {
	n = min(n, len(f.addrs))
	tail := f.addrs[len(f.addrs)-n:]
	k := s.Fill(tail)
	f.addrs = append(f.addrs[:len(f.addrs)-n], tail[k:]...)
}

// udp4Frame locates the headers of an Ethernet/IPv4/UDP frame.
type udp4Frame struct {
	b      []byte
	ip     []byte
	udp    []byte
	pay    []byte
	ok     bool
	srcIP  netip.Addr
	dstIP  netip.Addr
	sport  uint16
	dport  uint16
	ipHLen int
}

func parseUDP4(b []byte) udp4Frame {
	f := udp4Frame{b: b}
	if len(b) < 14+20+8 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return f
	}
	ip := b[14:]
	hl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || hl < 20 || tot > len(ip) || tot < hl+8 || ip[9] != unix.IPPROTO_UDP {
		return f
	}
	udp := ip[hl:tot]
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return f
	}
	f.ip, f.udp, f.pay, f.ipHLen = ip[:tot], udp[:ulen], udp[8:ulen], hl
	f.srcIP = netip.AddrFrom4([4]byte(ip[12:16]))
	f.dstIP = netip.AddrFrom4([4]byte(ip[16:20]))
	f.sport = binary.BigEndian.Uint16(udp[0:])
	f.dport = binary.BigEndian.Uint16(udp[2:])
	f.ok = true
	return f
}

// rewrite sets every address of the frame and recomputes both checksums.
func (f udp4Frame) rewrite(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort) {
	copy(f.b[0:6], dstMAC)
	copy(f.b[6:12], srcMAC)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(f.ip[12:16], s4[:])
	copy(f.ip[16:20], d4[:])
	f.ip[8] = 64
	binary.BigEndian.PutUint16(f.udp[0:], src.Port())
	binary.BigEndian.PutUint16(f.udp[2:], dst.Port())
	fixChecksums(f.ip, f.ipHLen, f.udp)
}

func fixChecksums(ip []byte, hl int, udp []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip[:hl])))
	udp[6], udp[7] = 0, 0
	s := sum16(0, ip[12:20]) + unix.IPPROTO_UDP + uint32(len(udp))
	c := fold(sum16(s, udp))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pump polls the sockets until done reports true or the timeout passes,
// handing each received descriptor (with the socket it came from) to rx.
func pump(t testing.TB, socks []*Socket, timeout time.Duration, done func() bool, rx func(s *Socket, d Desc)) {
	t.Helper()
	p := NewPoller(socks)
	descs := make([]Desc, 64)
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v", timeout)
		}
		if err := p.Wait(20); err != nil {
			t.Fatalf("poll: %v", err)
		}
		for _, s := range socks {
			n := s.Receive(descs)
			for _, d := range descs[:n] {
				rx(s, d)
			}
		}
	}
}

func isErrno(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
