package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/lvs"
)

// The SYN proxy, worker side (issue #13; DPVS's synproxy, on XDP).
//
// For a TCP service that forwards by NAT or full-NAT and whose SynProxy is
// not off, the steering program may answer a client's SYN itself with a
// SYN-ACK whose sequence number is a SYN cookie (packet.SynCookie, keyed
// with the director's secret; bpf/include/synproxy.h), keeping no state: a
// flood of spoofed SYNs costs no connection entry and reaches no real
// server. Only the client's handshake ACK brings the connection to a
// worker:
//
//  1. The ACK finds no entry: an ACK alone (PSH allowed; no SYN, RST or
//     FIN) to such a service has its cookie checked: ack-1 is the cookie,
//     seq-1 the client's ISN, the tuple the SYN's, the period the current
//     or the previous one of the monotonic clock. A wrong cookie is dropped
//     (SynCookiesRejected; a segment of a connection the director no
//     longer knows ends up there too). A valid one (SynCookiesAccepted)
//     creates the connection as a SYN would (schedule: scheduler,
//     persistence, full-NAT local port, Insert), half-open: SYN_RECV,
//     flagSynProxy|flagSynPending, seqDelta holding the cookie and
//     clientWin the ACK's window. The ACK itself becomes, in place, the SYN
//     to the real server: the client's ISN, the options the cookie carries
//     (MSS, window scale, SACK-permitted; never timestamps, which the
//     director did not offer the client), no payload; it leaves through the
//     usual DNAT / full-NAT rewrite. A real server that does not forward by
//     NAT or full-NAT cannot be proxied (DropUnsupported). An ACK with a
//     valid cookie that meets a finished connection of its tuple (TIME_WAIT,
//     CLOSE: the client reused its port) replaces it, as a SYN would
//     (synProxyReuses).
//  2. The real server's SYN-ACK (reply direction, connection pending) must
//     acknowledge the client's ISN+1 (checked against the cookie). It sets
//     seqDelta = server ISN - cookie and winShift = the server's window
//     scale (0 without one) - packet.SynProxyWScale when the client asked
//     for window scaling (else 0: neither side scales), and the connection
//     becomes ESTABLISHED (Table.Restore keeps the class counts right). The
//     SYN-ACK becomes, in place, the ACK that completes the real server's
//     handshake: addresses, ports and MACs swapped, seq = client ISN+1,
//     ack = server ISN+1, the client's window, no options; it goes back out
//     of the interface it came in on. A SYN-ACK again after that (our ACK
//     was lost) is answered the same way and never reaches the client.
//  3. Every later segment is translated both ways (packet.AdjustTCP):
//     requests ack += seqDelta (SACK blocks too), replies seq -= seqDelta
//     and their window rescaled by winShift. The XDP fast-path entries of
//     the connection carry the same translation (fastpath.go).
//
// While the real server's handshake is pending, client segments are
// dropped (SynProxyDropped) and TCP retransmits them, with two exceptions.
// The data segments a client sends right after its handshake ACK (an HTTP
// request; they acknowledge the cookie, which only the client knows) are
// held by the worker (up to synHeldPerConn per connection and synHeldMax
// per worker, for at most synHeldFor; the frames stay in the UMEM) and
// forwarded, translated and in order, as soon as the real server's SYN-ACK
// arrives, in place of the bare ACK (they acknowledge the SYN-ACK
// themselves): the request does not wait for the client's retransmission
// timeout (200 ms at least). And a segment at the client's ISN+1 (so says
// the cookie) at least synResendAfter after the last SYN becomes the SYN
// again, so a lost SYN (a next hop not resolved yet, a full TX ring) costs
// the client one retransmission instead of the connection. A client RST
// while pending deletes the connection and is dropped (the real server's
// half-open request times out on its own). A RST from the real server
// (nothing listens) goes to the client with the sequence number it expects
// (cookie+1), so the client sees the refusal it would have seen without the
// proxy, and the connection is deleted. Other server segments while pending
// are dropped (DropUnsupported).
//
// An ICMP error about a reply the director sent to the client (path MTU
// toward the client, above all) quotes a sequence number of the client's
// space; before it goes to the real server the quoted sequence number is
// moved back by seqDelta (synProxyQuote), as Linux heeds an error only
// about a sequence number it has sent. The ICMP checksum follows; the
// quoted TCP checksum, which no receiver checks, is left as it is. An error
// about a request quotes the client's own sequence number: nothing to do.
//
// Limits. When the client asked for window scaling and the real server
// does not scale, the real server reads the client's scaled windows as
// unscaled: smaller than they are, safe but slower. The real server's MSS
// is not passed on to the client, which was told the director's
// (syn_proxy_mss). Proxied connections run without timestamps. They are
// not synchronised to backups (syncConn skips them): connsync carries no
// sequence offset, and a backup forwarding one untranslated would corrupt
// it; after a failover their segments meet no entry and fail the cookie
// check (SynCookiesRejected): the client sees the connection time out or
// reset, as for any connection a backup does not know.

