package healthcheck

import (
	"context"
	"errors"
	"strings"
	"time"
)

// udpRegistration: the udp block is required, for its send.
var udpRegistration = Registration{
	Kinds:         []string{"udp"},
	Checker:       UDPChecker{},
	NeedsPort:     true,
	Block:         "udp",
	BlockRequired: true,
	Settings: []Setting{
		{Name: "send", Kind: String, Required: true, NonEmpty: true},
		{Name: "expect", Kind: String},
	},
	NewProbe: newUDPProbe,
}

func newUDPProbe(_ string, v Values) (Probe, []SettingError) {
	var p UDPProbe
	p.Send, _ = v.String("send")
	p.Expect, _ = v.String("expect")
	return p, nil
}

// maxDatagram is the receive buffer of UDP and DNS checks.
const maxDatagram = 4096

// UDPProbe is a UDP check: the payload to send and, optionally, what the
// reply must contain.
type UDPProbe struct {
	Send   string
	Expect string // "" means no reply is needed (see UDPChecker)
}

// Kind implements Probe.
func (UDPProbe) Kind() string { return "udp" }

// UDPChecker sends UDPProbe.Send in one datagram from a connected socket.
//
// With UDPProbe.Expect set it passes on a reply containing Expect; a reply
// without it is "reply mismatch", no reply "timeout".
//
// Without Expect it follows keepalived's UDP_CHECK: any reply passes, and so
// does silence until the timeout; only an ICMP error (port or host
// unreachable, seen by the connected socket as "refused" or
// "host unreachable") fails. Many UDP services never answer a probe, so
// silence cannot mean failure unless the configuration says what to expect.
type UDPChecker struct{}

// Check implements Checker.
func (UDPChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()
	u, _ := probeOf[UDPProbe](t) // none: an empty datagram, no reply needed
	send, expect := u.Send, u.Expect

	conn, err := dial(ctx, "udp", t)
	if err != nil {
		return errResult(ctx, start, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if _, err := conn.Write([]byte(send)); err != nil {
		return errResult(ctx, start, err)
	}
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	if err != nil {
		if expect == "" && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return okResult(start) // silent, and no ICMP error came back
		}
		return errResult(ctx, start, err)
	}
	// One wrong datagram is final: a connected socket only receives from
	// the server's address and port, so this is its answer.
	if expect != "" && !strings.Contains(string(buf[:n]), expect) {
		return failResult(start, "reply mismatch")
	}
	return okResult(start)
}
