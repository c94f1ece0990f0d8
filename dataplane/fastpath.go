package dataplane

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
)

// The XDP fast path (bpf/include/fastpath.h). A worker that forwards a
// packet of an established TCP connection, or of a UDP flow, writes a flow
// entry for that direction into the steering program's flow map, and the
// program forwards the direction's next packets itself: no copy into the
// UMEM, no system call, no skb. The worker stays the owner: SYN, FIN and RST
// segments still come to it, and when a connection leaves ESTABLISHED, is
// reused or expires, it deletes the entries (OnRemove). Before the table
// expires a connection it asks when the program last forwarded a packet of
// it (conntrack.Config.LastSeen), so a busy connection lives on. The
// entries are a cache: a change of services or next hops invalidates them
// all at once (a generation bump), and the next packet each direction
// brings to its worker writes a fresh one.
//
// The same entries, marked SteerOnly, are written for the connections whose
// packets stay on the workers while the steering meter is on
// (director.steer_limit not 0): with fast_path: false, or toward an
// interface that cannot take redirected frames (Interface.fastOK). The
// program then rewrites nothing, but steers such a flow's packets to the
// workers past the steering meter (overload.go): once a connection has
// shown fastAfter packets, its traffic goes before new flows' when a queue
// is overloaded. A change of fastOK invalidates every entry (a generation
// bump), so a steer-only entry becomes a forwarding one and back.

// Bits of connPath.flags: a flow entry was written for the
// request / reply direction, in generation connPath.fastGen; and a saturating
// count of the packets the worker forwarded while the connection could
// have had entries.
const (
	flagFastIn     uint16 = 0x0200
	flagFastOut    uint16 = 0x0400
	flagFast              = flagFastIn | flagFastOut
	fastCountShift        = 11
	fastCountMask  uint16 = 0x7 << fastCountShift
)

// fastAfter is how many packets of an established connection (or UDP
// flow) the workers forward before they write its flow entries. Writing
// and deleting entries costs system calls; a short connection (one HTTP
// request, a DNS query) ends before they would pay off, and a long one
// loses only its first few packets to the slower path.
const fastAfter = 6

// warm counts a packet of the connection forwarded by the worker while it
// could have had flow entries, and reports whether it has now shown enough
// traffic to get them.
func (cp *connPath) warm() bool {
	n := (cp.flags & fastCountMask) >> fastCountShift
	if n >= fastAfter {
		return true
	}
	n++
	cp.flags = cp.flags&^fastCountMask | n<<fastCountShift
	return n >= fastAfter
}

// monoOffset converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to nanotime:
// nanotime() == monotonic - monoOffset.
var monoOffset = bpf.MonotonicNow() - nanotime()

// fastState reports whether a connection in state s may be forwarded by
// the fast path: established TCP, and UDP.
func fastState(s conntrack.State) bool {
	return s == conntrack.StateEstablished || s == conntrack.StateUDP
}

func flowOf(t *conntrack.Tuple) bpf.Flow {
	return bpf.Flow{Src: t.Src, Dst: t.Dst, SrcPort: t.SrcPort, DstPort: t.DstPort, Proto: uint8(t.Proto)}
}

// fastGen returns the current flow generation, first forgetting the
// entries c has from an older one (they are stale: the program ignores
// them, and both directions must be written again).
func (w *worker) fastGen(c *conntrack.Conn) uint32 {
	cp := w.path(c)
	gen := w.d.steer.FlowGeneration()
	if cp.fastGen != uint16(gen) {
		cp.flags &^= flagFast
		cp.fastGen = uint16(gen)
	}
	return gen
}

// flowEntries reports whether the workers write flow entries: forwarding
// ones for the fast path, steer-only ones for the steering meter. With
// neither on, an entry would only cost system calls.
func (d *Director) flowEntries() bool { return d.opts.FastPath || d.meterOn.Load() }

