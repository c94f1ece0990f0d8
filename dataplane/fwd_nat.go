package dataplane

import (
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// LVS-NAT (ipvsadm -m, "Masq"): the destination becomes the real server's,
// and its replies, routed back through the director, get the VIP back as
// their source.
type natFwd struct{}

func init() { registerFwd(lvs.FwdNAT, natFwd{}) }

func (natFwd) viaDirector() bool   { return true }
func (natFwd) localEndpoint() bool { return false }

func (natFwd) replyTuple(orig conntrack.Tuple, rip inet.Addr, rport uint16, _ inet.Addr, _ uint16) conntrack.Tuple {
	return conntrack.Tuple{Src: rip, Dst: orig.Src, SrcPort: rport, DstPort: orig.SrcPort, Proto: orig.Proto}
}

func (natFwd) toRealServer(_ *worker, desc xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest, _ NextHop) (xsk.Desc, []byte, bool) {
	packet.DNAT(frame, p, dst.Addr, c.Reply.SrcPort)
	return desc, frame, true
}

func (natFwd) toClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) bool {
	packet.SNAT(frame, p, c.Orig.Dst, c.Orig.DstPort)
	return true
}

// icmpToRealServer: the quoted reply went VIP:vport -> CIP:cport; the real
// server knows it as RIP:rport -> CIP:cport. Once translated, the error is
// forwarded as DR forwards (only the MACs change).
func (natFwd) icmpToRealServer(frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest) (lvs.Fwd, error) {
	return lvs.FwdDR, packet.RewriteICMPError(frame, p, nil, &dst.Addr, dst.Addr, c.Reply.SrcPort, c.Orig.Src, c.Orig.SrcPort)
}

func (natFwd) icmpToClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) error {
	return packet.RewriteICMPError(frame, p, &c.Orig.Dst, nil, c.Orig.Src, c.Orig.SrcPort, c.Orig.Dst, c.Orig.DstPort)
}

func (natFwd) requestFlow(c *conntrack.Conn, dst *Dest, _ NextHop, _ *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool) {
	a.Op, a.Dst, a.DstPort = bpf.FlowSetDst, dst.Addr, c.Reply.SrcPort
	return a, true
}

func (natFwd) replyFlow(c *conntrack.Conn, a bpf.FlowAction) (bpf.FlowAction, bool) {
	a.Op, a.Src, a.SrcPort = bpf.FlowSetSrc, c.Orig.Dst, c.Orig.DstPort
	return a, true
}
