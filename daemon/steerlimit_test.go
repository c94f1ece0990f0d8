package daemon

import (
	"strings"
	"testing"

	"github.com/govs/govs/config"
	"github.com/govs/govs/dataplane"
)

// TestSteerLimitOptions: director.steer_limit reaches the data path at
// start (auto by default) and on a reload that changes it, only then.
func TestSteerLimitOptions(t *testing.T) {
	cfg, err := config.Parse([]byte("director: {interfaces: [eth0]}\n"), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := dataplaneOptions(cfg).SteerLimit; got != (dataplane.SteerLimit{Auto: true}) {
		t.Errorf("default steer limit %+v, want auto", got)
	}
	cfg.Director.SteerLimit = config.SteerLimit{PPS: 5000}
	if got := dataplaneOptions(cfg).SteerLimit; got != (dataplane.SteerLimit{PPS: 5000}) {
		t.Errorf("steer limit %+v, want 5000", got)
	}

	d, f := newTestDaemon(t, reloadBefore)
	rewrite(t, d, reloadBefore)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(f.steerLimits) != 0 {
		t.Errorf("unchanged steer_limit set again: %+v", f.steerLimits)
	}
	rewrite(t, d, strings.Replace(reloadBefore, "interfaces: [eth0]", "interfaces: [eth0]\n  steer_limit: 0", 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(f.steerLimits) != 1 || f.steerLimits[0] != (dataplane.SteerLimit{}) {
		t.Errorf("steer limit set to %+v, want one call, off", f.steerLimits)
	}
}
