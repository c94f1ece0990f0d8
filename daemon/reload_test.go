package daemon

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/lvs"
)

// specLines renders what the data path was given, one line per service,
// in order: the things a reload may change.
func specLines(specs []dataplane.ServiceSpec) []string {
	var out []string
	for _, s := range specs {
		var ds []string
		for _, d := range s.Dests {
			ds = append(ds, fmt.Sprintf("%s:%d w%d %s %d/%d", d.Addr, d.Port, d.Weight, d.Fwd.String(), d.Upper, d.Lower))
		}
		line := fmt.Sprintf("%s %s %s:%d %s %s p%v/%d la%v [%s]", s.Name, lvs.Proto(s.Proto).Name(), s.VIP, s.Port,
			s.Scheduler, s.Fwd.String(), s.Persistence, s.PersistBits, s.LocalAddrs, strings.Join(ds, ", "))
		if s.ProxyProtocol != lvs.ProxyNone {
			line += " proxy-protocol " + s.ProxyProtocol.String()
		}
		if s.TOA {
			line += " toa"
		}
		out = append(out, line)
	}
	return out
}

func wantSpecs(t *testing.T, got []dataplane.ServiceSpec, want ...string) {
	t.Helper()
	lines := specLines(got)
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("applied:\n  %s\nwant:\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
}

const reloadBefore = `
director:
  interfaces: [eth0]
  timeouts: {tcp: 900s, tcpfin: 120s, udp: 300s}
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    scheduler: rr
    real_servers:
      - {address: 198.18.1.1, port: 8080, weight: 3}
      - {address: 198.18.1.2, port: 8080, weight: 1}
      - {address: 198.18.1.3, port: 8080, weight: 1}
  - name: dns
    vip: 198.18.0.100
    port: 53
    protocol: udp
    real_servers:
      - {address: 198.18.1.1, port: 53}
  - name: ssh
    vip: 198.18.0.101
    port: 22
    forward: dr
    real_servers:
      - {address: 198.18.1.4, port: 22}
`

// The same director; web changes scheduler, one weight, one threshold, loses
// 198.18.1.3 and gains 198.18.1.5; dns is removed; ssh is unchanged; api is
// new.
const reloadAfter = `
director:
  interfaces: [eth0]
  timeouts: {tcp: 900s, tcpfin: 120s, udp: 300s}
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    scheduler: wlc
    real_servers:
      - {address: 198.18.1.1, port: 8080, weight: 3}
      - {address: 198.18.1.2, port: 8080, weight: 5, upper_threshold: 100}
      - {address: 198.18.1.5, port: 8080, weight: 2}
  - name: ssh
    vip: 198.18.0.101
    port: 22
    forward: dr
    real_servers:
      - {address: 198.18.1.4, port: 22}
  - name: api
    vip: 198.18.0.102
    port: 443
    forward: fullnat
    local_addresses: [198.18.2.1]
    persistence: {timeout: 60s, netmask: 255.255.255.0}
    real_servers:
      - {address: 198.18.1.6, port: 8443, weight: 4}
`

// TestReloadDiff: a reload hands the data path exactly the file's services:
// added, changed and removed services and real servers, unchanged ones as
// they were; an invalid file or a refusing data path changes nothing.
func TestReloadDiff(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore)
	wantSpecs(t, f.last(t),
		"web tcp 198.18.0.100:80 rr Masq p0s/0 la[] [198.18.1.1:8080 w3 Masq 0/0, 198.18.1.2:8080 w1 Masq 0/0, 198.18.1.3:8080 w1 Masq 0/0]",
		"dns udp 198.18.0.100:53 wlc Masq p0s/0 la[] [198.18.1.1:53 w1 Masq 0/0]",
		"ssh tcp 198.18.0.101:22 wlc Route p0s/0 la[] [198.18.1.4:22 w1 Route 0/0]")

	rewrite(t, d, reloadAfter)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := f.applies(); n != 2 {
		t.Errorf("%d applies, want 2 (one at start, one for the reload)", n)
	}
	after := []string{
		"web tcp 198.18.0.100:80 wlc Masq p0s/0 la[] [198.18.1.1:8080 w3 Masq 0/0, 198.18.1.2:8080 w5 Masq 100/0, 198.18.1.5:8080 w2 Masq 0/0]",
		"ssh tcp 198.18.0.101:22 wlc Route p0s/0 la[] [198.18.1.4:22 w1 Route 0/0]",
		"api tcp 198.18.0.102:443 wlc FullNat p1m0s/24 la[198.18.2.1] [198.18.1.6:8443 w4 FullNat 0/0]",
	}
	wantSpecs(t, f.last(t), after...)
	if len(f.timeouts) != 0 || len(f.synGuard) != 0 {
		t.Errorf("unchanged timeouts and SYN settings were set again: %v %v", f.timeouts, f.synGuard)
	}

	// A file that does not parse, or one the data path refuses, changes
	// nothing.
	rewrite(t, d, "director: {interfaces: [eth0]}\nservices:\n  - {name: x, vip: nonsense, port: 80}\n")
	if err := d.Reload(); err == nil {
		t.Error("an invalid file was accepted")
	}
	rewrite(t, d, reloadBefore)
	f.applyErr = errors.New("no room")
	err := d.Reload()
	if !errors.Is(err, control.ErrInvalid) {
		t.Errorf("a refused reload: %v, want ErrInvalid", err)
	}
	f.applyErr = nil
	if n := f.applies(); n != 2 {
		t.Errorf("%d applies after two refused reloads, want 2", n)
	}
	if got := specLines(d.effectiveSpecs()); strings.Join(got, "\n") != strings.Join(after, "\n") {
		t.Errorf("running configuration after refused reloads:\n  %s", strings.Join(got, "\n  "))
	}
	if d.cfg.Services[0].Scheduler != "wlc" {
		t.Errorf("the refused file's configuration was kept: scheduler %q", d.cfg.Services[0].Scheduler)
	}

	// govsadm's changes live in memory only: the file wins at the next
	// reload (as with ipvsadm and keepalived).
	if err := d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.103", Port: 80}}); err != nil {
		t.Fatal(err)
	}
	rewrite(t, d, reloadAfter)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	wantSpecs(t, f.last(t), after...)
}

