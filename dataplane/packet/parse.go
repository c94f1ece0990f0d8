package packet

import (
	"encoding/binary"
	"errors"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Sentinel errors of Parse. Callers count drops by these with errors.Is.
var (
	// ErrTruncated: the frame ends before a header (or the IP total length) it announces.
	ErrTruncated = errors.New("packet: truncated")
	// ErrNotIP: the ethertype is neither IPv4 nor IPv6 (ARP, LLDP, more than two VLAN tags, ...).
	ErrNotIP = errors.New("packet: not ip")
	// ErrBadHeader: a header field is impossible (version, header length, total length, ...).
	ErrBadHeader = errors.New("packet: bad header")
	// ErrTooManyExtHeaders: an IPv6 extension header chain longer than we walk.
	ErrTooManyExtHeaders = errors.New("packet: too many ipv6 extension headers")
)

// Ethertypes, IPv6 extension header numbers and sizes used by the parser
// and rewrites.
const (
	EtherTypeIPv4   = 0x0800
	EtherTypeIPv6   = 0x86dd
	EtherTypeVLAN   = 0x8100
	EtherTypeQinQ   = 0x88a8
	EthHeaderLen    = 14
	VLANTagLen      = 4
	IPv4HeaderLen   = 20
	IPv6HeaderLen   = 40
	TCPHeaderLen    = 20
	UDPHeaderLen    = 8
	ICMPHeaderLen   = 8
	protoHopByHop   = 0
	protoRouting    = 43
	protoFragment   = 44
	protoESP        = 50
	protoAH         = 51
	protoNoNext     = 59
	protoDestOpts   = 60
	maxExtHeaders   = 8
	ipv4FlagDF      = 0x4000
	ipv4FlagMF      = 0x2000
	ipv4OffsetMask  = 0x1fff
	ipv6FragOffMask = 0xfff8
	ipv6FragMF      = 0x0001
)

// FragKind says whether an IP packet is a fragment and which one.
type FragKind uint8

const (
	// FragNone: not a fragment.
	FragNone FragKind = iota
	// FragFirst: offset 0 with more fragments; it carries the L4 header.
	FragFirst
	// FragLater: offset > 0; there is no L4 header, so no ports.
	FragLater
)

// InnerTuple is the packet quoted inside an ICMP or ICMPv6 error message.
// The quote is often cut short: SrcPort and DstPort are filled when the
// first 4 bytes of the quoted L4 header are present, and L4Off may then
// still point at a header that is only partly in the frame.
type InnerTuple struct {
	Valid            bool
	L3Off, L4Off     int // offsets into the frame
	Family           uint8
	Proto            lvs.Proto
	Src, Dst         inet.Addr
	SrcPort, DstPort uint16
	Frag             FragKind // of the quoted packet; a later fragment has no L4 header
	// HasPorts: the quoted L4 header is TCP, UDP or SCTP, is not a later
	// fragment, and its ports are inside the quote.
	HasPorts bool
}

// Parsed describes one frame. Parse fills every field, so a Parsed can be
// reused from packet to packet without clearing.
type Parsed struct {
	L3Off, L4Off int // offsets into the frame (after up to two VLAN tags); L4Off is the payload after IPv6 extension headers
	VLANs        int
	Family       uint8     // 4 or 6
	Proto        lvs.Proto // L4 protocol, after IPv6 extension headers
	Src, Dst     inet.Addr
	SrcPort      uint16 // host order; 0 when not TCP/UDP/SCTP or a later fragment
	DstPort      uint16
	TCPFlags     lvs.TCPFlags
	L3Len        int // IP total length as the header says (IPv6: 40 + payload length); frame[L3Off:L3Off+L3Len] is in range
	Frag         FragKind
	// HasIPOptions: the IPv4 header has options, or the IPv6 header is
	// followed by extension headers before L4Off.
	HasIPOptions       bool
	ICMPType, ICMPCode uint8 // when Proto is ICMP or ICMPv6 and not a later fragment
	Inner              InnerTuple
}

// HasPorts reports whether the packet carries a TCP, UDP or SCTP header with
// ports (so not a later fragment).
func (p *Parsed) HasPorts() bool {
	return p.Frag != FragLater && (p.Proto == lvs.ProtoTCP || p.Proto == lvs.ProtoUDP || p.Proto == lvs.ProtoSCTP)
}

// IsICMPError reports whether the packet is an ICMP/ICMPv6 error message
// whose quoted packet Parse could read (p.Inner.Valid).
func (p *Parsed) IsICMPError() bool { return p.Inner.Valid }

// Parse reads the Ethernet, VLAN, IP and L4 headers of frame into p without
// allocating. frame may be longer than the IP packet (Ethernet padding); it
// must not be shorter than the IP total length. On error p is partly
// filled and must not be passed to a rewrite.
func Parse(frame []byte, p *Parsed) error {
	*p = Parsed{}
	if len(frame) < EthHeaderLen {
		return ErrTruncated
	}
	off := 12
	etype := binary.BigEndian.Uint16(frame[off:])
	off += 2
	for etype == EtherTypeVLAN || etype == EtherTypeQinQ {
		if p.VLANs == 2 {
			return ErrNotIP
		}
		if len(frame) < off+VLANTagLen {
			return ErrTruncated
		}
		etype = binary.BigEndian.Uint16(frame[off+2:])
		off += VLANTagLen
		p.VLANs++
	}
	p.L3Off = off
	var err error
	switch etype {
	case EtherTypeIPv4:
		err = parseIPv4(frame, p)
	case EtherTypeIPv6:
		err = parseIPv6(frame, p)
	default:
		return ErrNotIP
	}
	if err != nil {
		return err
	}
	if p.Frag == FragLater {
		return nil
	}
	return parseL4(frame, p)
}

func parseIPv4(frame []byte, p *Parsed) error {
	h := frame[p.L3Off:]
	if len(h) < IPv4HeaderLen {
		return ErrTruncated
	}
	if h[0]>>4 != 4 {
		return ErrBadHeader
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return ErrBadHeader
	}
	total := int(binary.BigEndian.Uint16(h[2:]))
	if total < ihl {
		return ErrBadHeader
	}
	if len(h) < total {
		return ErrTruncated
	}
	p.Family = 4
	p.L3Len = total
	p.L4Off = p.L3Off + ihl
	p.HasIPOptions = ihl > IPv4HeaderLen
	p.Proto = lvs.Proto(h[9])
	p.Src = inet.AddrFromSlice4(h[12:16])
	p.Dst = inet.AddrFromSlice4(h[16:20])
	fo := binary.BigEndian.Uint16(h[6:])
	switch {
	case fo&ipv4OffsetMask != 0:
		p.Frag = FragLater
	case fo&ipv4FlagMF != 0:
		p.Frag = FragFirst
	}
	return nil
}

func parseIPv6(frame []byte, p *Parsed) error {
	h := frame[p.L3Off:]
	if len(h) < IPv6HeaderLen {
		return ErrTruncated
	}
	if h[0]>>4 != 6 {
		return ErrBadHeader
	}
	plen := int(binary.BigEndian.Uint16(h[4:]))
	if plen == 0 {
		// A jumbogram (RFC 2675) or an empty payload: nothing we forward.
		return ErrBadHeader
	}
	total := IPv6HeaderLen + plen
	if len(h) < total {
		return ErrTruncated
	}
	p.Family = 6
	p.L3Len = total
	p.Src = inet.AddrFromSlice16(h[8:24])
	p.Dst = inet.AddrFromSlice16(h[24:40])
	proto, l4, frag, err := walkIPv6Ext(h[:total], h[6], IPv6HeaderLen)
	if err != nil {
		return err
	}
	p.Proto = lvs.Proto(proto)
	p.L4Off = p.L3Off + l4
	p.Frag = frag
	p.HasIPOptions = l4 != IPv6HeaderLen
	return nil
}

// walkIPv6Ext follows the extension header chain of the IPv6 packet pkt
// (which ends where the packet ends or the quote is cut) starting with next
// header nh at offset off. It returns the upper-layer protocol, its offset
// and the fragment kind. It stops at a later fragment, ESP and "no next
// header", which it reports as the protocol.
func walkIPv6Ext(pkt []byte, nh uint8, off int) (uint8, int, FragKind, error) {
	frag := FragNone
	for range maxExtHeaders + 1 {
		switch nh {
		case protoHopByHop, protoRouting, protoDestOpts, protoAH:
			if len(pkt) < off+8 {
				return 0, 0, frag, ErrTruncated
			}
			var n int
			if nh == protoAH {
				n = (int(pkt[off+1]) + 2) * 4
			} else {
				n = (int(pkt[off+1]) + 1) * 8
			}
			if len(pkt) < off+n {
				return 0, 0, frag, ErrTruncated
			}
			nh = pkt[off]
			off += n
		case protoFragment:
			if len(pkt) < off+8 {
				return 0, 0, frag, ErrTruncated
			}
			fo := binary.BigEndian.Uint16(pkt[off+2:])
			nh = pkt[off]
			off += 8
			if fo&ipv6FragOffMask != 0 {
				return nh, off, FragLater, nil
			}
			if fo&ipv6FragMF != 0 {
				frag = FragFirst
			}
		default:
			return nh, off, frag, nil
		}
	}
	return 0, 0, frag, ErrTooManyExtHeaders
}

func parseL4(frame []byte, p *Parsed) error {
	end := p.L3Off + p.L3Len
	l4 := frame[p.L4Off:end]
	switch p.Proto {
	case lvs.ProtoTCP:
		if len(l4) < TCPHeaderLen {
			return ErrTruncated
		}
		if int(l4[12]>>4)*4 < TCPHeaderLen {
			return ErrBadHeader
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:])
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
		p.TCPFlags = lvs.TCPFlags(l4[13])
	case lvs.ProtoUDP:
		if len(l4) < UDPHeaderLen {
			return ErrTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:])
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
	case lvs.ProtoSCTP:
		// Common header: ports, verification tag, CRC32c (RFC 9260).
		if len(l4) < 12 {
			return ErrTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:])
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
	case lvs.ProtoICMP, lvs.ProtoICMPv6:
		if (p.Proto == lvs.ProtoICMP) != (p.Family == 4) {
			// ICMPv4 in IPv6 or ICMPv6 in IPv4: nothing we answer or translate.
			return nil
		}
		if len(l4) < ICMPHeaderLen {
			return ErrTruncated
		}
		p.ICMPType = l4[0]
		p.ICMPCode = l4[1]
		if isICMPError(p.Family, p.ICMPType) {
			parseInner(frame[:end], p)
		}
	}
	return nil
}

