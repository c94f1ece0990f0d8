package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at addr and points NOTIFY_SOCKET at it.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyPath(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	for _, msg := range []string{Ready, Stopping} {
		sent, err := Notify(msg)
		if !sent || err != nil {
			t.Fatalf("Notify(%q) = %v, %v", msg, sent, err)
		}
		if got := recv(t, c); got != msg {
			t.Fatalf("received %q, want %q", got, msg)
		}
	}
}

func TestNotifyAbstract(t *testing.T) {
	c := listen(t, "@govs-sdnotify-test-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if sent, err := Notify(Ready); !sent || err != nil {
		t.Fatalf("Notify = %v, %v", sent, err)
	}
	if got := recv(t, c); got != Ready {
		t.Fatalf("received %q", got)
	}
}

func TestReloading(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	if _, err := Notify(Reloading()); err != nil {
		t.Fatal(err)
	}
	got := recv(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("received %q", got)
	}
	if us, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us == 0 {
		t.Fatalf("MONOTONIC_USEC in %q: %v", got, err)
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v", sent, err)
	}
}

func TestBadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := Notify(Ready); err == nil {
		t.Fatal("a relative NOTIFY_SOCKET was accepted")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if sent, err := Notify(Ready); !sent || err == nil {
		t.Fatalf("absent socket: %v, %v", sent, err)
	}
}
