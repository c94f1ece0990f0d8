package neighbor

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Sizes of the frames.
const (
	ethHeaderLen  = 14
	arpLen        = 28 // Ethernet/IPv4 ARP
	ipv6HeaderLen = 40
	// naLen is the neighbour advertisement: its 24-byte header and the
	// 8-byte target link-layer address option.
	naLen = 32

	// GratuitousARPLen and UnsolicitedNALen are the lengths of the frames.
	GratuitousARPLen = ethHeaderLen + arpLen
	UnsolicitedNALen = ethHeaderLen + ipv6HeaderLen + naLen
)

var (
	broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC and allNodes are the IPv6 all-nodes multicast group
	// (ff02::1) and its Ethernet address.
	allNodesMAC = [6]byte{0x33, 0x33, 0, 0, 0, 1}
	allNodes    = netip.MustParseAddr("ff02::1")
)

// ARP and ICMPv6 field values.
const (
	arpHardwareEthernet = 1
	arpOpRequest        = 1

	icmpv6NeighborAdvert = 136
	naFlagOverride       = 0x20 // in the first flags byte: R=0x80, S=0x40, O=0x20
	ndOptTargetLLAddr    = 2
	ndHopLimit           = 255 // RFC 4861: receivers drop ND with any other
)

// Frame returns the announcement of ip from the interface whose address is
// mac (a gratuitous ARP for IPv4, an unsolicited neighbour advertisement
// for IPv6) and its EtherType.
func Frame(mac [6]byte, ip netip.Addr) (frame []byte, etherType uint16) {
	if ip.Is4() {
		return GratuitousARP(mac, ip.As4()), unix.ETH_P_ARP
	}
	return UnsolicitedNA(mac, ip), unix.ETH_P_IPV6
}

// GratuitousARP returns a broadcast ARP request in which mac asks for ip,
// its own address: target and sender protocol addresses are both ip, as in
// RFC 5227's ARP announcement.
func GratuitousARP(mac [6]byte, ip [4]byte) []byte {
	f := make([]byte, GratuitousARPLen)
	copy(f[0:6], broadcastMAC[:])
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	a := f[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:], arpHardwareEthernet)
	binary.BigEndian.PutUint16(a[2:], unix.ETH_P_IP)
	a[4], a[5] = 6, 4 // address lengths
	binary.BigEndian.PutUint16(a[6:], arpOpRequest)
	copy(a[8:14], mac[:])
	copy(a[14:18], ip[:])
	// The target hardware address stays zero: it is what a request asks.
	copy(a[24:28], ip[:])
	return f
}

// UnsolicitedNA returns a neighbour advertisement of ip (an IPv6 address)
// at mac, sent from ip to all nodes with the override flag, so that
// existing cache entries are replaced.
func UnsolicitedNA(mac [6]byte, ip netip.Addr) []byte {
	f := make([]byte, UnsolicitedNALen)
	copy(f[0:6], allNodesMAC[:])
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	h := f[ethHeaderLen:]
	h[0] = 0x60 // version 6
	binary.BigEndian.PutUint16(h[4:], naLen)
	h[6], h[7] = uint8(lvs.ProtoICMPv6), ndHopLimit
	src, dst := inet.AddrFromNetip(ip), inet.AddrFromNetip(allNodes)
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	m := h[ipv6HeaderLen:]
	m[0] = icmpv6NeighborAdvert
	m[4] = naFlagOverride
	copy(m[8:24], src[:])               // the target address
	m[24], m[25] = ndOptTargetLLAddr, 1 // option length in units of 8 bytes
	copy(m[26:32], mac[:])
	sum := packet.PseudoHeaderSum(6, &src, &dst, lvs.ProtoICMPv6, naLen)
	binary.BigEndian.PutUint16(m[2:], packet.Checksum(m, sum))
	return f
}