// TestReloadDirectorSettings: changed timeouts and SYN-defence settings reach
// the data path at a reload; a refused SYN setting keeps the old one so that
// the next reload tries again.
func TestReloadDirectorSettings(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore)
	changed := strings.Replace(reloadBefore, "{tcp: 900s, tcpfin: 120s, udp: 300s}", "{tcp: 600s, tcpfin: 60s, udp: 30s}\n  syn_limit: 1234", 1)
	rewrite(t, d, changed)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(f.timeouts) != 1 {
		t.Fatalf("timeouts set %d times, want once", len(f.timeouts))
	}
	if got := d.Timeouts(); got != (control.Timeouts{TCP: 600, TCPFin: 60, UDP: 30}) {
		t.Errorf("timeouts after reload %+v", got)
	}
	if tm := f.timeouts[0]; tm.For(conntrack.StateEstablished) != 600*time.Second || tm.For(conntrack.StateUDP) != 30*time.Second {
		t.Errorf("data path got timeouts %+v", tm)
	}
	if len(f.synGuard) != 1 || f.synGuard[0].Limit != 1234 {
		t.Fatalf("syn guard set to %+v, want one call with limit 1234", f.synGuard)
	}

	// Refused: the old settings stay, and the next reload tries again.
	f.synGuardErr = errors.New("map update failed")
	rewrite(t, d, strings.Replace(changed, "syn_limit: 1234", "syn_limit: 99", 1))
	if err := d.Reload(); err != nil {
		t.Fatalf("a refused SYN setting fails the reload: %v", err)
	}
	if d.cfg.Director.SynGuard.Limit != 1234 {
		t.Errorf("refused syn_limit recorded as running: %d", d.cfg.Director.SynGuard.Limit)
	}
	f.synGuardErr = nil
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.synGuard); n != 2 || f.synGuard[1].Limit != 99 {
		t.Errorf("syn guard after the retry: %+v, want limit 99 applied", f.synGuard)
	}
	// A restart-only setting is logged, not applied, and does not fail.
	rewrite(t, d, strings.Replace(changed, "interfaces: [eth0]", "interfaces: [eth0, eth1]", 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
}
