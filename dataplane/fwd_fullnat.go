package dataplane

import (
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Full-NAT: the source becomes a local address and port of the director
// as well as the destination the real server's, so that the replies come
// back through the director on any routing.
type fullNATFwd struct{}

func init() { registerFwd(lvs.FwdFullNAT, fullNATFwd{}) }

func (fullNATFwd) viaDirector() bool   { return true }
func (fullNATFwd) localEndpoint() bool { return true }

func (fullNATFwd) replyTuple(orig conntrack.Tuple, rip inet.Addr, rport uint16, laddr inet.Addr, lport uint16) conntrack.Tuple {
	return conntrack.Tuple{Src: rip, Dst: laddr, SrcPort: rport, DstPort: lport, Proto: orig.Proto}
}

func (fullNATFwd) toRealServer(_ *worker, desc xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest, _ NextHop) (xsk.Desc, []byte, bool) {
	packet.FullNAT(frame, p, c.LAddr, c.LPort, dst.Addr, c.Reply.SrcPort)
	return desc, frame, true
}

func (fullNATFwd) toClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) bool {
	packet.FullNAT(frame, p, c.Orig.Dst, c.Orig.DstPort, c.Orig.Src, c.Orig.SrcPort)
	return true
}

// icmpToRealServer: the real server knows the quoted reply as RIP:rport ->
// LIP:lport, and the error must come to it from the local address. Once
// translated, it is forwarded as DR forwards.
func (fullNATFwd) icmpToRealServer(frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest) (lvs.Fwd, error) {
	return lvs.FwdDR, packet.RewriteICMPError(frame, p, &c.LAddr, &dst.Addr, dst.Addr, c.Reply.SrcPort, c.LAddr, c.LPort)
}

func (fullNATFwd) icmpToClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) error {
	return packet.RewriteICMPError(frame, p, &c.Orig.Dst, &c.Orig.Src, c.Orig.Src, c.Orig.SrcPort, c.Orig.Dst, c.Orig.DstPort)
}

func (fullNATFwd) requestFlow(c *conntrack.Conn, dst *Dest, _ NextHop, _ *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool) {
	a.Op = bpf.FlowFullNAT
	a.Src, a.SrcPort, a.Dst, a.DstPort = c.LAddr, c.LPort, dst.Addr, c.Reply.SrcPort
	return a, true
}

func (fullNATFwd) replyFlow(c *conntrack.Conn, a bpf.FlowAction) (bpf.FlowAction, bool) {
	a.Op = bpf.FlowFullNAT
	a.Src, a.SrcPort, a.Dst, a.DstPort = c.Orig.Dst, c.Orig.DstPort, c.Orig.Src, c.Orig.SrcPort
	return a, true
}
