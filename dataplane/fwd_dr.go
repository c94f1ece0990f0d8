package dataplane

import (
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/lvs"
)

// LVS-DR (ipvsadm -g, "Route"): only the Ethernet header changes; the real
// server holds the VIP and answers the client directly.
type drFwd struct{ bypassReplies }

func init() { registerFwd(lvs.FwdDR, drFwd{}) }

func (drFwd) toRealServer(_ *worker, desc xsk.Desc, frame []byte, _ *packet.Parsed, _ *conntrack.Conn, _ *Dest, _ NextHop) (xsk.Desc, []byte, bool) {
	return desc, frame, true
}

// icmpToRealServer: the quoted packet is the real server's own; the error
// goes to it as it is.
func (drFwd) icmpToRealServer([]byte, *packet.Parsed, *conntrack.Conn, *Dest) (lvs.Fwd, error) {
	return lvs.FwdDR, nil
}

func (drFwd) requestFlow(_ *conntrack.Conn, _ *Dest, _ NextHop, _ *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool) {
	a.Op = bpf.FlowForward
	return a, true
}
