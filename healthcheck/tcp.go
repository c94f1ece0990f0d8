package healthcheck

import (
	"context"
	"time"
)

// tcpRegistration: a tcp check has no settings.
var tcpRegistration = Registration{
	Kinds:     []string{"tcp"},
	Checker:   TCPChecker{},
	NeedsPort: true,
	NewProbe:  func(string, Values) (Probe, []SettingError) { return TCPProbe{}, nil },
}

// TCPProbe is a TCP connect check; it has no settings of its own.
type TCPProbe struct{}

// Kind implements Probe.
func (TCPProbe) Kind() string { return "tcp" }

// TCPChecker passes when a TCP connection to the target is established
// within the timeout; the connection is closed at once.
type TCPChecker struct{}

// Check implements Checker.
func (TCPChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()
	conn, err := dial(ctx, "tcp", t)
	if err != nil {
		return errResult(ctx, start, err)
	}
	res := okResult(start)
	conn.Close()
	return res
}
