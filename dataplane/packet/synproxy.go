package packet

import (
	"encoding/binary"

	"github.com/govs/govs/lvs"
)

// Frame builders of the SYN proxy's second handshake (dataplane/synproxy.go).
// Once a client's handshake ACK carries a valid cookie, the director opens
// the connection to the real server itself: the ACK becomes the SYN to the
// real server (ProxySYN), and the real server's SYN-ACK becomes the ACK that
// completes its handshake (ProxyACK). Both rewrite the frame in place; the
// Ethernet and IP headers stay where they are, the TCP header is rebuilt and
// any payload is cut off.

// TCP option kinds the builders write or read (RFC 9293, RFC 7323, RFC 2018).
const (
	tcpOptMSS       = 2
	tcpOptWScale    = 3
	tcpOptSACKPerm  = 4
	maxProxySYNHead = TCPHeaderLen + 12 // MSS, NOP + WS, NOP NOP + SACK-permitted
)

// ProxySYN turns the TCP segment of frame, described by p (from Parse),
// into a SYN with sequence number isn, window win and the options o
// carries, in this order: MSS, then NOP and window scale when o.HasWScale,
// then NOP, NOP and SACK-permitted when o.SACK. Ports, addresses and the
// rest of the IP header stay; the payload is dropped. The IP length fields,
// the IPv4 header checksum and the TCP checksum are set, and p is updated
// (L3Len, TCPFlags). frame must reach at least p.L4Off+32 bytes (the frame
// may grow by the options: the caller passes the buffer the frame lives in).
// It returns the new frame length. IPv4 options and IPv6 extension headers
// are refused (ErrBadArgument), as the XDP program never answers such SYNs.
func ProxySYN(frame []byte, p *Parsed, isn uint32, win uint16, o SynOptions) (int, error) {
	if p.Proto != lvs.ProtoTCP || p.HasIPOptions || p.Frag != FragNone || !fits(p, len(frame)) ||
		p.L4Off+TCPHeaderLen > p.L3Off+p.L3Len {
		return 0, ErrBadArgument
	}
	if len(frame) < p.L4Off+maxProxySYNHead {
		return 0, ErrShortBuffer
	}
	h := frame[p.L4Off : p.L4Off+maxProxySYNHead]
	binary.BigEndian.PutUint32(h[4:], isn)
	binary.BigEndian.PutUint32(h[8:], 0)
	h[13] = uint8(lvs.TCPSyn)
	binary.BigEndian.PutUint16(h[14:], win)
	h[18], h[19] = 0, 0 // urgent pointer
	opt := h[TCPHeaderLen:]
	opt[0], opt[1] = tcpOptMSS, 4
	binary.BigEndian.PutUint16(opt[2:], o.MSS)
	n := 4
	if o.HasWScale {
		opt[n], opt[n+1], opt[n+2], opt[n+3] = tcpOptNOP, tcpOptWScale, 3, min(o.WScale, 14)
		n += 4
	}
	if o.SACK {
		opt[n], opt[n+1], opt[n+2], opt[n+3] = tcpOptNOP, tcpOptNOP, tcpOptSACKPerm, 2
		n += 4
	}
	hl := TCPHeaderLen + n
	h[12] = uint8(hl/4) << 4
	return finishTCP(frame, p, hl), nil
}

// ProxyACK turns the SYN-ACK of frame, described by p (from Parse), into
// the ACK its sender expects back: Ethernet addresses, IP addresses and
// ports swapped, sequence number seq, acknowledgement number ack, window
// win, no options and no payload; IPv4 gets TTL 64, DF and a zero
// identification, IPv6 hop limit 64. The IP length fields and every
// checksum are set and p is updated to describe the new segment. It
// returns the new frame length. IPv4 options and IPv6 extension headers
// are refused (ErrBadArgument).
func ProxyACK(frame []byte, p *Parsed, seq, ack uint32, win uint16) (int, error) {
	return proxyAnswer(frame, p, seq, ack, win, lvs.TCPAck)
}

