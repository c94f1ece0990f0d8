package packet

import (
	"encoding/binary"
	"errors"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Errors of the tunnel and ICMP builders.
var (
	// ErrNoHeadroom: the buffer has too little room before the packet for the outer headers.
	ErrNoHeadroom = errors.New("packet: no headroom for encapsulation")
	// ErrTooBig: the packet with the outer header exceeds the IPv4 total length limit.
	ErrTooBig = errors.New("packet: encapsulated packet too big")
	// ErrShortBuffer: the output buffer cannot hold the frame to build.
	ErrShortBuffer = errors.New("packet: output buffer too short")
	// ErrBadArgument: a Parsed that does not describe the frame, or an address of the wrong family.
	ErrBadArgument = errors.New("packet: argument does not match the packet")
	// ErrNoICMPError: RFC 1122 / RFC 4443 forbid an ICMP error about this packet
	// (an ICMP error, a later fragment, a multicast, broadcast or unspecified source).
	ErrNoICMPError = errors.New("packet: no icmp error may be sent about this packet")
)

// EncapOverhead returns how many bytes tunnel encapsulation adds to an IP
// packet for an outer header of family 4 or 6 (the Ethernet header is
// replaced, not added). A packet of L3Len bytes fits a path of MTU m when
// L3Len + EncapOverhead(outer) <= m.
func EncapOverhead(family uint8) int {
	if family == 4 {
		return IPv4HeaderLen
	}
	return IPv6HeaderLen
}

// TTL of outer headers and of the ICMP errors we originate.
const originTTL = 64

// Encap turns the Ethernet frame at chunk[off:off+length], described by p
// (from Parse on that frame), into an IP-in-IP frame for LVS-TUN, in place:
// the old Ethernet and VLAN headers and any Ethernet padding are dropped, and
// a new Ethernet header (MACs zero, for SetMACs; ethertype of the outer
// family) and an outer IP header are written in the headroom before the
// inner IP packet. It returns where the new frame starts in chunk and its
// length.
//
// The outer family is that of outerSrc and outerDst (both the same); the
// inner packet may be of either family (protocol 4 for IPv4 inside, 41 for
// IPv6 inside, as the kernel's ipip and ip6_tunnel devices expect). Outer
// IPv4: TTL 64, DF copied from an inner IPv4 header (set for IPv6 inside,
// which routers never fragment), identification ipID (the caller keeps a
// per-worker counter), DSCP copied and ECN encapsulated as RFC 6040 normal
// mode says, header checksum computed. Outer IPv6: hop limit 64, traffic
// class likewise, flow label from FlowLabel(p) for ECMP entropy.
//
// Encap does not check the MTU: compare p.L3Len+EncapOverhead(outer
// family) with the egress MTU first, and answer with BuildFragNeeded.
// p is left describing the inner packet at its old offsets: re-Parse the
// new frame if needed (it parses as an IPIP packet).
func Encap(chunk []byte, off, length int, p *Parsed, outerSrc, outerDst inet.Addr, ipID uint16) (newOff, newLen int, err error) {
	if off < 0 || length < 0 || off+length > len(chunk) || off+length < off || !fits(p, length) {
		return 0, 0, ErrBadArgument
	}
	v4 := outerSrc.Is4()
	if outerDst.Is4() != v4 {
		return 0, 0, ErrBadArgument
	}
	hdr := EncapOverhead(6)
	if v4 {
		hdr = EncapOverhead(4)
	}
	inner := off + p.L3Off
	newOff = inner - hdr - EthHeaderLen
	if newOff < 0 {
		return 0, 0, ErrNoHeadroom
	}
	if (v4 && p.L3Len+hdr > 0xffff) || (!v4 && p.L3Len > 0xffff) {
		return 0, 0, ErrTooBig
	}
	innerProto := lvs.ProtoIPIP
	dsfield := chunk[inner+1] // IPv4 TOS
	df := true
	if p.Family == 6 {
		innerProto = lvs.ProtoIPv6
		dsfield = chunk[inner]<<4 | chunk[inner+1]>>4 // IPv6 traffic class
	} else {
		df = binary.BigEndian.Uint16(chunk[inner+6:])&ipv4FlagDF != 0
	}
	dsfield = ecnEncapsulate(dsfield)

	f := chunk[newOff:inner]
	clear(f[:12])
	h := f[EthHeaderLen:]
	if v4 {
		binary.BigEndian.PutUint16(f[12:], EtherTypeIPv4)
		h[0] = 0x45
		h[1] = dsfield
		binary.BigEndian.PutUint16(h[2:], uint16(p.L3Len+hdr))
		binary.BigEndian.PutUint16(h[4:], ipID)
		var frag uint16
		if df {
			frag = ipv4FlagDF
		}
		binary.BigEndian.PutUint16(h[6:], frag)
		h[8] = originTTL
		h[9] = uint8(innerProto)
		h[10], h[11] = 0, 0
		copy(h[12:16], outerSrc[12:])
		copy(h[16:20], outerDst[12:])
		binary.BigEndian.PutUint16(h[10:], Checksum(h[:IPv4HeaderLen], 0))
	} else {
		binary.BigEndian.PutUint16(f[12:], EtherTypeIPv6)
		fl := FlowLabel(p)
		binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(dsfield)<<20|fl)
		binary.BigEndian.PutUint16(h[4:], uint16(p.L3Len))
		h[6] = uint8(innerProto)
		h[7] = originTTL
		copy(h[8:24], outerSrc[:])
		copy(h[24:40], outerDst[:])
	}
	return newOff, EthHeaderLen + hdr + p.L3Len, nil
}

