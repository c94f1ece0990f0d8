package packet

import (
	"encoding/binary"
	"errors"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TOA ("TCP option address", the option of the Linux toa module that
// LVS full-NAT deployments load on their real servers) carries the
// client's address and port in a TCP option of the client's segments, so
// that getpeername on the real server returns the client instead of the
// director's local address. Only the first segments after the handshake
// need it: the module reads it once per connection. The option makes the
// TCP header longer, so the MSS the real server announces is lowered by
// its length on the way to the client, keeping full-sized segments inside
// the path MTU.

// ErrNoOptionSpace: the TCP header cannot grow by the option (60 bytes at most).
var ErrNoOptionSpace = errors.New("packet: no room for the tcp option")

// TOA option: kind and lengths.
const (
	TOAKind = 254
	TOALen4 = 8
	TOALen6 = 20
)

// Smallest MSS LowerMSS leaves: the MSS every IPv4 host must accept
// (RFC 9293 section 3.7.1), and the IPv6 minimum MTU (1280) less the IPv6
// and TCP headers.
const (
	minMSS4 = 536
	minMSS6 = 1220
)

// maxTCPHeaderLen is the longest TCP header the 4-bit data offset allows.
const maxTCPHeaderLen = TCPHeaderLen + tcpMaxOptionsLen

// TOAOption writes the TOA option for client addr:port into buf (len >= TOALen6) and returns its
// length (TOALen4 for an IPv4 addr, TOALen6 otherwise).
//
// Layout: kind, length, port (network order), then the 4-byte IPv4 or
// 16-byte IPv6 address. A buf too short for the option gets nothing (0).
func TOAOption(buf []byte, addr inet.Addr, port uint16) int {
	n := TOALen6
	a := addr[:]
	if addr.Is4() {
		n, a = TOALen4, addr[12:]
	}
	if len(buf) < n {
		return 0
	}
	buf[0], buf[1] = TOAKind, byte(n)
	binary.BigEndian.PutUint16(buf[2:], port)
	copy(buf[4:n], a)
	return n
}

// InsertTCPOption inserts opt (length a multiple of 4, at most 40) after the existing TCP options
// of the segment parsed in p, moving the payload up; data offset, IP total/payload length, IPv4
// header checksum and TCP checksum follow. buf and the return value as for SetTCPPayload. Errors:
// not TCP, a fragment, the options would pass 40 bytes, longer than buf. Zero allocations.
//
// An end-of-option-list and the padding after it are turned into NOPs
// first: an option after an EOL would be ignored by the receiver. The
// checksums are updated incrementally, as SetTCPPayload's (the payload
// moves by a multiple of 4, so its share does not change); the TCP
// checksum must be complete. An empty opt changes nothing but drops the
// Ethernet padding. Errors: ErrBadArgument (not a whole, unfragmented TCP
// segment of buf, or an opt of a wrong length), ErrNoOptionSpace,
// ErrTooLong, ErrShortBuffer; buf is unchanged on error. p is not changed.
func InsertTCPOption(buf []byte, p *Parsed, opt []byte) (int, error) {
	hl, err := tcpHeaderIn(buf, p)
	if err != nil {
		return 0, err
	}
	if len(opt)%4 != 0 || len(opt) > tcpMaxOptionsLen {
		return 0, ErrBadArgument
	}
	if hl+len(opt) > maxTCPHeaderLen {
		return 0, ErrNoOptionSpace
	}
	end := p.L3Off + p.L3Len
	l3Len := p.L3Len + len(opt)
	if err := checkNewLen(buf, p, l3Len); err != nil {
		return 0, err
	}
	if len(opt) == 0 {
		return end, nil
	}
	h := buf[p.L4Off:]
	var d uint64
	if opts := h[TCPHeaderLen:hl]; eolAt(opts) >= 0 {
		var old [tcpMaxOptionsLen]byte
		n := copy(old[:], opts)
		for i := eolAt(opts); i < len(opts); i++ {
			opts[i] = tcpOptNOP
		}
		d = deltaBytes(d, old[:n], opts)
	}
	at := p.L4Off + hl
	copy(buf[at+len(opt):], buf[at:end])
	copy(buf[at:], opt)
	d = Sum(opt, d)
	oldWord := binary.BigEndian.Uint16(h[12:])
	h[12] = byte((hl+len(opt))/4)<<4 | h[12]&0x0f
	d += uint64(^oldWord) + uint64(binary.BigEndian.Uint16(h[12:]))
	seg := end - p.L4Off // the pseudo-header's TCP length, under 65536
	d += uint64(^uint16(seg)) + uint64(uint16(seg+len(opt)))
	binary.BigEndian.PutUint16(h[16:], applyDelta(binary.BigEndian.Uint16(h[16:]), d))
	setIPLen(buf, p, l3Len)
	return p.L3Off + l3Len, nil
}

// eolAt returns the offset of the end-of-option-list in the TCP options
// opts, or -1 when the walk ends without one (at the end of opts or at an
// option of an impossible length, as AdjustTCP's walk stops).
func eolAt(opts []byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEOL:
			return i
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return -1
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return -1
		}
		i += l
	}
	return -1
}

