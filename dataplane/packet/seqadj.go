package packet

import (
	"encoding/binary"

	"github.com/govs/govs/lvs"
)

// Sequence translation of a SYN-proxied TCP connection. The director
// answered the client's SYN with a cookie as its ISN, and the real server
// later picked its own ISN, so the two halves of the connection count the
// server's bytes from different origins: every segment passing the
// director has its sequence or acknowledgement numbers (and the SACK blocks
// that quote them) moved by the difference. The real server's window scale
// may also differ from the one the director announced to the client, so
// the window the server advertises is rescaled on the way out.

// TCP option kinds and lengths the translation reads (RFC 9293, RFC 2018).
const (
	tcpOptEOL           = 0
	tcpOptNOP           = 1
	tcpOptSACK          = 5
	tcpSACKBase         = 2 // kind and length
	tcpSACKBlock        = 8 // left and right edge
	tcpMaxOptionsLen    = 40
	maxWindowShiftSteps = 16 // shifting a 16-bit window further changes nothing
)

// AdjustTCP rewrites a TCP segment in place: seq += seqAdd; when ACK is set, ack += ackAdd and every
// SACK block edge += ackAdd; winShift > 0 shifts the window left (saturating at 0xffff), < 0 right.
// The TCP checksum is updated incrementally. Zero allocations.
//
// Arithmetic is modulo 2^32, so a negative offset is passed as its two's
// complement (uint32(-d)). Options are walked as netfilter's seqadj walks
// them: the walk stops at EOL or at an option whose length is impossible,
// and a SACK option whose length is not 2 + 8n is left alone; options of a
// header longer than the segment are not touched at all. The SYN flag
// changes nothing (the caller decides what a SYN's window means). Segments
// that are not TCP, later fragments, and frames p does not fit are left
// unchanged. p must come from Parse on this frame; AdjustTCP does not
// change it.
func AdjustTCP(frame []byte, p *Parsed, seqAdd, ackAdd uint32, winShift int8) {
	if seqAdd == 0 && ackAdd == 0 && winShift == 0 {
		return
	}
	if p.Proto != lvs.ProtoTCP || p.Frag == FragLater || !fits(p, len(frame)) {
		return
	}
	end := p.L3Off + p.L3Len
	if p.L4Off+TCPHeaderLen > end {
		return
	}
	h := frame[p.L4Off:end]
	ack := lvs.TCPFlags(h[13]).Has(lvs.TCPAck)

	// Every word is counted whether or not its offset is zero, exactly as
	// the XDP fast path (bpf/include/fastpath.h) does, so that the two
	// produce the same checksum bytes.
	var d uint64
	d = adjust32(h[4:], seqAdd, d)
	if ack {
		d = adjust32(h[8:], ackAdd, d)
	}
	oldWin := binary.BigEndian.Uint16(h[14:])
	newWin := shiftWindow(oldWin, winShift)
	binary.BigEndian.PutUint16(h[14:], newWin)
	d += uint64(^oldWin) + uint64(newWin)

	if ack {
		if hl := int(h[12]>>4) * 4; hl > TCPHeaderLen && hl <= len(h) {
			d = adjustSACK(h[TCPHeaderLen:hl], ackAdd, d)
		}
	}
	c := binary.BigEndian.Uint16(h[16:])
	binary.BigEndian.PutUint16(h[16:], applyDelta(c, d))
}

// shiftWindow returns the 16-bit TCP window w rescaled by shift: shifted
// left by shift (saturating at 0xffff) when it is positive, right by
// -shift when it is negative. It is the window the client should see when
// the real server scales by shift more than the director announced.
func shiftWindow(w uint16, shift int8) uint16 {
	switch {
	case shift > 0:
		s := min(int(shift), maxWindowShiftSteps)
		if v := uint32(w) << s; v <= 0xffff {
			return uint16(v)
		}
		return 0xffff
	case shift < 0:
		s := min(-int(shift), maxWindowShiftSteps)
		return uint16(uint32(w) >> s)
	}
	return w
}

// adjust32 adds add to the big-endian 32-bit field at b[0:4] and returns
// the checksum difference sum s updated for it. b starts at an even offset
// of the checksummed data.
func adjust32(b []byte, add uint32, s uint64) uint64 {
	old := binary.BigEndian.Uint32(b)
	v := old + add
	binary.BigEndian.PutUint32(b, v)
	return s + uint64(^uint16(old>>16)) + uint64(^uint16(old)) + uint64(v>>16) + uint64(v&0xffff)
}

// adjustSACK moves every edge of the SACK options in opts (the TCP options,
// a multiple of 4 bytes long at an even offset) by add and returns the
// checksum difference sum s updated for them. A SACK option may start at
// any byte, so the difference is taken over the whole options area, copied
// first, which keeps the words aligned.
func adjustSACK(opts []byte, add uint32, s uint64) uint64 {
	var old [tcpMaxOptionsLen]byte
	n := copy(old[:], opts)
	opts = opts[:n]
	changed := false
	for i := 0; i < n; {
		switch opts[i] {
		case tcpOptEOL:
			i = n
			continue
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= n {
			break
		}
		l := int(opts[i+1])
		if l < 2 || i+l > n {
			break
		}
		if opts[i] == tcpOptSACK && l >= tcpSACKBase+tcpSACKBlock && (l-tcpSACKBase)%tcpSACKBlock == 0 {
			for e := i + tcpSACKBase; e < i+l; e += 4 {
				binary.BigEndian.PutUint32(opts[e:], binary.BigEndian.Uint32(opts[e:])+add)
			}
			changed = true
		}
		i += l
	}
	if !changed {
		return s
	}
	return deltaBytes(s, old[:n], opts)
}