// ecnEncapsulate returns the outer DS field for an inner one: DSCP copied,
// ECN copied except CE, which becomes ECT(0) (RFC 6040 section 4.1, normal
// mode; the kernel's INET_ECN_encapsulate).
func ecnEncapsulate(ds uint8) uint8 {
	if ds&3 == 3 {
		return ds&^3 | 2
	}
	return ds
}

// FlowLabel returns the 20-bit IPv6 flow label Encap puts in an outer IPv6
// header: a hash of the inner addresses, protocol and ports, so that ECMP
// routers keep a connection on one path and spread connections (RFC 6438).
func FlowLabel(p *Parsed) uint32 {
	h := p.Src.Hash32() ^ p.Dst.Hash32()*0x9e3779b1 ^ (uint32(p.SrcPort)<<16|uint32(p.DstPort))*0x85ebca6b ^ uint32(p.Proto)
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	return h & 0xfffff
}

// DecTTL decrements the IPv4 TTL (fixing the header checksum incrementally)
// or the IPv6 hop limit, as a router does when it forwards. It returns false
// and changes nothing when the TTL is already 1 or 0: the packet must be
// dropped (and may be answered with time exceeded).
func DecTTL(frame []byte, p *Parsed) bool {
	if !fits(p, len(frame)) {
		return false
	}
	if p.Family == 4 {
		h := frame[p.L3Off:]
		if h[8] <= 1 {
			return false
		}
		old := binary.BigEndian.Uint16(h[8:])
		h[8]--
		c := binary.BigEndian.Uint16(h[10:])
		binary.BigEndian.PutUint16(h[10:], UpdateChecksum16(c, old, binary.BigEndian.Uint16(h[8:])))
		return true
	}
	h := frame[p.L3Off:]
	if h[7] <= 1 {
		return false
	}
	h[7]--
	return true
}

// RestoreTTL undoes a DecTTL that succeeded on frame: an ICMP error quotes
// the packet as it arrived, as a Linux router's does (it answers before it
// decrements).
func RestoreTTL(frame []byte, p *Parsed) {
	if !fits(p, len(frame)) {
		return
	}
	h := frame[p.L3Off:]
	if p.Family == 4 {
		old := binary.BigEndian.Uint16(h[8:])
		h[8]++
		c := binary.BigEndian.Uint16(h[10:])
		binary.BigEndian.PutUint16(h[10:], UpdateChecksum16(c, old, binary.BigEndian.Uint16(h[8:])))
		return
	}
	h[7]++
}
