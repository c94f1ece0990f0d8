package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const lifecycleYAML = "director:\n  interfaces: [lo]\n%s" +
	"services:\n  - {name: web, vip: 198.18.0.100, port: 80, real_servers: [{address: 198.18.1.1}]}\n"

// TestStopKinds: SIGTERM keeps what is pinned for the next govsd (Close);
// a stop for good, and any stop with nothing pinned, removes it
// (Shutdown).
func TestStopKinds(t *testing.T) {
	for _, c := range []struct {
		pin  string
		kind stopKind
		want string
	}{
		{"", stopRestart, "close"}, // the default bpf_pin_path
		{"  bpf_pin_path: /sys/fs/bpf/govs-t\n", stopRestart, "close"},
		{"  bpf_pin_path: /sys/fs/bpf/govs-t\n", stopHandover, "close"},
		{"  bpf_pin_path: /sys/fs/bpf/govs-t\n", stopForGood, "shutdown"},
		{"  bpf_pin_path: \"\"\n", stopHandover, "shutdown"},
	} {
		d, f := newTestDaemon(t, strings.Replace(lifecycleYAML, "%s", c.pin, 1))
		if err := d.stopDataPath(c.kind); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.stops, []string{c.want}) {
			t.Errorf("pin %q, %v: data path stops %v, want [%s]", c.pin, c.kind, f.stops, c.want)
		}
	}
}

// TestStopRequests: govsadm --shutdown and a takeover reach Run's loop and
// get its outcome; a second request while one is pending is refused.
func TestStopRequests(t *testing.T) {
	d, _ := newTestDaemon(t, strings.Replace(lifecycleYAML, "%s", "", 1))
	got := make(chan error, 1)
	go func() { got <- d.Shutdown() }()
	var req stopRequest
	select {
	case req = <-d.stops:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not reach the stop channel")
	}
	if req.kind != stopForGood {
		t.Errorf("Shutdown asked for %v", req.kind)
	}
	d.stops <- stopRequest{kind: stopHandover, done: make(chan error, 1)} // one pending
	if err := d.Handover(); err == nil || !strings.Contains(err.Error(), "already stopping") {
		t.Errorf("a second stop request: %v, want already stopping", err)
	}
	req.done <- nil
	if err := <-got; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
