package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/control"
)

func destSpec(d *Daemon, addr string, port uint16, weight *int) control.DestSpec {
	return control.DestSpec{Service: d.services[0].key(), Address: addr, Port: port, Weight: weight}
}

// TestExpireQuiescentTemplate: a persistent service's server quiesced by a
// failed check (or by the operator) has its persistence templates expired
// once, unless expire_quiescent_template is off; a removed server needs no
// expiry (the data path ignores templates of removed servers).
func TestExpireQuiescentTemplate(t *testing.T) {
	persistent := func(onFailure, extra string) string {
		cfg := strings.Replace(healthConfigFor(onFailure, false), "    scheduler: rr\n",
			"    scheduler: rr\n    persistence: {timeout: 300s}\n"+extra, 1)
		return cfg
	}
	start := func(t *testing.T, cfg string) (*Daemon, *fakeDataPath) {
		t.Helper()
		d, f := newTestDaemon(t, cfg)
		f.mu.Lock()
		f.expired = make(chan string, 16)
		f.mu.Unlock()
		withHealth(t, d)
		return d, f
	}
	next := func(f *fakeDataPath) string {
		select {
		case s := <-f.expired:
			return s
		case <-time.After(2 * time.Second):
			return ""
		}
	}
	none := func(t *testing.T, f *fakeDataPath) {
		t.Helper()
		select {
		case s := <-f.expired:
			t.Errorf("templates expired: %s", s)
		case <-time.After(200 * time.Millisecond):
		}
	}

	t.Run("quiesce", func(t *testing.T) {
		d, f := start(t, persistent("quiesce", ""))
		transition(d, "198.18.1.1:8080", false)
		if got, want := next(f), "198.18.0.100:80/6 198.18.1.1:8080"; got != want {
			t.Errorf("expired %q, want %q", got, want)
		}
		// A later change that leaves it quiescent does not expire again.
		transition(d, "198.18.1.2:8080", true)
		none(t, f)
		// Up again, then down again: expired again.
		transition(d, "198.18.1.1:8080", true)
		transition(d, "198.18.1.1:8080", false)
		if got := next(f); got != "198.18.0.100:80/6 198.18.1.1:8080" {
			t.Errorf("second failure: expired %q", got)
		}
	})
	t.Run("operator weight 0", func(t *testing.T) {
		d, f := start(t, persistent("quiesce", ""))
		w := 0
		if err := d.EditDest(destSpec(d, "198.18.1.2", 8080, &w)); err != nil {
			t.Fatal(err)
		}
		if got := next(f); got != "198.18.0.100:80/6 198.18.1.2:8080" {
			t.Errorf("govsadm -e -w 0: expired %q", got)
		}
	})
	t.Run("switched off", func(t *testing.T) {
		d, f := start(t, persistent("quiesce", "    expire_quiescent_template: false\n"))
		transition(d, "198.18.1.1:8080", false)
		none(t, f)
	})
	t.Run("switched off director-wide", func(t *testing.T) {
		cfg := strings.Replace(persistent("quiesce", ""), "  interfaces: [eth0]\n", "  interfaces: [eth0]\n  expire_quiescent_template: false\n", 1)
		d, f := start(t, cfg)
		transition(d, "198.18.1.1:8080", false)
		none(t, f)
	})
	t.Run("remove", func(t *testing.T) {
		d, f := start(t, persistent("remove", ""))
		transition(d, "198.18.1.1:8080", false)
		none(t, f)
	})
	t.Run("no persistence", func(t *testing.T) {
		d, f := start(t, healthConfigFor("quiesce", false))
		transition(d, "198.18.1.1:8080", false)
		none(t, f)
	})
}
