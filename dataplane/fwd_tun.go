package dataplane

import (
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/lvs"
)

// LVS-TUN (ipvsadm -i, "Tunnel"): the packet is encapsulated in IPIP (or
// IPv6-in-IPv6) toward the real server, which answers the client directly.
type tunFwd struct{ bypassReplies }

func init() { registerFwd(lvs.FwdTun, tunFwd{}) }

// toRealServer encapsulates in place, in the headroom of the frame's chunk.
// A packet that the outer header would take over the path MTU is answered
// with "fragmentation needed" (tooBig), as IPVS does.
func (tunFwd) toRealServer(w *worker, desc xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest, nh NextHop) (xsk.Desc, []byte, bool) {
	outer := packet.EncapOverhead(familyOf(dst.Addr))
	if p.L3Len+outer > nh.MTU {
		w.tooBig(frame, p, c, nh.MTU-outer)
		return desc, frame, false
	}
	src := nh.Src
	if src.IsZero() {
		w.drop(DropNoSource)
		return desc, frame, false
	}
	base := w.umem.ChunkBase(desc.Addr)
	chunk := w.umem.Bytes(base, uint32(w.umem.FrameSize()))
	w.ipID++
	off, n, err := packet.Encap(chunk, int(desc.Addr-base), int(desc.Len), p, src, dst.Addr, w.ipID)
	if err != nil {
		w.drop(DropMalformed)
		return desc, frame, false
	}
	desc.Addr, desc.Len = base+uint64(off), uint32(n)
	return desc, chunk[off : off+n], true
}

// icmpToRealServer: the quoted packet is the real server's own; the error
// is encapsulated to it like a request.
func (tunFwd) icmpToRealServer([]byte, *packet.Parsed, *conntrack.Conn, *Dest) (lvs.Fwd, error) {
	return lvs.FwdTun, nil
}

// requestFlow: the program encapsulates as toRealServer does, unless the
// flow is steer-only (nothing is rewritten then) or the director has no
// source address of the client's family toward the real server.
func (tunFwd) requestFlow(c *conntrack.Conn, dst *Dest, nh NextHop, p *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool) {
	if a.SteerOnly {
		a.Op = bpf.FlowForward
		return a, true
	}
	if nh.Src.IsZero() || familyOf(nh.Src) != familyOf(c.Orig.Dst) {
		return a, false
	}
	a.Op, a.Src, a.Dst = bpf.FlowEncap, nh.Src, dst.Addr
	a.MaxL3Len = nh.MTU - packet.EncapOverhead(familyOf(dst.Addr))
	a.FlowLabel = packet.FlowLabel(p)
	return a, true
}