// Bits of connPath.flags: the connection was opened by the
// SYN proxy and is translated for its whole life; and its real server's
// handshake is still pending (seqDelta holds the cookie).
const (
	flagSynProxy   uint16 = 0x4000
	flagSynPending uint16 = 0x8000
)

// synResendAfter is how long after the SYN to the real server a client
// segment proving the cookie makes the worker send the SYN again. Shorter
// than any TCP retransmission timeout (200 ms at least on Linux), longer
// than a real server takes to answer on a LAN: the client's first data
// segment, sent right after its handshake ACK, does not cause a second SYN.
const synResendAfter = 100 * time.Millisecond

// Held data segments (heldSeg): at most synHeldMax per worker and
// synHeldPerConn per connection, each for at most synHeldFor; the frames
// stay in the UMEM meanwhile.
const (
	synHeldMax     = 64
	synHeldPerConn = 8
	synHeldFor     = time.Second
)

// heldSeg is a client data segment kept while its connection's real
// server handshake is pending.
type heldSeg struct {
	orig   conntrack.Tuple // the connection's request tuple
	cookie uint32          // and cookie: a later connection of the tuple is another one
	seq    uint32          // the segment's sequence number (a retransmission is not kept twice)
	order  uint32          // arrival order, the order they are sent in
	addr   uint64
	len    uint32
	until  int64 // 0: the slot is free
}

// outKept is process's verdict for a frame the worker keeps for later
// (heldSeg): neither transmitted nor recycled now.
const outKept = outHandedOff

// The MSS the steering program announces in its SYN-ACKs until the control
// plane sets another (director.syn_proxy_mss).
const (
	synProxyMSS4 = 1460
	synProxyMSS6 = 1440
)

// initSynProxy gives the director its cookie key, shared by the steering
// program (which makes the cookies) and the workers (which check them): the
// one a previous govsd pinned, whose program answered SYNs with it while no
// govsd ran (restart.go), else a fresh random one.
func (d *Director) initSynProxy() error {
	k, err := d.synCookieKey()
	if err != nil {
		return fmt.Errorf("syn cookie key: %w", err)
	}
	if err := d.steer.SetSynCookieKey([16]byte(k)); err != nil {
		return fmt.Errorf("syn cookie key: %w", err)
	}
	if err := d.steer.SetSynProxyMSS(synProxyMSS4, synProxyMSS6); err != nil {
		return fmt.Errorf("syn proxy mss: %w", err)
	}
	for _, w := range d.workers {
		w.synKey = k
	}
	return nil
}

// synProxied reports whether handshake ACKs to svc may carry a SYN cookie.
func synProxied(svc *Service) bool {
	return svc.Proto == lvs.ProtoTCP && svc.SynProxy != SynProxyOff &&
		viaDirector(svc.Fwd)
}

// isHandshakeACK reports whether the TCP segment p could be the client's
// handshake ACK: ACK without SYN, RST or FIN (PSH, URG, ECN bits allowed).
func isHandshakeACK(p *packet.Parsed) bool {
	return p.Proto == lvs.ProtoTCP && p.TCPFlags&(lvs.TCPSyn|lvs.TCPRst|lvs.TCPFin|lvs.TCPAck) == lvs.TCPAck
}

// synProxyInit is what schedule needs to open a proxied connection.
type synProxyInit struct {
	cookie uint32
	win    uint16
}

