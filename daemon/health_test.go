package daemon

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/healthcheck"
)

const healthConfig = `
director:
  interfaces: [eth0]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    scheduler: rr
    health_check: {type: tcp, interval: 1h}
    on_failure: @ONFAILURE@
    sorry_server: {address: 198.18.1.200, port: 8080}
    real_servers:
      - {address: 198.18.1.1, port: 8080, weight: 3}
      - {address: 198.18.1.2, port: 8080, weight: 1}
      - {address: 198.18.1.3, port: 8080, weight: 2, health_check: {type: none}}
`

func healthDaemon(t *testing.T, onFailure string, sorry bool) (*Daemon, *fakeDataPath) {
	t.Helper()
	d, f := newTestDaemon(t, healthConfigFor(onFailure, sorry))
	withHealth(t, d)
	return d, f
}

func transition(d *Daemon, server string, up bool) {
	d.onHealthChange(healthcheck.Transition{Key: "web/" + server, Up: up, Reason: "test"})
}

// TestHealthTransitions: a real server's health transitions reach the data
// path as on_failure and sorry_server say, recovery restores the configured
// weight, and the transitions are counted for the metrics.
func TestHealthTransitions(t *testing.T) {
	const (
		s1, s2, s3 = "198.18.1.1:8080", "198.18.1.2:8080", "198.18.1.3:8080"
	)
	all := "198.18.1.1:8080 w3 Masq 0/0, 198.18.1.2:8080 w1 Masq 0/0, 198.18.1.3:8080 w2 Masq 0/0"
	line := func(dests string) string { return "web tcp 198.18.0.100:80 rr Masq p0s/0 la[] [" + dests + "]" }

	t.Run("quiesce", func(t *testing.T) {
		d, f := healthDaemon(t, "quiesce", false)
		wantSpecs(t, f.last(t), line(all))
		transition(d, s1, false)
		wantSpecs(t, f.last(t), line("198.18.1.1:8080 w0 Masq 0/0, 198.18.1.2:8080 w1 Masq 0/0, 198.18.1.3:8080 w2 Masq 0/0"))
		up, tr := d.healthMetrics()
		if up["web/"+s1] || !up["web/"+s2] || !up["web/"+s3] || tr["web/"+s1] != 1 || tr["web/"+s2] != 0 {
			t.Errorf("health metrics up %v transitions %v", up, tr)
		}
		if ls := d.Services(); ls[0].Dests[0].Up || !ls[0].Dests[1].Up || ls[0].Dests[0].Weight != 0 {
			t.Errorf("listing after a failure: %+v", ls[0].Dests)
		}
		transition(d, s1, true)
		wantSpecs(t, f.last(t), line(all))
		if _, tr := d.healthMetrics(); tr["web/"+s1] != 2 {
			t.Errorf("transitions %v, want 2 for %s", tr, s1)
		}
	})
	t.Run("remove", func(t *testing.T) {
		d, f := healthDaemon(t, "remove", false)
		transition(d, s2, false)
		wantSpecs(t, f.last(t), line("198.18.1.1:8080 w3 Masq 0/0, 198.18.1.3:8080 w2 Masq 0/0"))
		transition(d, s2, true)
		wantSpecs(t, f.last(t), line(all))
	})
	t.Run("sorry server", func(t *testing.T) {
		// The unchecked server counts as up: the sorry server stays out
		// until the checked ones are down and the unchecked one is gone.
		d, f := healthDaemon(t, "quiesce", true)
		transition(d, s1, false)
		transition(d, s2, false)
		wantSpecs(t, f.last(t), line("198.18.1.1:8080 w0 Masq 0/0, 198.18.1.2:8080 w0 Masq 0/0, 198.18.1.3:8080 w2 Masq 0/0"))
		cfg := strings.Replace(strings.Replace(healthConfig, "@ONFAILURE@", "quiesce", 1),
			"      - {address: 198.18.1.3, port: 8080, weight: 2, health_check: {type: none}}\n", "", 1)
		rewrite(t, d, cfg)
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
		wantSpecs(t, f.last(t), line("198.18.1.1:8080 w0 Masq 0/0, 198.18.1.2:8080 w0 Masq 0/0, 198.18.1.200:8080 w1 Masq 0/0"))
		transition(d, s2, true)
		wantSpecs(t, f.last(t), line("198.18.1.1:8080 w0 Masq 0/0, 198.18.1.2:8080 w1 Masq 0/0"))
	})
	t.Run("unchecked and removed servers", func(t *testing.T) {
		d, f := healthDaemon(t, "quiesce", false)
		// A server with type none is not checked; a late transition of
		// a server that is no longer checked changes nothing.
		if _, known := d.health.m.State("web/" + s3); known {
			t.Error("a server with health_check type none is checked")
		}
		n := f.applies()
		transition(d, s3, false)
		if f.applies() != n {
			t.Error("a transition of an unchecked server was applied")
		}
		transition(d, s1, false)
		if err := d.DeleteDest(d.services[0].key(), "198.18.1.1", 8080); err != nil {
			t.Fatal(err)
		}
		// Each remaining server keeps its own check.
		if _, known := d.health.m.State("web/" + s2); !known {
			t.Errorf("%s lost its check when %s was deleted", s2, s1)
		}
		if _, known := d.health.m.State("web/" + s3); known {
			t.Errorf("%s took the check of another server when %s was deleted", s3, s1)
		}
		if _, known := d.up["web/"+s1]; known {
			t.Error("the health of a deleted server is remembered")
		}
		n = f.applies()
		transition(d, s1, true)
		if f.applies() != n {
			t.Error("a transition of a deleted server was applied")
		}
	})
}

