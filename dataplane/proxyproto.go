package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/lvs"
)

// The client's address toward a full-NAT real server (issue #17): the
// PROXY protocol header and the TOA option.
//
// A full-NAT real server sees the director's local address as its peer.
// With ProxyProtocol set, the director puts a PROXY header (v1 text or v2
// binary: client and VIP, addresses and ports) in front of the client's
// bytes; with TOA, a TCP option (kind 254, the toa kernel module's) with
// the client's address and port in the segments that may complete the real
// server's handshake.
//
// The header. It occupies the real server's view of the client's sequence
// numbers [clientSeq, clientSeq+ppLen), clientSeq being the client's ISN+1,
// so every client segment's sequence number moves up by ppLen and every
// acknowledgement (and SACK block) the real server sends moves down by it,
// in the workers and in the XDP fast path (the flow entries carry the same
// translation, with the SYN proxy's when there is one). The header goes out
// as data of the segment that completes the real server's handshake: the
// client's handshake ACK, grown in place (the SYN proxy's own ACK to the
// real server when the director proxied the handshake). So it is there
// before any byte of the client, and a server that speaks first (SMTP, SSH,
// MySQL) gets it at once. Until the real server acknowledges it
// (ppHeaderPending), a client segment at clientSeq carries it again: a
// pure ACK grown in place, a data segment or FIN behind a header segment of
// its own that the worker builds in a free frame. The first data segment
// after the header went out is not such a retransmission and passes alone;
// a second one at clientSeq is, and brings the header again. An
// acknowledgement of part of the header reaches the client as one of
// clientSeq: the client never sees the header. The fast path takes the
// connection only once the real server has acknowledged the header.
//
// TOA. The toa module reads the option from the segment that completes
// its handshake, so every client segment carries it until the real server
// sends its first segment that is not a SYN-ACK (it has a socket then).
// The MSS the real server announces in its SYN-ACK is lowered by the
// option's length on the way to the client, so that a full-sized segment
// with the option still fits the path; a segment the option would push past
// the next hop's MTU, or whose options have no room left, goes without it.
// With the SYN proxy, the director's ACK that completes the real server's
// handshake carries it.
//
// Neither is synchronised to backups (syncConn skips them, as it skips
// SYN-proxied connections: connsync carries no sequence offset); the
// connection mirror keeps them over a restart.

// Bits of connPath.ppFlags.
const (
	ppHeaderPending uint8 = 1 << iota // the real server has not acknowledged the whole header
	ppHeaderSent                      // the header went out at least once
	ppDataSeen                        // a client data segment at clientSeq was forwarded
	ppTOAPending                      // the real server has sent nothing but its SYN-ACK
	ppV2                              // the header is v2 (v1 otherwise); the service may change, the connection's header may not
)

// checkClientAddr refuses a PROXY header or TOA where the director cannot
// send one: they tell a full-NAT TCP real server the client's address, and
// need the director to see, and translate, both directions of every
// connection.
func checkClientAddr(sp *ServiceSpec) error {
	if sp.ProxyProtocol == lvs.ProxyNone && !sp.TOA {
		return nil
	}
	if sp.ProxyProtocol > lvs.ProxyV2 {
		return fmt.Errorf("proxy protocol: unknown version %d", uint8(sp.ProxyProtocol))
	}
	if sp.FwMark != 0 || sp.Proto != lvs.ProtoTCP {
		return errors.New("proxy protocol and toa need a TCP service (not a firewall mark)")
	}
	if sp.Fwd != lvs.FwdFullNAT {
		return fmt.Errorf("proxy protocol and toa need full-NAT forwarding, not %s", sp.Fwd.Name())
	}
	for _, ds := range sp.Dests {
		if ds.Fwd != lvs.FwdFullNAT {
			return fmt.Errorf("proxy protocol and toa: real server %s forwards by %s, not full-NAT", ds.Addr, ds.Fwd.Name())
		}
	}
	return nil
}

// initClientAddr sets up cp, the path of a new connection of svc to a
// real server forwarding by fwd, for the PROXY header and TOA; firstSeq is
// the client's ISN+1.
func (w *worker) initClientAddr(cp *connPath, svc *Service, fwd lvs.Fwd, t *conntrack.Tuple, firstSeq uint32) {
	if fwd != lvs.FwdFullNAT || t.Proto != lvs.ProtoTCP {
		return
	}
	if svc.ProxyProtocol != lvs.ProxyNone {
		cp.ppLen = uint8(packet.ProxyHeader(w.ppBuf[:], svc.ProxyProtocol, t.Src, t.Dst, t.SrcPort, t.DstPort))
		if cp.ppLen != 0 {
			cp.ppFlags |= ppHeaderPending
		}
		if svc.ProxyProtocol == lvs.ProxyV2 {
			cp.ppFlags |= ppV2
		}
	}
	if svc.TOA {
		cp.ppFlags |= ppTOAPending
	}
	cp.clientSeq = firstSeq
}

