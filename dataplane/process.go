package dataplane

import (
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// process forwards the frame of desc in place; encapsulation may move its
// start and change its length. It returns the interface index to transmit
// on, or false when the frame is dropped (and counted).
func (w *worker) process(desc *xsk.Desc, inIface int, now int64, st *snapshot, owned bool) (int, bool) {
	frame := w.umem.Bytes(desc.Addr, desc.Len)
	p := &w.p
	if err := packet.Parse(frame, p); err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	if p.Frag != packet.FragNone && !w.frags.inside {
		return w.fragment(desc, frame, inIface, now, st, owned) // frag.go
	}
	if !owned && len(w.d.workers) > 1 {
		if owner := w.ownerOf(p, st); owner != w.q {
			return w.handOff(owner, desc, inIface)
		}
	}
	if p.Frag == packet.FragLater {
		w.drop(DropFragment)
		return 0, false
	}
	switch p.Proto {
	case lvs.ProtoTCP, lvs.ProtoUDP:
		// A sender with TX checksum offload (a container's veth) leaves
		// the checksum unfinished; the rewrites below are incremental,
		// and DR and TUN pass the segment on as it is.
		if packet.FinishL4Checksum(frame, p) {
			w.ctr.CsumFinished.Add(1)
		}
	case lvs.ProtoICMP, lvs.ProtoICMPv6:
		return w.processICMP(desc, frame, p, now, st)
	default:
		w.drop(DropUnsupported)
		return 0, false
	}
	t := conntrack.Tuple{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto}
	c, dir, found := w.ct.Lookup(&t, now)
	if found && dir == conntrack.DirOriginal && w.ct.Reusable(c, dir, p.TCPFlags) {
		// A new SYN on a finished connection starts a new one at once.
		w.ct.Delete(c)
		found = false
	} else if found && dir == conntrack.DirOriginal && (c.State == conntrack.StateTimeWait || c.State == conntrack.StateClose) &&
		isHandshakeACK(p) && w.synProxyReuses(c, frame, now, st) {
		// The same for a new connection whose SYN the XDP program
		// answered with a cookie (synproxy.go).
		w.ct.Delete(c)
		found = false
	}
	if !found {
		svc := st.lookup(p.Dst, p.DstPort, p.Proto)
		if svc == nil {
			w.drop(DropNoService)
			return 0, false
		}
		if isHandshakeACK(p) && synProxied(svc) {
			return w.synProxyOpen(desc, frame, svc, &t, inIface, now, st)
		}
		if c = w.newConn(frame, p, svc, &t, inIface, now, st); c == nil {
			return 0, false
		}
		dir = conntrack.DirOriginal
	}
	cp := w.path(c)
	if found && (cp.flags&flagSynPending != 0 ||
		(cp.flags&flagSynProxy != 0 && dir == conntrack.DirReply && p.TCPFlags&lvs.TCPSyn != 0)) {
		return w.synProxySegment(desc, frame, c, dir, inIface, now, st)
	}
	before := c.State
	w.ct.Track(c, dir, p.TCPFlags, now)
	if c.State != before && cp.flags&flagFast != 0 && !fastState(c.State) {
		w.unoffload(c) // FIN or RST: the workers see the rest
	}
	if !found || c.State != before {
		if w.d.syncOn.Load() {
			w.syncConn(c, st, now)
		}
		w.mirrorConn(c, st)
	}
	if dir == conntrack.DirOriginal && cp.flags&flagNoL2 != 0 {
		// A connection synced from another director (or adopted from
		// a govsd that served another interface) learns its client's
		// L2 neighbour from its first request here.
		cp.inPort, cp.clientMAC, cp.localMAC = uint16(inIface), [6]byte(frame[6:12]), [6]byte(frame[0:6])
		cp.flags &^= flagNoL2
		w.mirrorConn(c, st)
	}
	dst := st.dest(c.Dest)
	ds := &dst.stats.perWorker[w.q]
	if dir == conntrack.DirOriginal {
		ds.inPkts.Add(1)
		ds.inBytes.Add(uint64(len(frame)))
		nh, ok := w.nextHop(dst)
		if !ok {
			return 0, false
		}
		if cp.flags&flagSynProxy != 0 || cp.clientAddr() {
			if frame, ok = w.translateRequest(desc, frame, c, cp, dst, nh); !ok {
				return 0, false
			}
		}
		out, ok := w.toRealServer(desc, frame, p, c, dst, nh, c.Fwd)
		if ok && w.d.flowEntries() {
			w.offloadRequest(c, dst, nh, p)
		}
		return out, ok
	}
	ds.outPkts.Add(1)
	ds.outBytes.Add(uint64(len(frame)))
	if cp.flags&flagSynProxy != 0 || cp.clientAddr() {
		w.translateReply(frame, c, cp)
	}
	out, ok := w.toClient(frame, p, c)
	if ok && w.d.flowEntries() {
		w.offloadReply(c, dst)
	}
	return out, ok
}

// nextHop returns the next hop toward real server dst; a miss is counted
// (the frame is dropped) and makes the resolver look it up.
func (w *worker) nextHop(dst *Dest) (NextHop, bool) {
	nh, ok := w.d.res.lookup(dst.Addr)
	if !ok {
		w.drop(DropNeighMiss)
	}
	return nh, ok
}

// toRealServer forwards a frame of connection c, parsed in p, to its real
// server dst through next hop nh, rewritten for forwarding method fwd: the
// connection's own for a request; for an ICMP error whose addresses are
// already translated, DR's (only the MACs change) or TUN's.
func (w *worker) toRealServer(desc *xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest, nh NextHop, fwd lvs.Fwd) (int, bool) {
	if !packet.DecTTL(frame, p) {
		w.drop(DropTTL)
		return 0, false
	}
	d, frame, ok := fwdOf(fwd).toRealServer(w, *desc, frame, p, c, dst, nh)
	if !ok {
		return 0, false
	}
	*desc = d
	packet.SetMACs(frame, nh.DstMAC, nh.SrcMAC)
	w.ctr.Inbound.Add(1)
	return nh.Iface, true
}

// toClient translates a reply, parsed in p, back to VIP:vport -> CIP:cport
// and sends it to the L2 neighbour the connection's requests came from.
func (w *worker) toClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) (int, bool) {
	cp := w.path(c)
	if cp.flags&flagNoL2 != 0 {
		w.drop(DropSyncNoL2)
		return 0, false
	}
	if !packet.DecTTL(frame, p) {
		w.drop(DropTTL)
		return 0, false
	}
	if !fwdOf(c.Fwd).toClient(frame, p, c) {
		// DR and TUN replies never pass the director.
		w.drop(DropUnsupported)
		return 0, false
	}
	packet.SetMACs(frame, cp.clientMAC, cp.localMAC)
	w.ctr.Outbound.Add(1)
	return int(cp.inPort), true
}

func familyOf(a inet.Addr) uint8 {
	if a.Is4() {
		return 4
	}
	return 6
}
