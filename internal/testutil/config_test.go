package testutil

import (
	"strings"
	"testing"

	"github.com/govs/govs/config"
)

// TestConfigParses: what the builder writes is a configuration govsd
// accepts, with the lab's defaults, a test's replacement of one of them,
// and every field of a service.
func TestConfigParses(t *testing.T) {
	web := Service{Name: "web", VIP: "198.18.0.100", Port: 80, Forward: "fullnat",
		LocalAddresses: []string{"198.18.1.250"},
		Settings:       []string{"persistence: {timeout: 60s}"},
		Reals:          Reals(8080, LabReals4(2)...)}
	web.Reals[0].Weight = 3
	c := Config{
		Director: []string{"metrics_listen: 127.0.0.1:9469", "fast_path: false"},
		Services: []Service{web, {Name: "dns6", VIP: "2001:db8::100", Port: 53, Protocol: "udp", Scheduler: "wlc",
			Reals: Reals(5353, LabReals6(3)...)}},
	}
	text := c.YAML()
	if n := strings.Count(text, "metrics_listen:"); n != 1 {
		t.Errorf("metrics_listen written %d times, want the replacement only:\n%s", n, text)
	}
	cfg, err := config.Parse([]byte(strings.ReplaceAll(text, SocketPlaceholder, "/run/govs/test.sock")), "test.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	d := cfg.Director
	if strings.Join(d.Interfaces, ",") != "d0,d1" || d.MetricsListen != "127.0.0.1:9469" {
		t.Errorf("director %+v, want interfaces d0,d1 and the metrics listener given", d)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services, want 2:\n%s", len(cfg.Services), text)
	}
}

// TestWithDirector: a derived configuration does not change the one it
// comes from.
func TestWithDirector(t *testing.T) {
	base := Config{Director: make([]string, 1, 4)}
	base.Director[0] = "fast_path: true"
	a, b := base.WithDirector("steer_limit: 1"), base.WithDirector("fast_path: false")
	if got := strings.Join(a.Director, ";"); got != "fast_path: true;steer_limit: 1" {
		t.Errorf("a: %s", got)
	}
	if got := strings.Join(b.Director, ";"); got != "fast_path: true;fast_path: false" {
		t.Errorf("b: %s", got)
	}
	if len(base.Director) != 1 {
		t.Errorf("base changed: %v", base.Director)
	}
	if y := b.YAML(); strings.Count(y, "fast_path") != 1 || !strings.Contains(y, "fast_path: false") {
		t.Errorf("the later setting should replace the earlier one:\n%s", y)
	}
}

func TestWithPinPath(t *testing.T) {
	cfg := Config{}.YAML()
	got := WithPinPath(cfg, "/sys/fs/bpf/x")
	if !strings.HasPrefix(got, "director:\n  bpf_pin_path: /sys/fs/bpf/x\n") {
		t.Errorf("pin path not added:\n%s", got)
	}
	own := Config{Director: []string{`bpf_pin_path: ""`}}.YAML()
	if WithPinPath(own, "/sys/fs/bpf/x") != own {
		t.Errorf("a configuration's own bpf_pin_path was replaced")
	}
}