// clientAddr reports whether c's path translates anything for the PROXY
// header or TOA.
func (cp *connPath) clientAddr() bool { return cp.ppLen != 0 || cp.ppFlags&ppTOAPending != 0 }

// header writes c's PROXY header into w.ppBuf and returns it.
func (w *worker) header(c *conntrack.Conn, cp *connPath) []byte {
	v := lvs.ProxyV1
	if cp.ppFlags&ppV2 != 0 {
		v = lvs.ProxyV2
	}
	n := packet.ProxyHeader(w.ppBuf[:], v, c.Orig.Src, c.Orig.Dst, c.Orig.SrcPort, c.Orig.DstPort)
	return w.ppBuf[:n]
}

// translateRequest moves a request of c, parsed in w.p, into the real
// server's sequence space before its rewrite for nh: the SYN proxy's ack
// translation, the PROXY header's shift (sending the header where it is
// due, in this segment or in one of its own ahead of it) and TOA. It
// returns the frame (it may have grown; desc follows), or false when it is
// dropped (counted).
func (w *worker) translateRequest(desc *xsk.Desc, frame []byte, c *conntrack.Conn, cp *connPath, dst *Dest, nh NextHop) ([]byte, bool) {
	p := &w.p
	var ackAdd uint32
	if cp.flags&flagSynProxy != 0 {
		ackAdd = cp.seqDelta
	}
	seqAdd := uint32(cp.ppLen)
	if p.TCPFlags&lvs.TCPSyn != 0 {
		seqAdd = 0 // the client's ISN: the header comes after it
	}
	if p.Proto != lvs.ProtoTCP || cp.ppFlags&(ppHeaderPending|ppTOAPending) == 0 {
		packet.AdjustTCP(frame, p, seqAdd, ackAdd, 0)
		return frame, true
	}
	seq, _, _ := tcpSeqAck(frame, p)
	flags := p.TCPFlags
	if cp.ppFlags&ppHeaderPending != 0 && seq == cp.clientSeq &&
		flags&(lvs.TCPSyn|lvs.TCPRst|lvs.TCPAck) == lvs.TCPAck {
		data := hasPayload(frame, p) || flags&lvs.TCPFin != 0
		switch {
		case !data:
			// A pure ACK at the header's place becomes the header.
			var ok bool
			if frame, ok = w.setPayload(desc, frame, w.header(c, cp)); !ok {
				return nil, false
			}
			seqAdd = 0
			cp.ppFlags |= ppHeaderSent
			w.ctr.ProxyHeaders.Add(1)
		case cp.ppFlags&ppHeaderSent == 0 || cp.ppFlags&ppDataSeen != 0:
			// The first data (the header never went out, or this is
			// a retransmission): the header goes in a segment of its
			// own first.
			if !w.sendHeader(frame, c, cp, dst, nh, ackAdd) {
				return nil, false
			}
		}
		if data {
			cp.ppFlags |= ppDataSeen
		}
	}
	packet.AdjustTCP(frame, p, seqAdd, ackAdd, 0)
	if cp.ppFlags&ppTOAPending != 0 && flags&lvs.TCPSyn == 0 {
		// Not in the SYN: the toa module reads the segment that
		// completes the handshake, and a SYN's options have less room.
		frame = w.insertTOA(desc, frame, p, c, nh)
	}
	return frame, true
}

// setPayload makes data the payload of the TCP segment in frame (parsed in
// w.p, which is parsed again), growing it within its UMEM chunk.
func (w *worker) setPayload(desc *xsk.Desc, frame []byte, data []byte) ([]byte, bool) {
	n, err := packet.SetTCPPayload(frame[:cap(frame)], &w.p, data)
	if err == nil {
		frame = frame[:n]
		err = packet.Parse(frame, &w.p)
	}
	if err != nil {
		w.drop(DropMalformed)
		return nil, false
	}
	desc.Len = uint32(n)
	return frame, true
}