// TestCheckSpec: each configured check type becomes its healthcheck probe
// with its settings (built by the type's registered checker), and the
// schedule carries over; type none is not probed.
func TestCheckSpec(t *testing.T) {
	for _, tc := range []struct {
		check string
		want  healthcheck.Probe
	}{
		{"{type: none}", nil},
		{"{type: tcp}", healthcheck.TCPProbe{}},
		{"{type: http, http: {method: HEAD, path: /health, host: web.test, expect_status: [200, 204], expect_body: ok}}",
			healthcheck.HTTPProbe{Method: "HEAD", Path: "/health", Host: "web.test", ExpectStatus: []int{200, 204}, ExpectBody: "ok"}},
		{"{type: https, http: {method: HEAD, path: /health, host: web.test, expect_status: [200, 204], expect_body: ok}}",
			healthcheck.HTTPProbe{TLS: true, Method: "HEAD", Path: "/health", Host: "web.test", ExpectStatus: []int{200, 204}, ExpectBody: "ok"}},
		{"{type: udp, udp: {send: ping, expect: pong}}", healthcheck.UDPProbe{Send: "ping", Expect: "pong"}},
		{"{type: dns, dns: {query: web.test., type: AAAA}}", healthcheck.DNSProbe{Query: "web.test.", QType: 28}},
		{`{type: exec, exec: {command: [/bin/true, "{address}"]}}`, healthcheck.ExecProbe{Command: []string{"/bin/true", "{address}"}}},
	} {
		in := "director: {interfaces: [eth0]}\nservices:\n  - {name: web, vip: 198.18.0.100, port: 80, real_servers: [{address: 198.18.1.1}],\n" +
			"     health_check: {interval: 3s, timeout: 2s, rise: 4, fall: 5, port: 8080, <<: " + tc.check + "}}\n"
		cfg, err := config.Parse([]byte(in), "govs.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.check, err)
		}
		hc := cfg.Services[0].RealServers[0].HealthCheck
		got := hc.Spec()
		want := healthcheck.Spec{Probe: tc.want, Interval: 3 * time.Second, Timeout: 2 * time.Second, Rise: 4, Fall: 5}
		if !reflect.DeepEqual(got, want) || hc.Port != 8080 {
			t.Errorf("%s: spec %+v port %d, want %+v port 8080", tc.check, got, hc.Port, want)
		}
		if tc.want != nil && healthcheck.CheckerFor(got.Probe.Kind()) == nil {
			t.Errorf("%s: no checker for kind %q", tc.check, got.Probe.Kind())
		}
	}
}
