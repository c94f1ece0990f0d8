package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
)

// managedVIPs are the VIP addresses govsd added to its interfaces
// (director.manage_vips) and removes on exit.
type managedVIPs struct {
	log   *slog.Logger
	added map[netip.Addr]netlink.Link
	// adoptExisting: a VIP already on its interface was added by the
	// govsd whose state this one adopted (a restart), so it is ours to
	// remove; otherwise it is someone else's.
	adoptExisting bool
}

// vipInterface picks the interface a VIP belongs on: the served interface
// whose subnet contains it, else the first served interface (the one
// facing the clients, by convention).
func vipInterface(vip netip.Addr, ifaces []string) (netlink.Link, error) {
	var first netlink.Link
	for _, name := range ifaces {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		if first == nil {
			first = link
		}
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if ones, bits := a.Mask.Size(); ones < bits && a.IPNet.Contains(vip.AsSlice()) {
				return link, nil
			}
		}
	}
	return first, nil
}

func newManagedVIPs(log *slog.Logger) *managedVIPs {
	return &managedVIPs{log: log, added: map[netip.Addr]netlink.Link{}}
}

// sync adds every wanted VIP (as a /32 or /128) that govsd has not added
// yet, announcing it, and removes those it added that are no longer wanted.
func (m *managedVIPs) sync(vips []netip.Addr, ifaces []string) error {
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	for vip := range m.added {
		if !want[vip] {
			m.del(vip)
		}
	}
	for vip := range want {
		if _, done := m.added[vip]; done {
			continue
		}
		link, err := vipInterface(vip, ifaces)
		if err != nil {
			return err
		}
		bits := vip.BitLen()
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
		if vip.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			if errors.Is(err, unix.EEXIST) {
				if m.adoptExisting {
					m.added[vip] = link
				}
				// Otherwise someone else's address: not ours to remove later.
				continue
			}
			return fmt.Errorf("add vip %s to %s: %w", vip, link.Attrs().Name, err)
		}
		m.added[vip] = link
		if err := announce(link, vip); err != nil {
			m.log.Warn("vip announcement failed", "vip", vip.String(), "iface", link.Attrs().Name, "err", err)
		}
		m.log.Info("vip added", "vip", vip.String(), "iface", link.Attrs().Name)
	}
	return nil
}

func (m *managedVIPs) del(vip netip.Addr) {
	link := m.added[vip]
	delete(m.added, vip)
	bits := vip.BitLen()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if err := netlink.AddrDel(link, addr); err != nil {
		m.log.Warn("remove vip", "vip", vip.String(), "err", err)
		return
	}
	m.log.Info("vip removed", "vip", vip.String(), "iface", link.Attrs().Name)
}

// removeAll deletes every VIP govsd added (at exit).
func (m *managedVIPs) removeAll() {
	for vip := range m.added {
		m.del(vip)
	}
}

// announce tells the segment that the VIP is here now: a gratuitous ARP
// request for IPv4, an unsolicited neighbour advertisement (override) for
// IPv6, so that neighbours update their caches at once (after a failover).
func announce(link netlink.Link, vip netip.Addr) error {
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return errors.New("not an Ethernet interface")
	}
	var frame []byte
	var proto uint16
	if vip.Is4() {
		frame, proto = garp([6]byte(mac), vip.As4()), unix.ETH_P_ARP
	} else {
		frame, proto = unsolicitedNA([6]byte(mac), vip), unix.ETH_P_IPV6
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: link.Attrs().Index, Halen: 6}
	copy(sa.Addr[:], frame[:6])
	return unix.Sendto(fd, frame, 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func garp(mac [6]byte, ip [4]byte) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac[:])
	copy(a[14:18], ip[:])
	copy(a[24:28], ip[:]) // target = sender: gratuitous
	return f
}

func unsolicitedNA(mac [6]byte, ip netip.Addr) []byte {
	const icmpLen = 32 // NA header 24 + target link-layer address option 8
	f := make([]byte, 14+40+icmpLen)
	copy(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) // all-nodes multicast
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	h := f[14:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], icmpLen)
	h[6], h[7] = packet.ProtoICMPv6, 255
	src, dst := inet.AddrFromNetip(ip), inet.AddrFromNetip(netip.MustParseAddr("ff02::1"))
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	m := h[40:]
	m[0] = 136            // neighbour advertisement
	m[4] = 0x20           // override
	copy(m[8:24], src[:]) // target address
	m[24], m[25] = 2, 1   // target link-layer address option, 8 bytes
	copy(m[26:32], mac[:])
	sum := packet.PseudoHeaderSum(6, &src, &dst, packet.ProtoICMPv6, icmpLen)
	binary.BigEndian.PutUint16(m[2:], packet.Checksum(m, sum))
	return f
}
