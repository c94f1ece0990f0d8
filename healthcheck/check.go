package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Target is one thing to check: usually a real server of a service.
type Target struct {
	// Key is the stable identity of the target across Set calls, for
	// example "web/198.18.1.1:8080". Transitions and State use it.
	Key string
	// Service is the service's name, only for logs.
	Service string
	// Addr is where the check is sent: the real server, or the VIP when the
	// check goes through the load balancer (check_via_vip).
	Addr netip.Addr
	// Port is the resolved check port (unused by exec checks other than
	// for the {port} substitution).
	Port  uint16
	Check Spec
	// Mark is the SO_MARK put on the check's socket, 0 for none. Setting it
	// needs CAP_NET_ADMIN; check_via_vip uses it to policy-route the probe.
	Mark uint32
	// BindAddr, when valid, is the local address the check's socket binds.
	BindAddr netip.Addr
}

// Spec is how a target is checked: the probe, which names its checker, and
// the schedule and hysteresis the Manager applies to its results.
type Spec struct {
	// Probe is the checker's own settings (TCPProbe, HTTPProbe, ...); nil
	// means the target is not checked and always up.
	Probe Probe
	// Interval is the time between checks; 0 means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one check; 0 means DefaultTimeout.
	Timeout time.Duration
	// Rise is the consecutive successes that bring a down target up, Fall
	// the consecutive failures that take an up one down; below 1 counts
	// as 1.
	Rise, Fall int
}

// Probe is the typed settings of one kind of check. Kind is the name its
// checker is registered under (Register), so the Manager finds the checker
// for a probe. Probes are plain values, compared as a whole by Set to tell
// whether a target's check changed.
type Probe interface {
	Kind() string
}

// Defaults for a Spec that leaves Interval or Timeout zero.
const (
	DefaultInterval = 2 * time.Second
	DefaultTimeout  = 1 * time.Second
)

// Result is the outcome of one check.
type Result struct {
	OK bool
	// Reason says why the check failed, in a few words meant for logs and
	// the control socket: "refused", "timeout", "status 503",
	// "body mismatch", "exit status 1", ... It is "ok" on success.
	Reason  string
	Latency time.Duration
}

// Checker performs one kind of check. Check returns when the check is
// decided, when ctx is done, or when t.Check.Timeout has passed, whichever
// comes first. It reads its settings from t.Check.Probe, which normally
// has the checker's own Probe type. It is safe for concurrent use.
type Checker interface {
	Check(ctx context.Context, t *Target) Result
}

// probeOf returns t's probe as the checker's own settings type, and whether
// it is one.
func probeOf[P Probe](t *Target) (P, bool) {
	p, ok := t.Check.Probe.(P)
	return p, ok
}

const reasonOK = "ok"

func okResult(start time.Time) Result {
	return Result{OK: true, Reason: reasonOK, Latency: time.Since(start)}
}

func failResult(start time.Time, reason string) Result {
	return Result{Reason: reason, Latency: time.Since(start)}
}

func errResult(ctx context.Context, start time.Time, err error) Result {
	return failResult(start, reasonFor(ctx, err))
}

// checkTimeout is the effective time limit of one check.
func checkTimeout(spec *Spec) time.Duration {
	if spec.Timeout > 0 {
		return spec.Timeout
	}
	return DefaultTimeout
}

// checkInterval is the effective time between checks.
func checkInterval(spec *Spec) time.Duration {
	if spec.Interval > 0 {
		return spec.Interval
	}
	return DefaultInterval
}

// withCheckTimeout bounds ctx by the target's check timeout, so a Checker
// called directly (not through a Manager) is bounded too.
func withCheckTimeout(ctx context.Context, t *Target) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, checkTimeout(&t.Check))
}

// reasonFor turns an error of a check into a short reason. A done context
// wins over whatever the socket reported, since that error is usually just
// the consequence of the deadline.
func reasonFor(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timeout"
	case errors.Is(ctx.Err(), context.Canceled):
		return "cancelled"
	case err == nil:
		return reasonOK
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// dialer returns a dialer for network ("tcp" or "udp") that binds
// t.BindAddr and sets t.Mark.
func dialer(t *Target, network string) *net.Dialer {
	d := &net.Dialer{}
	if t.BindAddr.IsValid() {
		ip := t.BindAddr.Unmap().AsSlice()
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	if t.Mark != 0 {
		mark := int(t.Mark)
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("set SO_MARK %#x: %w", mark, serr)
			}
			return nil
		}
	}
	return d
}

// dialAddr is the address of the target's check port, as "host:port".
func dialAddr(t *Target) string {
	return netip.AddrPortFrom(t.Addr.Unmap(), t.Port).String()
}

// dial connects to the target on network ("tcp" or "udp").
func dial(ctx context.Context, network string, t *Target) (net.Conn, error) {
	return dialer(t, network).DialContext(ctx, network, dialAddr(t))
}
