package packet

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SetMACs writes the Ethernet destination and source addresses. Frames
// shorter than the two addresses are left alone.
func SetMACs(frame []byte, dst, src [6]byte) {
	if len(frame) < 12 {
		return
	}
	copy(frame[0:6], dst[:])
	copy(frame[6:12], src[:])
}

// DNAT rewrites the destination address, and the destination port when the
// packet has one (TCP, UDP, SCTP, not a later fragment), in place, and
// updates p to match. The IPv4 header checksum and the TCP/UDP/ICMPv6
// checksum (pseudo-header included) are updated incrementally; an IPv4 UDP
// checksum of 0 (none) stays 0 and an IPv6 UDP checksum never becomes 0. The
// SCTP CRC32c is recomputed (keeping a CRC that was wrong wrong) when the
// packet is not a fragment; an SCTP first fragment's CRC cannot be fixed
// without the rest of the datagram and is left stale.
//
// addr must be of the packet's family; otherwise, or when p does not fit
// frame, DNAT changes nothing. p must come from Parse on this frame.
func DNAT(frame []byte, p *Parsed, addr inet.Addr, port uint16) {
	rewrite(frame, p, false, true, &addr, 0, &addr, port)
}

// SNAT is DNAT for the source address and port (the reply direction of NAT).
func SNAT(frame []byte, p *Parsed, addr inet.Addr, port uint16) {
	rewrite(frame, p, true, false, &addr, port, &addr, 0)
}

// FullNAT rewrites both endpoints in one pass: source to src:sport and
// destination to dst:dport, with the same checksum handling as DNAT. It
// serves both directions of full-NAT: CIP:cport->VIP:vport becomes
// LIP:lport->RIP:rport inbound, RIP:rport->LIP:lport becomes
// VIP:vport->CIP:cport outbound. Ports are ignored for packets without
// ports.
func FullNAT(frame []byte, p *Parsed, src inet.Addr, sport uint16, dst inet.Addr, dport uint16) {
	rewrite(frame, p, true, true, &src, sport, &dst, dport)
}

// l4Layout says where the L4 checksum and ports of p are, as validated
// against frame length n. csumOff is -1 when no Internet checksum is to be
// updated (none present, ICMPv4, later fragment, IPv4 UDP without checksum
// is decided by the caller). portOff is -1 when there are no ports.
type l4Layout struct {
	csumOff   int
	portOff   int
	pseudo    bool // the checksum covers the pseudo-header (addresses)
	udp       bool
	sctp      bool
	needBytes int // frame must be at least this long
}

func layoutOf(p *Parsed) l4Layout {
	l := l4Layout{csumOff: -1, portOff: -1}
	if p.Frag == FragLater {
		return l
	}
	switch p.Proto {
	case lvs.ProtoTCP:
		l.csumOff, l.portOff, l.pseudo = p.L4Off+16, p.L4Off, true
		l.needBytes = p.L4Off + TCPHeaderLen
	case lvs.ProtoUDP:
		l.csumOff, l.portOff, l.pseudo, l.udp = p.L4Off+6, p.L4Off, true, true
		l.needBytes = p.L4Off + UDPHeaderLen
	case lvs.ProtoSCTP:
		l.portOff, l.sctp = p.L4Off, true
		l.needBytes = p.L4Off + 12
	case lvs.ProtoICMPv6:
		if p.Family == 6 {
			l.csumOff, l.pseudo = p.L4Off+2, true
			l.needBytes = p.L4Off + ICMPHeaderLen
		}
	}
	return l
}

// addrOffsets returns the offsets of the source and destination addresses
// and their length for p's family.
func addrOffsets(p *Parsed) (srcOff, dstOff, n int) {
	if p.Family == 4 {
		return p.L3Off + 12, p.L3Off + 16, 4
	}
	return p.L3Off + 8, p.L3Off + 24, 16
}

// fits reports whether the offsets in p are inside a frame of length n, so
// that a rewrite guided by p cannot index out of range even when p was not
// produced by Parse on this very frame.
func fits(p *Parsed, n int) bool {
	if p.L3Off < 0 || p.L4Off < p.L3Off || p.L3Len < 0 || p.L3Off+p.L3Len > n {
		return false
	}
	switch p.Family {
	case 4:
		return p.L3Off+IPv4HeaderLen <= n
	case 6:
		return p.L3Off+IPv6HeaderLen <= n
	}
	return false
}

