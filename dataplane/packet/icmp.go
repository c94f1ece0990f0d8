package packet

import (
	"encoding/binary"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Quote limits for the ICMP errors we originate: RFC 1812 section 4.3.2.3
// (as much as fits in 576 bytes) and RFC 4443 section 2.4 (c) (as much as
// fits in the minimum IPv6 MTU, 1280).
const (
	maxICMPv4Error = 576
	maxICMPv6Error = 1280
	minIPv4MTU     = 68
	minIPv6MTU     = 1280
	icmpv4DSCP     = 0xc0 // precedence "internetwork control", as routers send ICMP
)

// BuildFragNeeded builds in out a complete Ethernet frame answering the
// packet orig (described by p, from Parse) with an ICMP "fragmentation
// needed" (type 3 code 4, RFC 1191) for IPv4 or an ICMPv6 "packet too big"
// (type 2, RFC 4443 section 3.2) for IPv6, from address from (the VIP, of
// the packet's family) to the packet's source, and returns its length. It is
// what the director sends when a packet would exceed the egress MTU after
// encapsulation.
//
// mtu is the largest IP packet the sender may send on this path (the
// egress MTU minus EncapOverhead for a tunnel); it is raised to 68 (IPv4) or
// 1280 (IPv6) if lower. The quote is the original IP packet cut to make the
// error at most 576 (IPv4) or 1280 (IPv6) bytes of IP. The frame keeps the
// original's VLAN tags (the answer leaves where the packet came in); the
// MACs are dstMAC and srcMAC. All checksums are computed. out must not
// overlap orig.
//
// It refuses (ErrNoICMPError) to answer ICMP errors, later fragments,
// packets from an unspecified, multicast, broadcast or loopback source, and
// IPv4 packets to a multicast or broadcast destination. Whether IPv4 DF was
// set is the caller's decision.
func BuildFragNeeded(out []byte, orig []byte, p *Parsed, mtu int, from inet.Addr, srcMAC, dstMAC [6]byte) (int, error) {
	if !fits(p, len(orig)) || p.L3Off < EthHeaderLen || from.Is4() != (p.Family == 4) {
		return 0, ErrBadArgument
	}
	if !mayAnswerWithICMPError(orig, p) {
		return 0, ErrNoICMPError
	}
	v4 := p.Family == 4
	ipHdr, limit := IPv6HeaderLen, maxICMPv6Error
	if v4 {
		ipHdr, limit = IPv4HeaderLen, maxICMPv4Error
		mtu = max(mtu, minIPv4MTU)
		mtu = min(mtu, 0xffff)
	} else {
		mtu = max(mtu, minIPv6MTU)
	}
	quote := min(p.L3Len, limit-ipHdr-ICMPHeaderLen)
	l3 := p.L3Off // same VLAN tags as the original
	icmpOff := l3 + ipHdr
	total := icmpOff + ICMPHeaderLen + quote
	if len(out) < total {
		return 0, ErrShortBuffer
	}
	copy(out[0:6], dstMAC[:])
	copy(out[6:12], srcMAC[:])
	// VLAN tags and the ethertype: the answer is of the same family.
	copy(out[12:l3], orig[12:l3])

	ic := out[icmpOff:total]
	copy(ic[ICMPHeaderLen:], orig[p.L3Off:p.L3Off+quote])
	ic[2], ic[3] = 0, 0
	h := out[l3:icmpOff]
	if v4 {
		h[0] = 0x45
		h[1] = icmpv4DSCP
		binary.BigEndian.PutUint16(h[2:], uint16(total-l3))
		binary.BigEndian.PutUint32(h[4:], ipv4FlagDF) // id 0, DF: an atomic datagram (RFC 6864)
		h[8] = originTTL
		h[9] = uint8(lvs.ProtoICMP)
		h[10], h[11] = 0, 0
		copy(h[12:16], from[12:])
		copy(h[16:20], p.Src[12:])
		binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
		ic[0], ic[1] = 3, 4
		binary.BigEndian.PutUint32(ic[4:], uint32(mtu)) // 16 bits unused, 16 bits next-hop MTU
		binary.BigEndian.PutUint16(ic[2:], Checksum(ic, 0))
	} else {
		binary.BigEndian.PutUint32(h[0:], 6<<28)
		binary.BigEndian.PutUint16(h[4:], uint16(len(ic)))
		h[6] = uint8(lvs.ProtoICMPv6)
		h[7] = originTTL
		copy(h[8:24], from[:])
		copy(h[24:40], p.Src[:])
		ic[0], ic[1] = 2, 0
		binary.BigEndian.PutUint32(ic[4:], uint32(mtu))
		binary.BigEndian.PutUint16(ic[2:], Checksum(ic, PseudoHeaderSum(6, &from, &p.Src, lvs.ProtoICMPv6, len(ic))))
	}
	return total, nil
}

// mayAnswerWithICMPError applies RFC 1122 section 3.2.2 and RFC 4443
// section 2.4 (e): no ICMP error about an ICMP error (or an IPv6 redirect),
// a non-initial fragment, or a packet whose source does not name one host.
func mayAnswerWithICMPError(orig []byte, p *Parsed) bool {
	if p.Frag == FragLater {
		return false
	}
	if p.Family == 4 {
		if p.Proto == lvs.ProtoICMP {
			switch p.ICMPType {
			case 3, 4, 5, 11, 12:
				return false
			}
		}
		s, d := p.Src.As4(), p.Dst.As4()
		switch {
		case s == [4]byte{} || s == [4]byte{255, 255, 255, 255} || s[0] == 127 || s[0]&0xf0 >= 0xe0:
			return false
		case d == [4]byte{255, 255, 255, 255} || d[0]&0xf0 == 0xe0:
			return false
		}
		return true
	}
	if p.Proto == lvs.ProtoICMPv6 && (p.ICMPType < 128 || p.ICMPType == 137) {
		return false
	}
	loopback := inet.Addr{15: 1}
	return !p.Src.IsZero() && p.Src[0] != 0xff && p.Src != loopback && !p.Src.Is4()
}

// RewriteICMPError translates an ICMP or ICMPv6 error (p.Inner.Valid) so
// that its receiver recognises the packet it quotes, as IPVS does for
// "related" ICMP. It rewrites, in place:
//
//   - the outer source address to *outerSrc and the outer destination to
//     *outerDst, each unless nil;
//   - the quoted packet's source to innerSrc:innerSport and destination to
//     innerDst:innerDport (ports only when p.Inner.HasPorts; pass the current
//     values for an endpoint that stays);
//
// and keeps consistent, incrementally: the outer IPv4 header checksum, the
// quoted IPv4 header checksum, the quoted TCP, UDP or ICMPv6 checksum when
// the quote contains it whole (an IPv4 UDP checksum 0 stays 0), and the
// ICMP checksum (ICMPv6: with the pseudo-header of the new outer addresses).
// Fields cut off by the quote are left alone. The quoted SCTP CRC32c cannot
// be fixed from a partial quote and is left as it is. p is updated.
//
// Typical uses (c = client, v = virtual, r = real server, l = local
// address of full-NAT; "about X" is the quoted packet as received):
//
//	NAT, from the client side, about v:vport->c:cport:       outerDst=&r,              inner r:rport->c:cport
//	NAT, from the real-server side, about c:cport->r:rport:  outerSrc=&v,              inner c:cport->v:vport
//	full-NAT, client side, about v:vport->c:cport:           outerSrc=&l, outerDst=&r, inner r:rport->l:lport
//	full-NAT, real-server side, about l:lport->r:rport:      outerSrc=&v, outerDst=&c, inner c:cport->v:vport
//
// All addresses must be of the packet's family.
func RewriteICMPError(frame []byte, p *Parsed, outerSrc, outerDst *inet.Addr, innerSrc inet.Addr, innerSport uint16, innerDst inet.Addr, innerDport uint16) error {
	if !icmpErrorRewritable(frame, p, outerSrc, outerDst, &innerSrc, &innerDst) {
		return ErrBadArgument
	}
	in := &p.Inner
	end := p.L3Off + p.L3Len
	if outerSrc == nil {
		outerSrc = &p.Src
	}
	if outerDst == nil {
		outerDst = &p.Dst
	}
	oSrcOff, oDstOff, alen := addrOffsets(p)
	iSrcOff, iDstOff := in.L3Off+(oSrcOff-p.L3Off), in.L3Off+(oDstOff-p.L3Off)
	first := 16 - alen

	// Differences, read before anything is written. icmpDelta collects every
	// word changed inside the ICMP message; all of them sit at even offsets
	// from its start, so they patch the ICMP checksum directly.
	outerDelta := deltaBytes(0, frame[oSrcOff:oSrcOff+alen], outerSrc[first:])
	outerDelta = deltaBytes(outerDelta, frame[oDstOff:oDstOff+alen], outerDst[first:])
	innerAddrDelta := deltaBytes(0, frame[iSrcOff:iSrcOff+alen], innerSrc[first:])
	innerAddrDelta = deltaBytes(innerAddrDelta, frame[iDstOff:iDstOff+alen], innerDst[first:])
	icmpDelta := innerAddrDelta

	var portDelta uint64
	ports := in.HasPorts && in.L4Off+4 <= end
	if ports {
		portDelta = uint64(^binary.BigEndian.Uint16(frame[in.L4Off:])) + uint64(innerSport) +
			uint64(^binary.BigEndian.Uint16(frame[in.L4Off+2:])) + uint64(innerDport)
		icmpDelta += portDelta
	}
	sums := quotedChecksums(frame, p, innerAddrDelta, portDelta, ports)
	icmpDelta += sums.icmpDelta
	if p.Family == 6 {
		icmpDelta += outerDelta // the ICMPv6 pseudo-header
	}

	// Write.
	if p.Family == 4 {
		c := binary.BigEndian.Uint16(frame[p.L3Off+10:])
		binary.BigEndian.PutUint16(frame[p.L3Off+10:], applyDelta(c, outerDelta))
	}
	c := binary.BigEndian.Uint16(frame[p.L4Off+2:])
	binary.BigEndian.PutUint16(frame[p.L4Off+2:], applyDelta(c, icmpDelta))
	sums.write(frame)
	if ports {
		binary.BigEndian.PutUint16(frame[in.L4Off:], innerSport)
		binary.BigEndian.PutUint16(frame[in.L4Off+2:], innerDport)
		in.SrcPort, in.DstPort = innerSport, innerDport
	}
	copy(frame[oSrcOff:oSrcOff+alen], outerSrc[first:])
	copy(frame[oDstOff:oDstOff+alen], outerDst[first:])
	copy(frame[iSrcOff:iSrcOff+alen], innerSrc[first:])
	copy(frame[iDstOff:iDstOff+alen], innerDst[first:])
	p.Src, p.Dst = *outerSrc, *outerDst
	in.Src, in.Dst = innerSrc, innerDst
	return nil
}

// icmpErrorRewritable reports whether RewriteICMPError can rewrite the
// ICMP error of frame, parsed in p, with the given addresses (nil: kept):
// the quote was parsed, sits where the outer headers say, and every
// address is of the packet's family.
func icmpErrorRewritable(frame []byte, p *Parsed, addrs ...*inet.Addr) bool {
	if !fits(p, len(frame)) || !p.Inner.Valid {
		return false
	}
	v4 := p.Family == 4
	for _, a := range addrs {
		if a != nil && a.Is4() != v4 {
			return false
		}
	}
	in := &p.Inner
	inHdr := IPv4HeaderLen
	if !v4 {
		inHdr = IPv6HeaderLen
	}
	return in.Family == p.Family && in.L3Off == p.L4Off+ICMPHeaderLen && in.L4Off >= in.L3Off+inHdr &&
		in.L4Off <= p.L3Off+p.L3Len
}

// quoteSums are the new checksums of the packet an ICMP error quotes, and
// what writing them changes in the ICMP checksum. An offset below 0: that
// checksum is not rewritten.
type quoteSums struct {
	ipOff, l4Off int
	ip, l4       uint16
	icmpDelta    uint64
}

// quotedChecksums computes the quoted IPv4 header checksum and the quoted
// TCP, UDP or ICMPv6 checksum (when the quote holds it whole) after the
// quote's addresses change by addrDelta and, with ports, its ports by
// portDelta. An IPv4 UDP checksum 0 (none) stays 0.
func quotedChecksums(frame []byte, p *Parsed, addrDelta, portDelta uint64, ports bool) quoteSums {
	in := &p.Inner
	end := p.L3Off + p.L3Len
	v4 := p.Family == 4
	sums := quoteSums{ipOff: -1, l4Off: -1}
	if v4 {
		sums.ipOff = in.L3Off + 10
		old := binary.BigEndian.Uint16(frame[sums.ipOff:])
		sums.ip = applyDelta(old, addrDelta)
		sums.icmpDelta += uint64(^old) + uint64(sums.ip)
	}
	if in.Frag == FragLater {
		return sums
	}
	off, udp := -1, false
	switch in.Proto {
	case lvs.ProtoTCP:
		off = in.L4Off + 16
	case lvs.ProtoUDP:
		off, udp = in.L4Off+6, true
	case lvs.ProtoICMPv6:
		if !v4 {
			off = in.L4Off + 2
		}
	}
	if off < 0 || off+2 > end {
		return sums
	}
	old := binary.BigEndian.Uint16(frame[off:])
	if udp && v4 && old == 0 {
		return sums
	}
	d := addrDelta
	if in.Proto != lvs.ProtoICMPv6 && ports {
		d += portDelta
	}
	sums.l4 = applyDelta(old, d)
	if udp && sums.l4 == 0 {
		sums.l4 = 0xffff
	}
	sums.l4Off = off
	sums.icmpDelta += uint64(^old) + uint64(sums.l4)
	return sums
}

// write stores the new checksums into frame.
func (q *quoteSums) write(frame []byte) {
	if q.ipOff >= 0 {
		binary.BigEndian.PutUint16(frame[q.ipOff:], q.ip)
	}
	if q.l4Off >= 0 {
		binary.BigEndian.PutUint16(frame[q.l4Off:], q.l4)
	}
}