// offloadRequest writes the flow entry of c's request direction, just
// forwarded to dst through nh by the worker (p: that request, as parsed
// before any rewrite), unless it has one already; a steer-only one when
// the fast path cannot forward it.
func (w *worker) offloadRequest(c *conntrack.Conn, dst *Dest, nh NextHop, p *packet.Parsed) {
	cp := w.path(c)
	if !fastState(c.State) || dst.ID >= bpf.FastDests {
		return
	}
	gen := w.fastGen(c)
	if cp.flags&flagFastIn != 0 || cp.ppFlags&(ppHeaderPending|ppTOAPending) != 0 || !cp.warm() {
		return
	}
	out := w.d.ifaces[nh.Iface]
	steerOnly := !w.d.opts.FastPath || !out.fastOK.Load()
	a, ok := fwdOf(c.Fwd).requestFlow(c, dst, nh, p,
		bpf.FlowAction{DstMAC: nh.DstMAC, SrcMAC: nh.SrcMAC, Ifindex: out.Index, DestID: dst.ID, SteerOnly: steerOnly})
	if !ok {
		return
	}
	if cp.flags&flagSynProxy != 0 {
		a.AckAdd = cp.seqDelta // as process does: synproxy.go
	}
	a.SeqAdd = uint32(cp.ppLen) // the PROXY header's shift: proxyproto.go
	w.installFlow(c, &c.Orig, &a, gen, flagFastIn)
}

// offloadReply writes the flow entry of c's reply direction (NAT and
// full-NAT), just forwarded to the client by the worker.
func (w *worker) offloadReply(c *conntrack.Conn, dst *Dest) {
	cp := w.path(c)
	if !fastState(c.State) || dst.ID >= bpf.FastDests || cp.flags&flagNoL2 != 0 {
		return
	}
	gen := w.fastGen(c)
	if cp.flags&flagFastOut != 0 || cp.ppFlags&(ppHeaderPending|ppTOAPending) != 0 || !cp.warm() {
		return
	}
	out := w.d.ifaces[cp.inPort]
	a, ok := fwdOf(c.Fwd).replyFlow(c, bpf.FlowAction{DstMAC: cp.clientMAC, SrcMAC: cp.localMAC, Ifindex: out.Index, DestID: dst.ID, Reply: true,
		SteerOnly: !w.d.opts.FastPath || !out.fastOK.Load()})
	if !ok {
		return
	}
	if cp.flags&flagSynProxy != 0 {
		a.SeqAdd, a.WinShift = -cp.seqDelta, cp.winShift
	}
	a.AckAdd = -uint32(cp.ppLen)
	w.installFlow(c, &c.Reply, &a, gen, flagFastOut)
}

func (w *worker) installFlow(c *conntrack.Conn, t *conntrack.Tuple, a *bpf.FlowAction, gen uint32, flag uint16) {
	// The packet just forwarded starts the idle time; past the state's
	// timeout the program sends the flow back to the worker.
	a.Seen = nanotime() + monoOffset
	a.IdleTimeout = w.ct.Timeout(c.State)
	if err := w.d.steer.InstallFlow(&w.flowBuf, flowOf(t), a, gen); err != nil {
		w.ctr.FastFailed.Add(1)
		return
	}
	w.path(c).flags |= flag
	w.ctr.FastInstalled.Add(1)
}

// unoffload deletes c's flow entries: it left ESTABLISHED or is going away.
func (w *worker) unoffload(c *conntrack.Conn) {
	cp := w.path(c)
	if cp.flags&flagFastIn != 0 {
		w.d.steer.DeleteFlow(&w.flowBuf, flowOf(&c.Orig))
	}
	if cp.flags&flagFastOut != 0 {
		w.d.steer.DeleteFlow(&w.flowBuf, flowOf(&c.Reply))
	}
	cp.flags &^= flagFast
}

// lastSeen returns when the fast path last forwarded a packet of c, on
// nanotime's clock, or 0 (conntrack.Config.LastSeen).
func (w *worker) lastSeen(c *conntrack.Conn) int64 {
	cp := w.path(c)
	if cp.flags&flagFast == 0 {
		return 0
	}
	var seen int64
	if cp.flags&flagFastIn != 0 {
		if ns, ok := w.d.steer.FlowLastSeen(&w.flowBuf, flowOf(&c.Orig)); ok {
			seen = ns - monoOffset
		}
	}
	if cp.flags&flagFastOut != 0 {
		if ns, ok := w.d.steer.FlowLastSeen(&w.flowBuf, flowOf(&c.Reply)); ok {
			seen = max(seen, ns-monoOffset)
		}
	}
	return seen
}