// sendHeader sends c's PROXY header to its real server dst through nh in a
// segment of its own, made from the headers of the client segment in
// frame (parsed in w.p): the same sequence number (clientSeq), ACK|PSH,
// the acknowledgement translated by ackAdd, TOA when it is pending. It is
// queued before the client's segment, which follows it. False: no free
// frame (counted); the client's segment is dropped too, and its
// retransmission brings the header.
func (w *worker) sendHeader(frame []byte, c *conntrack.Conn, cp *connPath, dst *Dest, nh NextHop, ackAdd uint32) bool {
	p := &w.p
	if len(w.free) == 0 {
		w.drop(DropNoFrame)
		return false
	}
	addr := w.free[len(w.free)-1]
	buf := w.umem.Bytes(addr, uint32(w.umem.FrameSize()))
	// A copy of the whole segment, whose payload becomes the header: the
	// checksum follows each change incrementally, from the client's.
	copy(buf, frame)
	q := &w.p2
	n, err := packet.SetTCPPayload(buf, p, w.header(c, cp))
	if err == nil {
		h := buf[p.L4Off:]
		old := binary.BigEndian.Uint16(h[12:])
		flags := old&0xff00 | uint16(lvs.TCPAck|lvs.TCPPsh) // data offset kept; no FIN, no ECN bits
		binary.BigEndian.PutUint16(h[12:], flags)
		binary.BigEndian.PutUint16(h[16:], packet.UpdateChecksum16(binary.BigEndian.Uint16(h[16:]), old, flags))
		err = packet.Parse(buf[:n], q)
	}
	if err != nil {
		w.drop(DropMalformed)
		return false
	}
	w.free = w.free[:len(w.free)-1]
	desc := xsk.Desc{Addr: addr, Len: uint32(n)}
	out := buf[:n]
	packet.AdjustTCP(out, q, 0, ackAdd, 0)
	if cp.ppFlags&ppTOAPending != 0 {
		out = w.insertTOA(&desc, out, q, c, nh)
	}
	cp.ppFlags |= ppHeaderSent
	w.ctr.ProxyHeaders.Add(1)
	ds := &dst.stats.perWorker[w.q]
	ds.inPkts.Add(1)
	ds.inBytes.Add(uint64(len(out)))
	o, ok := w.toRealServer(&desc, out, q, c, dst, nh, c.Fwd)
	w.emit(desc, o, ok)
	return true
}

// insertTOA adds the TOA option with c's client address and port to the
// TCP segment in frame, parsed in p (parsed again), unless it would pass
// the next hop's MTU or the segment's options have no room for it: the
// segment then goes without.
func (w *worker) insertTOA(desc *xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, nh NextHop) []byte {
	var opt [packet.TOALen6]byte
	n := packet.TOAOption(opt[:], c.Orig.Src, c.Orig.SrcPort)
	if nh.MTU > 0 && p.L3Len+n > nh.MTU {
		return frame
	}
	m, err := packet.InsertTCPOption(frame[:cap(frame)], p, opt[:n])
	if err != nil {
		return frame
	}
	frame = frame[:m]
	if packet.Parse(frame, p) != nil {
		return frame // cannot happen: InsertTCPOption keeps it well formed
	}
	desc.Len = uint32(m)
	w.ctr.TOAInserted.Add(1)
	return frame
}

// translateReply moves a reply of c, parsed in w.p, into the client's
// sequence space: the SYN proxy's translation and the PROXY header's
// shift; and keeps the TOA and header state: the real server's first
// segment other than a SYN-ACK ends TOA, an acknowledgement of the whole
// header ends its resending.
func (w *worker) translateReply(frame []byte, c *conntrack.Conn, cp *connPath) {
	p := &w.p
	var seqAdd uint32
	var shift int8
	if cp.flags&flagSynProxy != 0 {
		seqAdd, shift = -cp.seqDelta, cp.winShift
	}
	if p.Proto != lvs.ProtoTCP || !cp.clientAddr() {
		packet.AdjustTCP(frame, p, seqAdd, 0, shift)
		return
	}
	if cp.ppFlags&ppTOAPending != 0 {
		if p.TCPFlags&lvs.TCPSyn == 0 {
			cp.ppFlags &^= ppTOAPending
		} else if cp.flags&flagSynProxy == 0 {
			packet.LowerMSS(frame, p, uint16(toaLen(c)))
		}
	}
	l := uint32(cp.ppLen)
	clamp := false
	if l != 0 && p.TCPFlags&lvs.TCPAck != 0 {
		_, ack, _ := tcpSeqAck(frame, p)
		switch {
		case int32(ack-(cp.clientSeq+l)) >= 0:
			cp.ppFlags &^= ppHeaderPending
		case int32(ack-cp.clientSeq) >= 0:
			// Some or none of the header: none of the client's bytes.
			clamp = true
		}
	}
	packet.AdjustTCP(frame, p, seqAdd, -l, shift)
	if clamp {
		setTCPAck(frame, p, cp.clientSeq)
	}
}

// toaLen is the length of c's TOA option.
func toaLen(c *conntrack.Conn) int {
	if c.Orig.Src.Is4() {
		return packet.TOALen4
	}
	return packet.TOALen6
}

// setTCPAck sets the acknowledgement number of the TCP segment p describes,
// keeping its checksum right.
func setTCPAck(frame []byte, p *packet.Parsed, ack uint32) {
	h := frame[p.L4Off:]
	old := binary.BigEndian.Uint32(h[8:])
	binary.BigEndian.PutUint32(h[8:], ack)
	binary.BigEndian.PutUint16(h[16:], packet.UpdateChecksum32(binary.BigEndian.Uint16(h[16:]), old, ack))
}

// clientAddrQuote moves the sequence number quoted by an ICMP error about
// a request of c (addresses already translated for the client) back into
// the client's space: the real server saw it ppLen higher.
func clientAddrQuote(frame []byte, p *packet.Parsed, cp *connPath) {
	if cp.ppLen != 0 {
		quoteSeqAdd(frame, p, -uint32(cp.ppLen))
	}
}