// checkCookie validates the cookie of the connection with request tuple t
// (the SYN's) for the client's ISN, in the current and previous cookie
// periods; with back, in the two periods before those too (a real server's
// SYN-ACK may come a little later than the ACK whose cookie was checked).
func (w *worker) checkCookie(t *conntrack.Tuple, isn, cookie uint32, now int64, back bool) (packet.SynOptions, bool) {
	period := packet.SynCookiePeriod(uint64(now + monoOffset))
	o, ok := packet.CheckSynCookie(&w.synKey, t.Src, t.Dst, t.SrcPort, t.DstPort, isn, cookie, period)
	if !ok && back {
		o, ok = packet.CheckSynCookie(&w.synKey, t.Src, t.Dst, t.SrcPort, t.DstPort, isn, cookie, period-2)
	}
	return o, ok
}

// tcpSeqAck returns the sequence number, acknowledgement number and window
// of the TCP segment p describes.
func tcpSeqAck(frame []byte, p *packet.Parsed) (seq, ack uint32, win uint16) {
	h := frame[p.L4Off:]
	return binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint16(h[14:])
}

// synWindow is the window of the SYN to the real server: the client's
// handshake-ACK window unscaled (a SYN's window never is), at most 65535.
func synWindow(win uint16, o packet.SynOptions) uint16 {
	if !o.HasWScale {
		return win
	}
	return uint16(min(uint32(win)<<min(o.WScale, 14), 0xffff))
}

// synProxyOpen handles a handshake ACK to proxied service svc that matched
// no connection: step 1 above.
func (w *worker) synProxyOpen(desc *xsk.Desc, frame []byte, svc *Service, t *conntrack.Tuple, inIface int, now int64, st *snapshot) (int, bool) {
	p := &w.p
	if p.HasIPOptions {
		// The steering program answers no SYN with IP options or IPv6
		// extension headers (nor does ProxySYN build one), so this is not
		// a handshake it made.
		w.drop(DropUnsupported)
		return 0, false
	}
	seq, ack, win := tcpSeqAck(frame, p)
	o, ok := w.checkCookie(t, seq-1, ack-1, now, false)
	if !ok {
		w.ctr.SynCookiesRejected.Add(1)
		return 0, false
	}
	w.ctr.SynCookiesAccepted.Add(1)
	c := w.schedule(svc, frame, p, t, inIface, now, st, &synProxyInit{cookie: ack - 1, win: win}, false)
	if c == nil {
		return 0, false
	}
	w.mirrorConn(c, st)
	return w.synToReal(desc, c, seq-1, o, st)
}

// synProxyQuote moves the sequence number quoted by the ICMP error in
// frame (about a reply of a proxied connection whose path is cp, addresses
// already translated) into the real server's space, keeping the ICMP checksum
// right. A quote too short for it (less than RFC 792's 8 bytes of L4) is
// left alone, and so is an error about a connection still pending.
func synProxyQuote(frame []byte, p *packet.Parsed, cp *connPath) {
	if cp.flags&flagSynPending == 0 {
		quoteSeqAdd(frame, p, cp.seqDelta)
	}
}

// quoteSeqAdd adds add to the TCP sequence number the ICMP error in frame
// quotes, keeping the ICMP checksum right; a quote too short for it (less
// than RFC 792's 8 bytes of L4) is left alone.
func quoteSeqAdd(frame []byte, p *packet.Parsed, add uint32) {
	in := &p.Inner
	off := in.L4Off + 4
	if in.Proto != lvs.ProtoTCP || in.Frag == packet.FragLater ||
		off+4 > p.L3Off+p.L3Len || p.L4Off+4 > off {
		return
	}
	old := binary.BigEndian.Uint32(frame[off:])
	seq := old + add
	binary.BigEndian.PutUint32(frame[off:], seq)
	// The quote starts at an even offset of the ICMP message (8 + an IP
	// header), so the sequence number is two aligned words of its sum.
	csum := binary.BigEndian.Uint16(frame[p.L4Off+2:])
	binary.BigEndian.PutUint16(frame[p.L4Off+2:], packet.UpdateChecksum32(csum, old, seq))
}

