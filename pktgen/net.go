package pktgen

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Benchmarking address blocks (RFC 2544, RFC 3849): the only destinations a
// generator sends to unless told otherwise.
var (
	BenchPrefix4 = netip.MustParsePrefix("198.18.0.0/15")
	BenchPrefix6 = netip.MustParsePrefix("2001:db8::/32")
)

// CheckDestinations refuses destinations outside BenchPrefix4 and
// BenchPrefix6, so that a typo cannot flood a production address.
func CheckDestinations(dsts []netip.AddrPort) error {
	for _, d := range dsts {
		a := d.Addr().Unmap()
		if !BenchPrefix4.Contains(a) && !BenchPrefix6.Contains(a) {
			return fmt.Errorf("destination %v is outside %v and %v", d, BenchPrefix4, BenchPrefix6)
		}
	}
	return nil
}

// initNetInode is the inode number of the initial network namespace on
// kernels that give it a fixed one (PROC_NET_INIT_INO); dynamically
// allocated namespace inodes start at 0xF0000000, so it never names another.
const initNetInode = 0xEFFFFFF9

// InInitialNetns reports whether the calling thread is in the initial
// network namespace, that is, on the host's real network rather than in a
// namespace of its own. It compares the thread's namespace with PID 1's;
// where PID 1's is not readable (a container, a locked-down /proc), it
// falls back on the fixed inode of the initial namespace and on the named
// namespaces of `ip netns`, and returns an error if it still cannot tell.
func InInitialNetns() (bool, error) {
	var self, init unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &self); err != nil {
		return false, fmt.Errorf("stat own network namespace: %w", err)
	}
	err := unix.Stat("/proc/1/ns/net", &init)
	if err == nil {
		return self.Dev == init.Dev && self.Ino == init.Ino, nil
	}
	if self.Ino == initNetInode {
		return true, nil
	}
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			var named unix.Stat_t
			if unix.Stat(dir+"/"+e.Name(), &named) == nil && named.Dev == self.Dev && named.Ino == self.Ino {
				return false, nil
			}
		}
	}
	return false, fmt.Errorf("cannot tell whether this is the initial network namespace: %w", err)
}

// ParseSrc parses a source address, an inclusive range "A-B", or a prefix
// "A/n" (every address in it), and returns the first address and the count.
// Addresses count in the last 32 bits, so a range may not cross them.
func ParseSrc(s string) (first netip.Addr, count uint32, err error) {
	s = strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("source range %q: %w", s, err)
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("source range %q: %w", s, err)
		}
		a, b = a.Unmap(), b.Unmap()
		if a.Is4() != b.Is4() || b.Less(a) {
			return netip.Addr{}, 0, fmt.Errorf("source range %q: want two addresses of one family, lowest first", s)
		}
		a16, b16 := a.As16(), b.As16()
		if [12]byte(a16[:12]) != [12]byte(b16[:12]) {
			return netip.Addr{}, 0, fmt.Errorf("source range %q spans more than the last 32 bits", s)
		}
		n := uint64(be32(b16[12:])) - uint64(be32(a16[12:])) + 1
		if n > math.MaxUint32 {
			return netip.Addr{}, 0, fmt.Errorf("source range %q is too large", s)
		}
		return a, uint32(n), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("source prefix %q: %w", s, err)
		}
		p = p.Masked()
		hostBits := p.Addr().BitLen() - p.Bits()
		if hostBits > 31 {
			return netip.Addr{}, 0, fmt.Errorf("source prefix %q is too large (at most 2^31 addresses)", s)
		}
		return p.Addr().Unmap(), uint32(1) << hostBits, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("source %q: %w", s, err)
	}
	return a.Unmap(), 1, nil
}

// NeighbourMAC returns the link-layer address of the next hop toward dst
// out of the interface ifindex, in the calling thread's network namespace:
// the route's gateway or, on a connected route, dst itself. If the kernel
// has not resolved it yet, a datagram to its discard port makes it, and
// NeighbourMAC waits up to timeout for the answer.
func NeighbourMAC(ifindex int, dst netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	dst = dst.Unmap()
	hop := dst
	routes, err := netlink.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{OifIndex: ifindex})
	if err != nil {
		return nil, fmt.Errorf("route to %v: %w", dst, err)
	}
	if len(routes) > 0 && routes[0].Gw != nil {
		if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok {
			hop = gw.Unmap()
		}
	}
	family := netlink.FAMILY_V4
	network := "udp4"
	if hop.Is6() {
		family, network = netlink.FAMILY_V6, "udp6"
	}
	deadline := time.Now().Add(timeout)
	poked := false
	for {
		neighs, err := netlink.NeighList(ifindex, family)
		if err != nil {
			return nil, fmt.Errorf("neighbours of ifindex %d: %w", ifindex, err)
		}
		for _, n := range neighs {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || ip.Unmap() != hop || len(n.HardwareAddr) != 6 {
				continue
			}
			if n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
				return n.HardwareAddr, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("neighbour %v on ifindex %d is not resolved (give the MAC explicitly)", hop, ifindex)
		}
		if !poked {
			if err := poke(network, hop); err != nil {
				return nil, err
			}
			poked = true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poke sends one empty datagram to the discard port of hop, which makes the
// kernel resolve hop's link-layer address.
func poke(network string, hop netip.Addr) error {
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(hop, 9)))
	if err != nil {
		return fmt.Errorf("resolve neighbour %v: %w", hop, err)
	}
	defer c.Close()
	if _, err := c.Write(nil); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("resolve neighbour %v: %w", hop, err)
	}
	return nil
}

// InterfaceTxPackets returns the transmit counter of an interface in the
// calling thread's network namespace.
func InterfaceTxPackets(ifindex int) (uint64, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0, fmt.Errorf("link %d: %w", ifindex, err)
	}
	if st := l.Attrs().Statistics; st != nil {
		return st.TxPackets, nil
	}
	return 0, fmt.Errorf("link %d has no statistics", ifindex)
}
