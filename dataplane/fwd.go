package dataplane

import (
	"errors"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// forwarder is one forwarding method's part of the data path: everything
// the workers do differently per method. Each method lives in its own file
// (fwd_nat.go, fwd_fullnat.go, fwd_dr.go, fwd_tun.go) and registers itself
// in forwarders; a new method is one such file plus its part of the XDP
// program (bpf/), and the workers need no change.
//
// The packet path makes one call through this interface where it used to
// switch on the method. Arguments that live on a caller's stack are passed
// by value, never by pointer: a pointer handed to an interface method
// escapes, and would cost an allocation per packet or connection.
type forwarder interface {
	// viaDirector reports whether the real server's replies pass the
	// director, which translates them back (NAT, full-NAT); otherwise
	// the real server answers the client directly (DR, TUN).
	viaDirector() bool
	// localEndpoint reports whether a new connection needs a local
	// address and port of the director (full-NAT's source).
	localEndpoint() bool
	// replyTuple returns the tuple the real server's replies carry, for a
	// connection with request tuple orig to real server rip:rport, with
	// local endpoint laddr:lport where the method has one; the zero tuple
	// when the replies bypass the director.
	replyTuple(orig conntrack.Tuple, rip inet.Addr, rport uint16, laddr inet.Addr, lport uint16) conntrack.Tuple

	// toRealServer rewrites a request of c (whose TTL is already
	// decremented) for real server dst through next hop nh. It returns
	// the frame, which encapsulation moves within its chunk, and its
	// descriptor; false: dropped and counted.
	toRealServer(w *worker, desc xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest, nh NextHop) (xsk.Desc, []byte, bool)
	// toClient rewrites a reply of c (TTL decremented) back to
	// VIP:vport -> CIP:cport; false when the method's replies never pass
	// the director.
	toClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) bool

	// icmpToRealServer translates an ICMP error about a reply of c that
	// the director sent to the client, for real server dst, and returns
	// the method that then forwards the translated error.
	icmpToRealServer(frame []byte, p *packet.Parsed, c *conntrack.Conn, dst *Dest) (lvs.Fwd, error)
	// icmpToClient translates an ICMP error about a request of c that the
	// director sent to the real server, for the client;
	// errBypassesDirector when the method's connections send the client
	// nothing through the director.
	icmpToClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) error

	// requestFlow completes a, the XDP fast path's action for the
	// requests of c (p is the request just forwarded, as parsed before any
	// rewrite); false: the fast path cannot take them.
	requestFlow(c *conntrack.Conn, dst *Dest, nh NextHop, p *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool)
	// replyFlow completes a, the action for the replies of c; false
	// when they bypass the director.
	replyFlow(c *conntrack.Conn, a bpf.FlowAction) (bpf.FlowAction, bool)
}

// errBypassesDirector: the method's traffic toward the client does not
// pass the director, so there is nothing to translate.
var errBypassesDirector = errors.New("forwarding method bypasses the director toward the client")

// forwarders holds each method's forwarder, indexed by lvs.Fwd: the array
// covers every value of the byte, so indexing needs no bounds check, and a
// value no method registered finds unknownFwd.
var forwarders = func() (t [256]forwarder) {
	for i := range t {
		t[i] = unknownFwd{}
	}
	return t
}()

// registerFwd makes m the forwarder of method f; called from the init of
// the method's file.
func registerFwd(f lvs.Fwd, m forwarder) { forwarders[f] = m }

// fwdOf returns the forwarder of method f.
func fwdOf(f lvs.Fwd) forwarder { return forwarders[f] }

// viaDirector reports whether the replies of method f pass the director.
func viaDirector(f lvs.Fwd) bool { return fwdOf(f).viaDirector() }

// unknownFwd stands for a value no method registered (a corrupt record):
// its packets are dropped, and it has no flows.
type unknownFwd struct{}

func (unknownFwd) viaDirector() bool   { return false }
func (unknownFwd) localEndpoint() bool { return false }
func (unknownFwd) replyTuple(conntrack.Tuple, inet.Addr, uint16, inet.Addr, uint16) conntrack.Tuple {
	return conntrack.Tuple{}
}
func (unknownFwd) toRealServer(w *worker, desc xsk.Desc, frame []byte, _ *packet.Parsed, _ *conntrack.Conn, _ *Dest, _ NextHop) (xsk.Desc, []byte, bool) {
	w.drop(DropUnsupported)
	return desc, frame, false
}
func (unknownFwd) toClient([]byte, *packet.Parsed, *conntrack.Conn) bool { return false }
func (unknownFwd) icmpToRealServer(_ []byte, _ *packet.Parsed, c *conntrack.Conn, _ *Dest) (lvs.Fwd, error) {
	return c.Fwd, nil
}
func (unknownFwd) icmpToClient([]byte, *packet.Parsed, *conntrack.Conn) error {
	return errBypassesDirector
}
func (unknownFwd) requestFlow(_ *conntrack.Conn, _ *Dest, _ NextHop, _ *packet.Parsed, a bpf.FlowAction) (bpf.FlowAction, bool) {
	return a, false
}
func (unknownFwd) replyFlow(_ *conntrack.Conn, a bpf.FlowAction) (bpf.FlowAction, bool) {
	return a, false
}

// bypassReplies is the part of DR and TUN that their real servers'
// answering the client directly makes alike: no reply tuple, no reply to
// translate, no reply flow.
type bypassReplies struct{}

func (bypassReplies) viaDirector() bool   { return false }
func (bypassReplies) localEndpoint() bool { return false }
func (bypassReplies) replyTuple(conntrack.Tuple, inet.Addr, uint16, inet.Addr, uint16) conntrack.Tuple {
	return conntrack.Tuple{}
}
func (bypassReplies) toClient([]byte, *packet.Parsed, *conntrack.Conn) bool { return false }
func (bypassReplies) icmpToClient([]byte, *packet.Parsed, *conntrack.Conn) error {
	return errBypassesDirector
}
func (bypassReplies) replyFlow(_ *conntrack.Conn, a bpf.FlowAction) (bpf.FlowAction, bool) {
	return a, false
}