// synProxyReuses reports whether a handshake ACK that matched finished
// connection c (TIME_WAIT or CLOSE: the caller checks) opens a new proxied
// connection on the same tuple: the client reused its port, and the
// steering program answered its SYN with a cookie, so the SYN that
// Reusable would have seen never reached a worker. The cookie decides; the
// client's last ACK of the old connection does not carry one.
func (w *worker) synProxyReuses(c *conntrack.Conn, frame []byte, now int64, st *snapshot) bool {
	svc := st.service(c.Service)
	if svc == nil || !synProxied(svc) {
		return false
	}
	seq, ack, _ := tcpSeqAck(frame, &w.p)
	_, ok := w.checkCookie(&c.Orig, seq-1, ack-1, now, false)
	return ok
}

// synToReal turns the frame of desc, a client segment of pending proxied
// connection c that proved its cookie, into the SYN to the real server
// with the client's ISN isn and options o, and forwards it.
func (w *worker) synToReal(desc *xsk.Desc, c *conntrack.Conn, isn uint32, o packet.SynOptions, st *snapshot) (int, bool) {
	p := &w.p
	// The SYN may be longer than the ACK (options): it may use the rest
	// of the frame's chunk.
	room := w.umem.ChunkBase(desc.Addr) + uint64(w.umem.FrameSize()) - desc.Addr
	buf := w.umem.Bytes(desc.Addr, uint32(room))
	n, err := packet.ProxySYN(buf, p, isn, synWindow(w.path(c).clientWin, o), o)
	if err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	desc.Len = uint32(n)
	frame := buf[:n]
	dst := st.dest(c.Dest)
	nh, ok := w.nextHop(dst)
	if !ok {
		return 0, false // the client's next retransmission sends it again
	}
	ds := &dst.stats.perWorker[w.q]
	ds.inPkts.Add(1)
	ds.inBytes.Add(uint64(n))
	return w.toRealServer(desc, frame, p, c, dst, nh, c.Fwd)
}

// synProxySegment handles a segment of proxied connection c that process
// does not forward as usual: any segment while the real server's handshake
// is pending, and a SYN from the real server afterwards.
func (w *worker) synProxySegment(desc *xsk.Desc, frame []byte, c *conntrack.Conn, dir conntrack.Direction, inIface int, now int64, st *snapshot) (int, bool) {
	cp := w.path(c)
	p := &w.p
	if dir == conntrack.DirOriginal {
		return w.synProxyClient(desc, frame, c, now, st)
	}
	seq, ack, _ := tcpSeqAck(frame, p)
	flags := p.TCPFlags
	switch {
	case cp.flags&flagSynPending == 0:
		// A SYN-ACK again after the handshake: our ACK was lost. Its
		// sequence number less seqDelta is the cookie again.
		if !flags.IsSYNACK() {
			w.drop(DropUnsupported)
			return 0, false
		}
		if _, ok := w.checkCookie(&c.Orig, ack-1, seq-cp.seqDelta, now, true); !ok {
			w.drop(DropUnsupported)
			return 0, false
		}
		return w.ackToReal(desc, frame, c, ack, seq+1, inIface, st)
	case flags&lvs.TCPRst != 0:
		// Nothing listens: the client hears of it as it would have
		// without the proxy, at the sequence number it expects.
		cookie := cp.seqDelta
		packet.AdjustTCP(frame, p, cookie+1-seq, 0, 0)
		out, ok := w.toClient(frame, p, c)
		w.ct.Delete(c)
		return out, ok
	case flags&(lvs.TCPSyn|lvs.TCPAck) == lvs.TCPAck:
		// An ACK without SYN while our SYN is pending: a real server
		// that still holds an old connection of these endpoints
		// (TIME-WAIT; full-NAT reuses local ports, a restarted govsd
		// soonest) acknowledges that one instead. A TCP in SYN-SENT
		// answers such an unacceptable ACK with a reset (RFC 9293), which
		// clears the old connection; the client's next retransmission
		// sends the SYN again (synResendAfter).
		if _, ok := w.checkCookie(&c.Orig, ack-1, cp.seqDelta, now, true); ok {
			w.drop(DropUnsupported) // acceptable, but no SYN: ignored, as SYN-SENT does
			return 0, false
		}
		n, err := packet.ProxyRST(frame, p, ack)
		if err != nil {
			w.drop(DropMalformed)
			return 0, false
		}
		desc.Len = uint32(n)
		w.ctr.SynProxyResets.Add(1)
		return inIface, true
	case flags&(lvs.TCPSyn|lvs.TCPAck) == lvs.TCPSyn|lvs.TCPAck:
		cookie := cp.seqDelta
		o, ok := w.checkCookie(&c.Orig, ack-1, cookie, now, true)
		if !ok {
			// Not an answer to the SYN we sent.
			w.drop(DropUnsupported)
			return 0, false
		}
		var shift int8
		if o.HasWScale {
			ws, _ := packet.TCPWindowScale(frame, p) // 0 without the option
			shift = int8(ws) - int8(packet.SynProxyWScale)
		}
		cp.seqDelta = seq - cookie
		cp.winShift = shift
		cp.flags &^= flagSynPending
		w.ct.Restore(c, conntrack.StateEstablished, now+int64(w.ct.Timeout(conntrack.StateEstablished)))
		w.mirrorConn(c, st) // with the sequence translation now known
		if cp.clientAddr() {
			// The ACK carries the PROXY header or TOA, so it goes
			// in any case, before the held request.
			out, ok := w.ackToReal(desc, frame, c, ack, seq+1, inIface, st)
			w.emit(*desc, out, ok)
			w.sendHeld(c, cookie, st)
			return outKept, true
		}
		if w.sendHeld(c, cookie, st) {
			// The held request acknowledges the server's SYN-ACK itself
			// (translated, ack = server ISN+1): no bare ACK, whose only
			// effect would be a duplicate ACK from the server.
			return 0, false
		}
		return w.ackToReal(desc, frame, c, ack, seq+1, inIface, st)
	}
	w.drop(DropUnsupported)
	return 0, false
}

