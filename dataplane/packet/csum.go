package packet

import (
	"encoding/binary"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// The checksum helpers work on the value as it is stored in a header: the
// one's complement of the one's-complement sum of the covered 16-bit words.
// Incremental updates follow RFC 1624 equation 3, HC' = ~(~HC + ~m + m'),
// which, unlike the equation of RFC 1141, never produces a wrong -0 result.

// fold reduces a 32-bit accumulator of 16-bit words to a 16-bit
// one's-complement sum.
func fold(s uint64) uint16 {
	s = (s & 0xffffffff) + (s >> 32)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return uint16(s)
}

// UpdateChecksum16 returns the checksum csum after one covered 16-bit word
// changed from old to new.
func UpdateChecksum16(csum, old, new uint16) uint16 {
	return ^fold(uint64(^csum) + uint64(^old) + uint64(new))
}

// UpdateChecksum32 returns the checksum csum after two adjacent, aligned
// covered 16-bit words changed from old to new (an IPv4 address, or two
// ports read as one big-endian 32-bit value).
func UpdateChecksum32(csum uint16, old, new uint32) uint16 {
	s := uint64(^csum) +
		uint64(^uint16(old>>16)) + uint64(^uint16(old)) +
		uint64(uint16(new>>16)) + uint64(uint16(new))
	return ^fold(s)
}

// UpdateChecksumBytes returns the checksum csum after the covered bytes old
// were replaced by new. Both must have the same even length and start at an
// even offset within the checksummed data (addresses always do). old may be
// the frame itself: it is read before the caller overwrites it.
func UpdateChecksumBytes(csum uint16, old, new []byte) uint16 {
	s := uint64(^csum)
	n := min(len(old), len(new)) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint64(^binary.BigEndian.Uint16(old[i:])) + uint64(binary.BigEndian.Uint16(new[i:]))
	}
	return ^fold(s)
}

// UpdateChecksumAddr16 is UpdateChecksumBytes for a 16-byte IPv6 address.
func UpdateChecksumAddr16(csum uint16, old []byte, new *inet.Addr) uint16 {
	o := old[:16]
	s := uint64(^csum)
	for i := 0; i < 16; i += 4 {
		ov := binary.BigEndian.Uint32(o[i:])
		nv := binary.BigEndian.Uint32(new[i:])
		s += uint64(^uint16(ov>>16)) + uint64(^uint16(ov)) + uint64(nv>>16) + uint64(nv&0xffff)
	}
	return ^fold(s)
}

// Sum returns the 32-bit-or-wider running one's-complement sum of b added to
// initial, not yet folded nor complemented. An odd trailing byte is padded
// with zero, as RFC 1071 says.
func Sum(b []byte, initial uint64) uint64 {
	s := initial
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v >> 32
		s += v & 0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// Checksum returns the Internet checksum of b with initial already summed in
// (for example a pseudo-header sum), ready to store in a header.
func Checksum(b []byte, initial uint64) uint16 {
	return ^fold(Sum(b, initial))
}

// PseudoHeaderSum returns the unfolded sum of the TCP/UDP/ICMPv6
// pseudo-header: the IPv4 one (RFC 793) when family is 4, the IPv6 one
// (RFC 8200 section 8.1) otherwise. length is the upper-layer length.
func PseudoHeaderSum(family uint8, src, dst *inet.Addr, proto lvs.Proto, length int) uint64 {
	var s uint64
	if family == 4 {
		s = Sum(src[12:16], 0)
		s = Sum(dst[12:16], s)
	} else {
		s = Sum(src[:], 0)
		s = Sum(dst[:], s)
	}
	s += uint64(proto)
	s += uint64(uint32(length)>>16) + uint64(uint32(length)&0xffff)
	return s
}

// FinishL4Checksum completes the TCP or UDP checksum of the packet p
// describes when it is unfinished, and reports whether it did. A sender
// with transmit checksum offload (a veth or a tap with its default
// offloads, as in containers) hands its frames over with the checksum
// field holding only the folded pseudo-header sum, not complemented
// (CHECKSUM_PARTIAL: the rest is left to the NIC), and XDP sees them so.
// Such a field equals the folded pseudo-header sum of the packet; the
// checksum is then computed over the transport header and payload, which
// is also right for a complete checksum that happens to equal that sum,
// since the field already holds the pseudo-header's share. An IPv4 UDP
// checksum of 0 (none) is left alone, and so are fragments (the checksum
// covers the whole datagram) and everything but TCP and UDP.
// It allocates nothing.
func FinishL4Checksum(frame []byte, p *Parsed) bool {
	var field int
	switch p.Proto {
	case lvs.ProtoTCP:
		field = 16
	case lvs.ProtoUDP:
		field = 6
	default:
		return false
	}
	end := p.L3Off + p.L3Len
	if p.Frag != FragNone || end > len(frame) || p.L4Off+field+2 > end {
		return false
	}
	l4 := frame[p.L4Off:end]
	cur := binary.BigEndian.Uint16(l4[field:])
	if cur == 0 || cur != fold(PseudoHeaderSum(p.Family, &p.Src, &p.Dst, p.Proto, len(l4))) {
		return false
	}
	// The field holds the pseudo-header sum: summing it with the rest
	// gives the full sum.
	c := ^fold(Sum(l4, 0))
	if c == 0 && p.Proto == lvs.ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[field:], c)
	return true
}
