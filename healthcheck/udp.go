package healthcheck

import (
	"context"
	"errors"
	"strings"
	"time"
)

// maxDatagram is the receive buffer of UDP and DNS checks.
const maxDatagram = 4096

// UDPChecker sends UDPCheck.Send in one datagram from a connected socket.
//
// With UDPCheck.Expect set it passes on a reply containing Expect; a reply
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
	var send, expect string
	if u := t.Check.UDP; u != nil {
		send, expect = u.Send, u.Expect
	}

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