// ackToReal turns the real server's SYN-ACK in frame into the ACK that
// completes its handshake (seq, ack; the client's handshake window) and
// sends it back out of inIface.
func (w *worker) ackToReal(desc *xsk.Desc, frame []byte, c *conntrack.Conn, seq, ack uint32, inIface int, st *snapshot) (int, bool) {
	cp := w.path(c)
	n, err := packet.ProxyACK(frame, &w.p, seq, ack, cp.clientWin)
	if err == nil && cp.clientAddr() {
		// It completes the real server's handshake: the place of the
		// PROXY header and of TOA (proxyproto.go).
		frame = frame[:n]
		err = packet.Parse(frame, &w.p)
		if err == nil && cp.ppFlags&ppHeaderPending != 0 {
			if frame, err = w.ackWithHeader(desc, frame, c, cp); err != nil {
				return 0, false
			}
		}
		if err == nil && cp.ppFlags&ppTOAPending != 0 {
			if dst := st.dest(c.Dest); dst != nil {
				if nh, ok := w.d.res.lookup(dst.Addr); ok {
					frame = w.insertTOA(desc, frame, &w.p, c, nh)
				}
			}
		}
		n = len(frame)
	}
	if err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	desc.Len = uint32(n)
	if dst := st.dest(c.Dest); dst != nil {
		ds := &dst.stats.perWorker[w.q]
		ds.inPkts.Add(1)
		ds.inBytes.Add(uint64(n))
	}
	w.ctr.Inbound.Add(1)
	return inIface, true
}

// synProxyClient handles a client segment while the real server's
// handshake is pending.
func (w *worker) synProxyClient(desc *xsk.Desc, frame []byte, c *conntrack.Conn, now int64, st *snapshot) (int, bool) {
	p := &w.p
	if p.TCPFlags&lvs.TCPRst != 0 {
		w.ct.Delete(c)
		w.ctr.SynProxyDropped.Add(1)
		return 0, false
	}
	if isHandshakeACK(p) {
		seq, ack, _ := tcpSeqAck(frame, p)
		// Only the client knows the cookie it acknowledges.
		if ack-1 == w.path(c).seqDelta {
			sentAt := c.Expires - int64(w.ct.Timeout(c.State))
			if now-sentAt >= int64(synResendAfter) {
				// A segment at the client's ISN+1 (so says the cookie)
				// can become the SYN again.
				if o, ok := w.checkCookie(&c.Orig, seq-1, ack-1, now, true); ok {
					// Restore refreshes the expiry: the SYN's send time.
					w.ct.Restore(c, c.State, now+int64(w.ct.Timeout(c.State)))
					return w.synToReal(desc, c, seq-1, o, st)
				}
			}
			if hasPayload(frame, p) && w.hold(desc, c, seq, now) {
				return outKept, true
			}
		}
	}
	w.ctr.SynProxyDropped.Add(1)
	return 0, false
}

