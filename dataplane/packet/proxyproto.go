package packet

import (
	"encoding/binary"
	"errors"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// PROXY protocol headers (HAProxy's proxy-protocol.txt) for full-NAT TCP
// services. The real server sees the director's local address as the peer
// of every connection; the header, sent as the first bytes of the stream,
// tells it the client's address and port and the VIP's. The director sends
// it in the segment that completes the real server's handshake, by
// replacing that segment's (empty) payload with SetTCPPayload.

// ErrTooLong: the rewritten IP packet would not fit its 16-bit length field.
var ErrTooLong = errors.New("packet: ip packet would exceed 65535 bytes")

// ProxyHeaderMax is the longest header ProxyHeader writes (v1 over IPv6 is the longest, 107 bytes).
const ProxyHeaderMax = 108

// proxyV2Sig is the signature that opens every version 2 header; it cannot
// start a v1 header nor a request of a common text protocol.
const proxyV2Sig = "\r\n\r\n\x00\r\nQUIT\n"

// Version 2 fields: version 2 with the PROXY command, the TCP-over-IPv4 and
// TCP-over-IPv6 address families, and the lengths of their address blocks.
const (
	proxyV2VerCmd   = 0x21
	proxyV2TCP4     = 0x11
	proxyV2TCP6     = 0x21
	proxyV2AddrLen4 = 12 // two IPv4 addresses, two ports
	proxyV2AddrLen6 = 36 // two IPv6 addresses, two ports
)

// ProxyHeader writes the PROXY protocol header of version v (lvs.ProxyV1 or ProxyV2) for a TCP
// connection from src:sport (the client) to dst:dport (the VIP) into buf (len(buf) >= ProxyHeaderMax)
// and returns its length; 0 for lvs.ProxyNone or another value. IPv4 addresses (inet.Addr Is4)
// give TCP4 / AF_INET, others TCP6 / AF_INET6; v1 IPv6 text in RFC 5952 form. Zero allocations.
//
// The header has one family for both addresses: when only one of them is
// IPv4, both are written as IPv6, the IPv4 one in its IPv4-mapped form
// (::ffff:a.b.c.d in v1, as RFC 5952 section 5 recommends). A buf shorter
// than ProxyHeaderMax gets nothing (0).
func ProxyHeader(buf []byte, v lvs.ProxyProtocol, src, dst inet.Addr, sport, dport uint16) int {
	if len(buf) < ProxyHeaderMax {
		return 0
	}
	v4 := src.Is4() && dst.Is4()
	switch v {
	case lvs.ProxyV1:
		b := buf[:0]
		if v4 {
			b = append(b, "PROXY TCP4 "...)
			b = appendIPv4(b, &src)
			b = append(b, ' ')
			b = appendIPv4(b, &dst)
		} else {
			b = append(b, "PROXY TCP6 "...)
			b = appendIPv6(b, &src)
			b = append(b, ' ')
			b = appendIPv6(b, &dst)
		}
		b = append(b, ' ')
		b = appendDec(b, uint32(sport))
		b = append(b, ' ')
		b = appendDec(b, uint32(dport))
		b = append(b, '\r', '\n')
		return len(b)
	case lvs.ProxyV2:
		n := copy(buf, proxyV2Sig)
		buf[n] = proxyV2VerCmd
		if v4 {
			buf[n+1] = proxyV2TCP4
			binary.BigEndian.PutUint16(buf[n+2:], proxyV2AddrLen4)
			n += 4
			n += copy(buf[n:], src[12:])
			n += copy(buf[n:], dst[12:])
		} else {
			buf[n+1] = proxyV2TCP6
			binary.BigEndian.PutUint16(buf[n+2:], proxyV2AddrLen6)
			n += 4
			n += copy(buf[n:], src[:])
			n += copy(buf[n:], dst[:])
		}
		binary.BigEndian.PutUint16(buf[n:], sport)
		binary.BigEndian.PutUint16(buf[n+2:], dport)
		return n + 4
	}
	return 0
}

// appendDec appends v in decimal.
func appendDec(b []byte, v uint32) []byte {
	var d [10]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// appendIPv4 appends the dotted quad of the IPv4(-mapped) address a.
func appendIPv4(b []byte, a *inet.Addr) []byte {
	for i := 12; i < 16; i++ {
		if i > 12 {
			b = append(b, '.')
		}
		b = appendDec(b, uint32(a[i]))
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendIPv6 appends a in the text form of RFC 5952: lowercase hex groups
// without leading zeros, the longest run of two or more zero groups (the
// first of equally long ones) shortened to "::", and an IPv4-mapped address
// as ::ffff: and a dotted quad. It is what netip.Addr.String prints for a
// 16-byte address, without allocating.
func appendIPv6(b []byte, a *inet.Addr) []byte {
	if a.Is4() {
		b = append(b, "::ffff:"...)
		return appendIPv4(b, a)
	}
	// The longest run of zero groups, [zs, ze).
	zs, ze := -1, -1
	for i := 0; i < 8; {
		if a[2*i] != 0 || a[2*i+1] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && a[2*j] == 0 && a[2*j+1] == 0 {
			j++
		}
		if j-i >= 2 && j-i > ze-zs {
			zs, ze = i, j
		}
		i = j
	}
	for i := 0; i < 8; i++ {
		if i == zs {
			b = append(b, ':', ':')
			i = ze - 1
			continue
		}
		if i > 0 && i != ze {
			b = append(b, ':')
		}
		g := uint16(a[2*i])<<8 | uint16(a[2*i+1])
		started := false
		for s := 12; s >= 0; s -= 4 {
			d := (g >> s) & 0xf
			if d != 0 || started || s == 0 {
				b = append(b, hexDigits[d])
				started = true
			}
		}
	}
	return b
}

// tcpHeaderIn checks that p describes a whole, unfragmented TCP segment of
// buf (its header, options included, inside the IP packet) and returns the
// TCP header length.
func tcpHeaderIn(buf []byte, p *Parsed) (int, error) {
	if p.Proto != lvs.ProtoTCP || p.Frag != FragNone || !fits(p, len(buf)) {
		return 0, ErrBadArgument
	}
	end := p.L3Off + p.L3Len
	if p.L4Off+TCPHeaderLen > end {
		return 0, ErrBadArgument
	}
	hl := int(buf[p.L4Off+12]>>4) * 4
	if hl < TCPHeaderLen || p.L4Off+hl > end {
		return 0, ErrBadArgument
	}
	return hl, nil
}

// checkNewLen checks that the IP packet of p, l3Len bytes long after a
// rewrite, fits its length field and buf.
func checkNewLen(buf []byte, p *Parsed, l3Len int) error {
	if (p.Family == 4 && l3Len > 0xffff) || (p.Family == 6 && l3Len-IPv6HeaderLen > 0xffff) {
		return ErrTooLong
	}
	if p.L3Off+l3Len > len(buf) {
		return ErrShortBuffer
	}
	return nil
}

// setIPLen writes the new IP length of the packet p describes: the IPv4
// total length, with the header checksum updated incrementally (a wrong
// one stays wrong), or the IPv6 payload length (extension headers
// included).
func setIPLen(buf []byte, p *Parsed, l3Len int) {
	ip := buf[p.L3Off:]
	if p.Family == 4 {
		old := binary.BigEndian.Uint16(ip[2:])
		binary.BigEndian.PutUint16(ip[2:], uint16(l3Len))
		c := binary.BigEndian.Uint16(ip[10:])
		binary.BigEndian.PutUint16(ip[10:], UpdateChecksum16(c, old, uint16(l3Len)))
		return
	}
	binary.BigEndian.PutUint16(ip[4:], uint16(l3Len-IPv6HeaderLen))
}

// SetTCPPayload replaces the payload of the TCP segment parsed in p (frame = buf[:frame length],
// Ethernet included) with data, in buf: Ethernet, IP and TCP headers (with options) stay where they
// are; the IPv4 total length and header checksum / IPv6 payload length and the TCP checksum
// (recomputed over the new segment) are set; Ethernet padding beyond the IP packet is dropped.
// It returns the new frame length. Errors: not TCP, a fragment, IPv6 extension headers are fine
// (p.L4Off is after them, payload length counts them), result longer than buf, IP length over 65535.
// p is not changed (the caller re-parses). Zero allocations.
//
// The checksums are updated incrementally (RFC 1624: the old payload's
// sum and length out, the new ones in) rather than summed afresh: the
// result is the same for a segment whose checksum was right, a wrong one
// stays wrong instead of being blessed, and the pseudo-header's
// destination need not be known (an IPv6 routing header). The TCP checksum
// must be complete (FinishL4Checksum). Errors: ErrBadArgument (not a
// whole, unfragmented TCP segment of buf), ErrTooLong, ErrShortBuffer; buf
// is unchanged on error.
func SetTCPPayload(buf []byte, p *Parsed, data []byte) (int, error) {
	hl, err := tcpHeaderIn(buf, p)
	if err != nil {
		return 0, err
	}
	end := p.L3Off + p.L3Len
	start := p.L4Off + hl // the payload, at an even offset of the segment
	l3Len := start - p.L3Off + len(data)
	if err := checkNewLen(buf, p, l3Len); err != nil {
		return 0, err
	}
	oldSeg, newSeg := end-p.L4Off, hl+len(data)
	// The payload's share of the checksum, and the pseudo-header's TCP
	// length (under 65536: one 16-bit word).
	d := uint64(^uint16(oldSeg)) + uint64(uint16(newSeg))
	if end > start {
		d += uint64(^fold(Sum(buf[start:end], 0)))
	}
	d = Sum(data, d)
	copy(buf[start:], data)
	setIPLen(buf, p, l3Len)
	h := buf[p.L4Off:]
	binary.BigEndian.PutUint16(h[16:], applyDelta(binary.BigEndian.Uint16(h[16:]), d))
	return p.L3Off + l3Len, nil
}