// LowerMSS lowers the MSS option of the TCP segment (a SYN or SYN-ACK) parsed in p by `by`,
// not below 536 (IPv4) / 1220 (IPv6), updating the TCP checksum incrementally; it reports whether
// the segment had an MSS option. Walks options as AdjustTCP's SACK walk does (stops at EOL or an
// impossible length).
//
// An MSS already at or below the floor is left as it is. Only an option
// of kind 2 and length 4 counts; the first one is changed. Flags are not
// looked at: the caller passes the segments whose MSS means something.
// Segments that are not TCP, later fragments, and frames p does not fit
// are left alone (false). p is not changed.
func LowerMSS(frame []byte, p *Parsed, by uint16) bool {
	if p.Proto != lvs.ProtoTCP || p.Frag == FragLater || !fits(p, len(frame)) {
		return false
	}
	end := p.L3Off + p.L3Len
	if p.L4Off+TCPHeaderLen > end {
		return false
	}
	h := frame[p.L4Off:end]
	hl := int(h[12]>>4) * 4
	if hl <= TCPHeaderLen || hl > len(h) {
		return false
	}
	opts := h[TCPHeaderLen:hl]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEOL:
			return false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return false
		}
		if opts[i] == tcpOptMSS && l == 4 {
			lowerMSSAt(h, TCPHeaderLen+i+2, p.Family, by)
			return true
		}
		i += l
	}
	return false
}

// lowerMSSAt lowers the MSS value at h[off:off+2] (h is the TCP segment)
// and updates the checksum. The value may sit at an odd offset, across two
// checksum words; the difference is then taken over the aligned 4 bytes
// around it, which are inside the options: an option ending at an odd
// offset is followed by at least one byte, as the options' length is a
// multiple of 4.
func lowerMSSAt(h []byte, off int, family uint8, by uint16) {
	floor := uint16(minMSS4)
	if family != 4 {
		floor = minMSS6
	}
	mss := binary.BigEndian.Uint16(h[off:])
	if mss <= floor || by == 0 {
		return
	}
	nv := floor
	if mss-floor > by {
		nv = mss - by
	}
	c := binary.BigEndian.Uint16(h[16:])
	if off%2 == 0 {
		binary.BigEndian.PutUint16(h[off:], nv)
		binary.BigEndian.PutUint16(h[16:], UpdateChecksum16(c, mss, nv))
		return
	}
	w := h[off-1 : off+3]
	var old [4]byte
	copy(old[:], w)
	binary.BigEndian.PutUint16(h[off:], nv)
	binary.BigEndian.PutUint16(h[16:], applyDelta(c, deltaBytes(0, old[:], w)))
}