// hasPayload reports whether the TCP segment p describes carries data.
func hasPayload(frame []byte, p *packet.Parsed) bool {
	return p.L3Off+p.L3Len > p.L4Off+int(frame[p.L4Off+12]>>4)*4
}

// hold keeps the frame of desc, a data segment (sequence number seq) of
// pending proxied connection c, unless it is a retransmission of one kept,
// c has synHeldPerConn kept already, or every slot is taken.
func (w *worker) hold(desc *xsk.Desc, c *conntrack.Conn, seq uint32, now int64) bool {
	cp := w.path(c)
	free, n := -1, 0
	for i := range w.held {
		h := &w.held[i]
		if h.until == 0 {
			if free < 0 {
				free = i
			}
		} else if h.orig == c.Orig && h.cookie == cp.seqDelta {
			if h.seq == seq {
				return false // a retransmission
			}
			n++
		}
	}
	if free < 0 || n >= synHeldPerConn {
		return false
	}
	w.heldOrder++
	w.held[free] = heldSeg{orig: c.Orig, cookie: cp.seqDelta, seq: seq, order: w.heldOrder,
		addr: desc.Addr, len: desc.Len, until: now + int64(synHeldFor)}
	w.nheld++
	return true
}

// sendHeld forwards, translated and in the order they came, the segments
// held for c (whose handshake with cookie cookie has just completed), and
// reports whether there were any. It parses the held frames into w.p.
func (w *worker) sendHeld(c *conntrack.Conn, cookie uint32, st *snapshot) bool {
	sent := false
	for w.nheld > 0 {
		next := -1
		for i := range w.held {
			h := &w.held[i]
			if h.until != 0 && h.orig == c.Orig && h.cookie == cookie &&
				(next < 0 || int32(h.order-w.held[next].order) < 0) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		h := &w.held[next]
		desc := xsk.Desc{Addr: h.addr, Len: h.len}
		*h = heldSeg{}
		w.nheld--
		sent = true
		out, ok := w.forwardHeld(&desc, c, st)
		w.emit(desc, out, ok)
	}
	return sent
}

// forwardHeld translates a held request of c and rewrites it for its real
// server, as process does for a request.
func (w *worker) forwardHeld(desc *xsk.Desc, c *conntrack.Conn, st *snapshot) (int, bool) {
	frame := w.umem.Bytes(desc.Addr, desc.Len)
	p := &w.p
	if err := packet.Parse(frame, p); err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	dst := st.dest(c.Dest)
	if dst == nil {
		w.drop(DropNoDest)
		return 0, false
	}
	nh, ok := w.nextHop(dst)
	if !ok {
		return 0, false
	}
	ds := &dst.stats.perWorker[w.q]
	ds.inPkts.Add(1)
	ds.inBytes.Add(uint64(len(frame)))
	frame, ok = w.translateRequest(desc, frame, c, w.path(c), dst, nh)
	if !ok {
		return 0, false
	}
	return w.toRealServer(desc, frame, p, c, dst, nh, c.Fwd)
}

// expireHeld recycles the held segments whose time is up (their
// connection's real server did not answer in time, or it went away).
func (w *worker) expireHeld(now int64) {
	if w.nheld == 0 {
		return
	}
	for i := range w.held {
		if h := &w.held[i]; h.until != 0 && h.until <= now {
			w.release(h.addr)
			*h = heldSeg{}
			w.nheld--
			w.ctr.SynProxyDropped.Add(1)
		}
	}
}

// ackWithHeader makes c's PROXY header the payload of the ACK in frame
// that completes the real server's handshake.
func (w *worker) ackWithHeader(desc *xsk.Desc, frame []byte, c *conntrack.Conn, cp *connPath) ([]byte, error) {
	out, ok := w.setPayload(desc, frame, w.header(c, cp))
	if !ok {
		return nil, errors.New("proxy header: no room") // counted by setPayload
	}
	cp.ppFlags |= ppHeaderSent
	w.ctr.ProxyHeaders.Add(1)
	return out, nil
}