// isICMPError reports whether the ICMP type quotes an offending packet:
// destination unreachable, time exceeded and parameter problem for IPv4;
// destination unreachable, packet too big, time exceeded and parameter
// problem for IPv6.
func isICMPError(family, typ uint8) bool {
	if family == 4 {
		return typ == 3 || typ == 11 || typ == 12
	}
	return typ >= 1 && typ <= 4
}

// parseInner reads the packet quoted in an ICMP error. pkt ends where the
// outer IP packet ends. A quote too short for an IP header leaves Inner
// invalid; that is not an error of the outer packet.
func parseInner(pkt []byte, p *Parsed) {
	in := &p.Inner
	in.L3Off = p.L4Off + ICMPHeaderLen
	q := pkt[in.L3Off:]
	frag := FragNone
	if p.Family == 4 {
		if len(q) < IPv4HeaderLen || q[0]>>4 != 4 {
			return
		}
		ihl := int(q[0]&0x0f) * 4
		if ihl < IPv4HeaderLen || len(q) < ihl {
			return
		}
		in.Proto = lvs.Proto(q[9])
		in.Src = inet.AddrFromSlice4(q[12:16])
		in.Dst = inet.AddrFromSlice4(q[16:20])
		in.L4Off = in.L3Off + ihl
		switch fo := binary.BigEndian.Uint16(q[6:]); {
		case fo&ipv4OffsetMask != 0:
			frag = FragLater
		case fo&ipv4FlagMF != 0:
			frag = FragFirst
		}
	} else {
		if len(q) < IPv6HeaderLen || q[0]>>4 != 6 {
			return
		}
		in.Src = inet.AddrFromSlice16(q[8:24])
		in.Dst = inet.AddrFromSlice16(q[24:40])
		proto, l4, fk, err := walkIPv6Ext(q, q[6], IPv6HeaderLen)
		if err != nil {
			return
		}
		in.Proto = lvs.Proto(proto)
		in.L4Off = in.L3Off + l4
		frag = fk
	}
	in.Family = p.Family
	in.Frag = frag
	in.Valid = true
	if frag != FragLater && (in.Proto == lvs.ProtoTCP || in.Proto == lvs.ProtoUDP || in.Proto == lvs.ProtoSCTP) && len(pkt) >= in.L4Off+4 {
		in.SrcPort = binary.BigEndian.Uint16(pkt[in.L4Off:])
		in.DstPort = binary.BigEndian.Uint16(pkt[in.L4Off+2:])
		in.HasPorts = true
	}
}