// ProxyRST turns the segment of frame, described by p, into the reset a
// TCP in SYN-SENT answers an unacceptable ACK with (RFC 9293 3.10.7.3):
// addresses and ports swapped, sequence number seq (the segment's
// acknowledgement number), RST alone, as ProxyACK builds it otherwise. A
// real server that still holds an old connection of the same endpoints
// (TIME-WAIT) answers a new SYN with such an ACK; the reset clears it, so
// that the next SYN opens the connection.
func ProxyRST(frame []byte, p *Parsed, seq uint32) (int, error) {
	return proxyAnswer(frame, p, seq, 0, 0, lvs.TCPRst)
}

func proxyAnswer(frame []byte, p *Parsed, seq, ack uint32, win uint16, flags lvs.TCPFlags) (int, error) {
	if p.Proto != lvs.ProtoTCP || p.HasIPOptions || p.Frag != FragNone || !fits(p, len(frame)) ||
		p.L4Off+TCPHeaderLen > p.L3Off+p.L3Len {
		return 0, ErrBadArgument
	}
	var mac [6]byte
	copy(mac[:], frame[0:6])
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], mac[:])
	srcOff, dstOff, alen := addrOffsets(p)
	var a [16]byte
	copy(a[:alen], frame[srcOff:srcOff+alen])
	copy(frame[srcOff:srcOff+alen], frame[dstOff:dstOff+alen])
	copy(frame[dstOff:dstOff+alen], a[:alen])
	p.Src, p.Dst = p.Dst, p.Src
	if p.Family == 4 {
		ip := frame[p.L3Off:]
		binary.BigEndian.PutUint32(ip[4:], ipv4FlagDF) // id 0, DF
		ip[8] = originTTL
	} else {
		frame[p.L3Off+7] = originTTL
	}
	h := frame[p.L4Off : p.L4Off+TCPHeaderLen]
	binary.BigEndian.PutUint16(h[0:], p.DstPort)
	binary.BigEndian.PutUint16(h[2:], p.SrcPort)
	p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = uint8(TCPHeaderLen/4) << 4
	h[13] = uint8(flags)
	binary.BigEndian.PutUint16(h[14:], win)
	h[18], h[19] = 0, 0
	return finishTCP(frame, p, TCPHeaderLen), nil
}

// finishTCP sets the IP length fields (and the IPv4 header checksum) for a
// TCP segment of hl bytes without payload, then its checksum, updates p
// and returns the frame length.
func finishTCP(frame []byte, p *Parsed, hl int) int {
	total := p.L4Off - p.L3Off + hl
	ip := frame[p.L3Off:]
	if p.Family == 4 {
		ihl := int(ip[0]&0x0f) * 4
		binary.BigEndian.PutUint16(ip[2:], uint16(total))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:ihl], 0))
	} else {
		binary.BigEndian.PutUint16(ip[4:], uint16(total-IPv6HeaderLen))
	}
	h := frame[p.L4Off : p.L4Off+hl]
	h[16], h[17] = 0, 0
	binary.BigEndian.PutUint16(h[16:], Checksum(h, PseudoHeaderSum(p.Family, &p.Src, &p.Dst, lvs.ProtoTCP, hl)))
	p.L3Len = total
	p.TCPFlags = lvs.TCPFlags(h[13])
	return p.L3Off + total
}

// TCPWindowScale returns the shift of the window scale option of the TCP
// segment described by p, clamped to 14 (RFC 7323), and whether it has one.
func TCPWindowScale(frame []byte, p *Parsed) (uint8, bool) {
	if p.Proto != lvs.ProtoTCP || p.Frag == FragLater || !fits(p, len(frame)) {
		return 0, false
	}
	end := p.L3Off + p.L3Len
	if p.L4Off+TCPHeaderLen > end {
		return 0, false
	}
	hl := int(frame[p.L4Off+12]>>4) * 4
	if hl <= TCPHeaderLen || p.L4Off+hl > end {
		return 0, false
	}
	opts := frame[p.L4Off+TCPHeaderLen : p.L4Off+hl]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEOL:
			return 0, false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return 0, false
		}
		if opts[i] == tcpOptWScale && l == 3 {
			return min(opts[i+2], 14), true
		}
		i += l
	}
	return 0, false
}