// refreshFastIfaces asks the kernel which interfaces accept XDP-redirected
// frames now, and invalidates the flow entries when that changed. In
// generic (skb) mode redirects need nothing from the driver. When the fast
// path cannot send toward an interface (at start, or from a change on), it
// logs one warning naming the interface, why and the fix; when it can
// again, one line.
func (d *Director) refreshFastIfaces() {
	changed := false
	for _, ifc := range d.ifaces {
		ok := ifc.Mode == bpf.ModeGeneric
		reason, fix := "", ""
		if !ok {
			f, err := xdpFeatures(ifc.Index)
			ok = err == nil && f&xdpActNdoXmit != 0
			if err != nil && !ifc.fastWarned {
				ifc.fastWarned = true
				d.log.Warn("xdp fast path: cannot read interface xdp features; the workers forward everything", "iface", ifc.Name, "err", err)
			}
			switch {
			case err != nil:
				reason = "xdp features unreadable"
			case !ok:
				reason, fix = fastOffReason(ifc)
			}
		}
		ifc.fastReason.Store(&reason)
		first := !ifc.fastChecked
		ifc.fastChecked = true
		if ifc.fastOK.Swap(ok) != ok {
			changed = true
		} else if !first {
			continue
		}
		if !d.opts.FastPath {
			continue
		}
		if ok {
			d.log.Info("xdp fast path on toward interface", "iface", ifc.Name)
		} else {
			d.log.Warn("xdp fast path off toward interface: the workers forward its traffic (slower)", "iface", ifc.Name,
				"reason", reason, "fix", fix)
		}
	}
	if changed {
		d.invalidateFlows()
	}
}

// fastOffReason says why interface ifc does not take redirected frames,
// and what fixes it.
func fastOffReason(ifc *Interface) (reason, fix string) {
	l, err := netlink.LinkByIndex(ifc.Index)
	if err != nil || l.Type() != "veth" {
		return "driver cannot take redirected frames (no ndo_xdp_xmit)",
			"xdp_mode: generic, or a NIC whose driver implements ndo_xdp_xmit"
	}
	peer := "PEER"
	if v, ok := l.(*netlink.Veth); ok {
		if i, err := netlink.VethPeerIndex(v); err == nil {
			peer = fmt.Sprintf("PEER (ifindex %d in its namespace)", i)
			if l.Attrs().NetNsID < 0 {
				// The peer is in this namespace: its index names it here.
				if p, err := netlink.LinkByIndex(i); err == nil {
					peer = p.Attrs().Name
				}
			}
		}
	}
	return "veth peer has neither XDP nor GRO",
		"ethtool -K " + peer + " gro on, or an XDP program on the veth's peer"
}

// FastPathState says whether the XDP fast path sends toward an interface.
type FastPathState struct {
	Interface string
	On        bool
	Reason    string // why not, when off: "fast_path: false", "veth peer has neither XDP nor GRO", ...
}

// FastPathStates lists the fast path's state toward every interface, as
// the last check (every 2 s) found it.
func (d *Director) FastPathStates() []FastPathState {
	out := make([]FastPathState, 0, len(d.ifaces))
	for _, ifc := range d.ifaces {
		st := FastPathState{Interface: ifc.Name, On: d.opts.FastPath && ifc.fastOK.Load()}
		switch {
		case !d.opts.FastPath:
			st.Reason = "fast_path: false"
		case !st.On:
			if r := ifc.fastReason.Load(); r != nil {
				st.Reason = *r
			}
		}
		out = append(out, st)
	}
	return out
}

func (d *Director) invalidateFlows() {
	if d.holdFlows.Load() {
		// State adopted from a previous govsd: its program still forwards
		// the fast path's flows with these entries until Start swaps ours
		// in, and then invalidates them once.
		return
	}
	if _, err := d.steer.InvalidateFlows(); err != nil {
		d.log.Warn("xdp fast path: invalidate flows", "err", err)
	}
}

// fastStats returns a reader of the fast path's counters of real server id.
func (d *Director) fastStats(id uint32) func() Stats {
	if id >= bpf.FastDests {
		return nil
	}
	return func() Stats {
		c, err := d.steer.FastDestCounters(id)
		if err != nil {
			return Stats{}
		}
		return Stats{InPkts: c.InPkts, InBytes: c.InBytes, OutPkts: c.OutPkts, OutBytes: c.OutBytes}
	}
}
