package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Messages for Notify (sd_notify(3)).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notify sends state (newline-separated KEY=VALUE assignments) to the
// socket in $NOTIFY_SOCKET. It returns false, nil when the variable is
// unset (nothing to tell), true, nil when the message was sent.
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	return true, send(addr, state)
}

// Reloading is the message a service sends before it re-reads its
// configuration: RELOADING=1 with the time of the request on
// CLOCK_MONOTONIC (MONOTONIC_USEC), which systemd 253 and later require
// for Type=notify-reload and older ones ignore. READY=1 follows once the
// reload is done, whether it was applied or refused.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	usec := ts.Sec*1e6 + ts.Nsec/1e3
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec)
}

func send(addr, state string) error {
	switch {
	case strings.HasPrefix(addr, "@"):
		// Abstract namespace: Go spells the leading NUL as '@' too.
	case strings.HasPrefix(addr, "/"):
	default:
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract name", addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	// A supervisor that does not read must not stall govsd.
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := conn.Write([]byte(state))
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if n != len(state) {
		return errors.New("sdnotify: short write")
	}
	return nil
}