// deltaBytes adds to s the one's-complement difference of replacing the
// even-length old with new (RFC 1624: ~m + m').
func deltaBytes(s uint64, old, new []byte) uint64 {
	for i := 0; i+1 < len(old) && i+1 < len(new); i += 2 {
		s += uint64(^binary.BigEndian.Uint16(old[i:])) + uint64(binary.BigEndian.Uint16(new[i:]))
	}
	return s
}

// applyDelta returns checksum csum updated by the unfolded difference sum d.
func applyDelta(csum uint16, d uint64) uint16 {
	return ^fold(uint64(^csum) + d)
}

func rewrite(frame []byte, p *Parsed, setSrc, setDst bool, src *inet.Addr, sport uint16, dst *inet.Addr, dport uint16) {
	if !fits(p, len(frame)) {
		return
	}
	v4 := p.Family == 4
	if (setSrc && src.Is4() != v4) || (setDst && dst.Is4() != v4) {
		return
	}
	l := layoutOf(p)
	if l.needBytes > p.L3Off+p.L3Len {
		return
	}
	srcOff, dstOff, alen := addrOffsets(p)
	first := 16 - alen // where the family's bytes start inside an inet.Addr

	// Sum the differences first: the old bytes are read from the frame
	// before they are overwritten.
	var addrDelta, portDelta uint64
	if setSrc {
		addrDelta = deltaBytes(addrDelta, frame[srcOff:srcOff+alen], src[first:])
	}
	if setDst {
		addrDelta = deltaBytes(addrDelta, frame[dstOff:dstOff+alen], dst[first:])
	}
	if l.portOff >= 0 {
		if setSrc {
			portDelta += uint64(^binary.BigEndian.Uint16(frame[l.portOff:])) + uint64(sport)
		}
		if setDst {
			portDelta += uint64(^binary.BigEndian.Uint16(frame[l.portOff+2:])) + uint64(dport)
		}
	}

	if v4 {
		c := binary.BigEndian.Uint16(frame[p.L3Off+10:])
		binary.BigEndian.PutUint16(frame[p.L3Off+10:], applyDelta(c, addrDelta))
	}
	if l.csumOff >= 0 {
		c := binary.BigEndian.Uint16(frame[l.csumOff:])
		if !(l.udp && v4 && c == 0) {
			d := portDelta
			if l.pseudo {
				d += addrDelta
			}
			c = applyDelta(c, d)
			if l.udp && c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(frame[l.csumOff:], c)
		}
	}

	// SCTP: CRC32c is not patchable like a sum. Fold the packet's existing
	// CRC error (normally none) into the new CRC, so that a corrupt packet
	// stays corrupt instead of being laundered: stored' = stored ^ crc(old) ^ crc(new).
	var sctpSeg []byte
	var sctpCRC uint32
	if l.sctp && l.portOff >= 0 && p.Frag == FragNone {
		sctpSeg = frame[p.L4Off : p.L3Off+p.L3Len]
		sctpCRC = binary.LittleEndian.Uint32(sctpSeg[8:])
		binary.LittleEndian.PutUint32(sctpSeg[8:], 0)
		sctpCRC ^= crc32.Checksum(sctpSeg, castagnoli)
	}

	if setSrc {
		copy(frame[srcOff:srcOff+alen], src[first:])
		p.Src = *src
	}
	if setDst {
		copy(frame[dstOff:dstOff+alen], dst[first:])
		p.Dst = *dst
	}
	if l.portOff >= 0 {
		if setSrc {
			binary.BigEndian.PutUint16(frame[l.portOff:], sport)
			p.SrcPort = sport
		}
		if setDst {
			binary.BigEndian.PutUint16(frame[l.portOff+2:], dport)
			p.DstPort = dport
		}
	}
	if sctpSeg != nil {
		binary.LittleEndian.PutUint32(sctpSeg[8:], sctpCRC^crc32.Checksum(sctpSeg, castagnoli))
	}
}
