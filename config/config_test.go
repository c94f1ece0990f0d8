package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/healthcheck"
	"github.com/govs/govs/lvs"
)

const fullExample = `director:
  interfaces: [eth0, eth1]
  xdp_mode: native
  control_socket: /run/govs-test.sock
  metrics_listen: "[::1]:9470"
  conn_table_size: 4096
  timeouts: {tcp: 10m, tcpfin: 30s, udp: 1m}
  manage_vips: true
  busy_poll: true
  control_group: adm
  expire_quiescent_template: false
  sync:
    role: both
    interface: eth1
    peers: [198.18.1.253, 198.18.1.254]
    port: 8849
    sync_id: 7
    key_file: /etc/govs/sync.key
  bgp:
    asn: 65001
    router_id: 198.18.0.254
    peers:
      - {address: 198.18.0.1, asn: 65000}
      - {address: 2001:db8::1, asn: 65002, port: 1179, password_file: /etc/govs/bgp.pw, hold_time: 9s, keepalive: 3s, multihop: 2, passive: true}
    communities: ["65001:100", "0:65535"]

services:
  - name: web
    vip: 198.18.0.100
    port: 80
    scheduler: sh
    scheduler_flags: [sh-port, sh-fallback]
    forward: dr
    persistence: {timeout: 60s, netmask: 255.255.255.0}
    health_check: &http
      type: http
      interval: 5s
      timeout: 2s
      http: {path: /healthz, host: example.test, expect_status: [200, 204], expect_body: ok}
    on_failure: quiesce
    expire_quiescent_template: true
    sorry_server: {address: 198.18.1.200}
    check_via_vip: true
    real_servers:
      - address: 198.18.1.1
        weight: 3
        upper_threshold: 100
        lower_threshold: 50
      - address: 198.18.1.2
        forward: tun
        health_check: {<<: *http, port: 8081, rise: 1}
  - name: api6
    vip: 2001:db8::100
    port: 0
    protocol: udp
    forward: fullnat
    persistence: {netmask: "/64"}
    local_addresses: [2001:db8:1::250, 2001:db8:1::251]
    health_check:
      type: udp
      port: 5353
      udp: {send: ping, expect: pong}
    real_servers:
      - {address: 2001:db8:1::1, port: 0}
      - {address: 2001:db8:1::2, weight: 0, health_check: {type: exec, exec: {command: [/bin/check, "{address}", "{port}"]}}}
      - {address: 2001:db8:1::3, health_check: {type: dns, dns: {query: example.test., type: aaaa}}}
`

func TestFullExample(t *testing.T) {
	cfg, err := Parse([]byte(fullExample), "full.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	addr := netip.MustParseAddr
	httpCheck := HealthCheck{
		Type: "http", Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3,
		Probe: healthcheck.HTTPProbe{Method: "GET", Path: "/healthz", Host: "example.test", ExpectStatus: []int{200, 204}, ExpectBody: "ok"},
	}
	withPort := func(hc HealthCheck, port uint16) HealthCheck { hc.Port = port; return hc }
	rs2Check := withPort(httpCheck, 8081)
	rs2Check.Rise = 1
	udpCheck := HealthCheck{Type: "udp", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Port: 5353,
		Probe: healthcheck.UDPProbe{Send: "ping", Expect: "pong"}}

	want := &Config{
		Director: Director{
			Interfaces:    []string{"eth0", "eth1"},
			XDPMode:       XDPNative,
			ControlSocket: "/run/govs-test.sock",
			MetricsListen: "[::1]:9470",
			ConnTableSize: 4096,
			Timeouts:      Timeouts{TCP: 10 * time.Minute, TCPFin: 30 * time.Second, UDP: time.Minute},
			ManageVIPs:    true,
			BusyPoll:      true,
			WorkerNice:    DefaultWorkerNice,
			ControlGroup:  "adm",
			FastPath:      true,
			BPFPinPath:    DefaultBPFPinPath,
			SynGuard:      SynGuard{HalfOpen: 4096, SynRate: 20000, Limit: 100000, Burst: 10000, MSS: 1460},
			SteerLimit:    SteerLimit{Auto: true},
			Sync: &Sync{Role: SyncBoth, Interface: "eth1", Peers: []netip.Addr{addr("198.18.1.253"), addr("198.18.1.254")},
				Port: 8849, SyncID: 7, KeyFile: "/etc/govs/sync.key"},
			BGP: &BGP{
				ASN: 65001, RouterID: addr("198.18.0.254"), NextHop: addr("198.18.0.254"),
				Peers: []BGPPeer{
					{Address: addr("198.18.0.1"), ASN: 65000, Port: 179},
					{Address: addr("2001:db8::1"), ASN: 65002, Port: 1179, PasswordFile: "/etc/govs/bgp.pw",
						HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Multihop: 2, Passive: true},
				},
				Communities: []Community{{65001, 100}, {0, 65535}},
			},
		},
		Services: []Service{
			{
				Name: "web", VIP: addr("198.18.0.100"), Port: 80, Protocol: lvs.ProtoTCP,
				Scheduler: "sh", SchedulerFlags: []string{"sh-port", "sh-fallback"},
				Forward:                 lvs.FwdDR,
				Persistence:             &Persistence{Timeout: time.Minute, PrefixLen: 24},
				HealthCheck:             httpCheck,
				OnFailure:               OnFailureQuiesce,
				ExpireQuiescentTemplate: true,
				SorryServer:             &SorryServer{Address: addr("198.18.1.200"), Port: 80},
				CheckViaVIP:             true,
				RealServers: []RealServer{
					{Address: addr("198.18.1.1"), Port: 80, Weight: 3, UpperThreshold: 100, LowerThreshold: 50,
						HealthCheck: withPort(httpCheck, 80), Line: 45},
					{Address: addr("198.18.1.2"), Port: 80, Weight: 1, Forward: fwdp(lvs.FwdTun), HealthCheck: rs2Check, Line: 49},
				},
				Line: 28,
			},
			{
				Name: "api6", VIP: addr("2001:db8::100"), Port: 0, Protocol: lvs.ProtoUDP,
				Scheduler: "wlc", Forward: lvs.FwdFullNAT,
				Persistence:    &Persistence{Timeout: 300 * time.Second, PrefixLen: 64},
				LocalAddresses: []netip.Addr{addr("2001:db8:1::250"), addr("2001:db8:1::251")},
				HealthCheck:    udpCheck,
				RealServers: []RealServer{
					{Address: addr("2001:db8:1::1"), Weight: 1, HealthCheck: udpCheck, Line: 64},
					{Address: addr("2001:db8:1::2"), Weight: 0, Line: 65, HealthCheck: HealthCheck{
						Type: "exec", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Port: 5353,
						Probe: healthcheck.ExecProbe{Command: []string{"/bin/check", "{address}", "{port}"}}}},
					{Address: addr("2001:db8:1::3"), Weight: 1, Line: 66, HealthCheck: HealthCheck{
						Type: "dns", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Port: 5353,
						Probe: healthcheck.DNSProbe{Query: "example.test.", QType: 28}}},
				},
				Line: 52,
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config differs:\n got %+v\nwant %+v", cfg, want)
		if !reflect.DeepEqual(cfg.Director, want.Director) {
			t.Errorf("director:\n got %+v\nwant %+v", cfg.Director, want.Director)
		}
		for i := range min(len(cfg.Services), len(want.Services)) {
			g, w := cfg.Services[i], want.Services[i]
			for j := range min(len(g.RealServers), len(w.RealServers)) {
				if !reflect.DeepEqual(g.RealServers[j], w.RealServers[j]) {
					t.Errorf("service %d server %d:\n got %+v\nwant %+v", i, j, g.RealServers[j], w.RealServers[j])
				}
			}
			g.RealServers, w.RealServers = nil, nil
			if !reflect.DeepEqual(g, w) {
				t.Errorf("service %d:\n got %+v\nwant %+v", i, g, w)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	in := "director:\n  interfaces: [eth0]\n  sync: {role: master, interface: eth1, group: 224.0.0.81, key_file: k}\n" +
		"  bgp: {asn: 1, router_id: 198.18.0.254, peers: [{address: 198.18.0.1, asn: 2}]}\n" +
		"services:\n  - {name: a, vip: 198.18.0.100, port: 80, real_servers: [{address: 198.18.1.1}]}\n" +
		"  - {name: b, vip: 2001:db8::1, port: 0, persistence: {}, health_check: {type: http}}\n"
	cfg, err := Parse([]byte(in), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Director
	if d.XDPMode != XDPAuto || d.ControlSocket != "/run/govs.sock" || d.MetricsListen != "127.0.0.1:9469" ||
		d.ConnTableSize != 1048576 || d.ManageVIPs || d.BusyPoll || !d.FastPath || d.ControlGroup != "" || !d.ExpireQuiescentTemplate ||
		d.BPFPinPath != "/sys/fs/bpf/govs" {
		t.Errorf("director defaults: %+v", d)
	}
	if d.Timeouts != (Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}) {
		t.Errorf("timeouts: %+v", d.Timeouts)
	}
	if s := d.Sync; s.Port != 8849 || s.SyncID != 0 || s.Group != netip.MustParseAddr("224.0.0.81") || s.Peers != nil {
		t.Errorf("sync: %+v", s)
	}
	if b := d.BGP; b.NextHop != b.RouterID || b.Peers[0].Port != 179 || b.Communities != nil {
		t.Errorf("bgp: %+v", b)
	}
	a := cfg.Services[0]
	if a.Protocol != lvs.ProtoTCP || a.Scheduler != lvs.DefaultScheduler || a.Forward != lvs.FwdNAT || a.Persistence != nil ||
		a.OnFailure != OnFailureRemove || !a.ExpireQuiescentTemplate || a.SorryServer != nil || a.CheckViaVIP || a.LocalAddresses != nil {
		t.Errorf("service defaults: %+v", a)
	}
	none := HealthCheck{Type: CheckNone, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}
	if !reflect.DeepEqual(a.HealthCheck, none) {
		t.Errorf("service check: %+v", a.HealthCheck)
	}
	rs := a.RealServers[0]
	if rs.Port != 80 || rs.Weight != 1 || rs.Forward != nil || rs.UpperThreshold != 0 || rs.LowerThreshold != 0 {
		t.Errorf("real server defaults: %+v", rs)
	}
	none.Port = 80
	if !reflect.DeepEqual(rs.HealthCheck, none) {
		t.Errorf("real server check: %+v", rs.HealthCheck)
	}
	b := cfg.Services[1]
	if *b.Persistence != (Persistence{Timeout: 300 * time.Second, PrefixLen: 128}) {
		t.Errorf("persistence: %+v", *b.Persistence)
	}
	if h, ok := b.HealthCheck.Probe.(healthcheck.HTTPProbe); !ok || h.Method != "GET" || h.Path != "/" || !reflect.DeepEqual(h.ExpectStatus, []int{200}) {
		t.Errorf("http defaults: %+v", h)
	}
	if cfg.Services[0].Persistence != nil {
		t.Error("persistence without block")
	}
	// Four IPv4 persistence forms.
	for _, mask := range []string{"255.255.255.0", "24", `"/24"`} {
		cfg, err := Parse([]byte(svc("persistence: {netmask: "+mask+"}")), "p.yaml")
		if err != nil {
			t.Fatalf("netmask %s: %v", mask, err)
		}
		if got := cfg.Services[0].Persistence.PrefixLen; got != 24 {
			t.Errorf("netmask %s: prefix %d", mask, got)
		}
	}
}

func TestAcceptForeignMAC(t *testing.T) {
	cfg, err := Parse([]byte("director:\n  interfaces: [eth0, eth1]\n  accept_foreign_mac: [eth1]\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Director.AcceptForeignMAC; !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Errorf("accept_foreign_mac: %v", got)
	}
	cfg, err = Parse([]byte("director: {interfaces: [eth0], accept_foreign_mac: []}\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Director.AcceptForeignMAC; len(got) != 0 {
		t.Errorf("empty accept_foreign_mac: %v", got)
	}
	cfg, err = Parse([]byte(dir), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Director.AcceptForeignMAC != nil {
		t.Errorf("accept_foreign_mac default: %v, want none", cfg.Director.AcceptForeignMAC)
	}
}

func TestMetricsListenDisabled(t *testing.T) {
	cfg, err := Parse([]byte("director: {interfaces: [eth0], metrics_listen: \"\"}\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Director.MetricsListen != "" {
		t.Errorf("metrics_listen = %q", cfg.Director.MetricsListen)
	}
}

func TestHealthCheckOverlay(t *testing.T) {
	in := svc("health_check:", "  type: http", "  interval: 10s", "  http: {path: /ready}", "real_servers:",
		"  - {address: 198.18.1.1, health_check: {timeout: 3s}}",
		"  - {address: 198.18.1.2, health_check: {type: https}}",
		"  - {address: 198.18.1.3, health_check: {type: tcp, port: 22}}",
		"  - {address: 198.18.1.4, port: 8080, forward: nat}")
	cfg, err := Parse([]byte(in), "o.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rss := cfg.Services[0].RealServers
	httpPath := func(hc HealthCheck) string { h, _ := hc.Probe.(healthcheck.HTTPProbe); return h.Path }
	if hc := rss[0].HealthCheck; hc.Type != "http" || hc.Interval != 10*time.Second || hc.Timeout != 3*time.Second || httpPath(hc) != "/ready" || hc.Port != 80 {
		t.Errorf("server 0: %+v", hc)
	}
	if hc := rss[1].HealthCheck; hc.Type != "https" || !reflect.DeepEqual(hc.Probe, healthcheck.HTTPProbe{TLS: true, Method: "GET", Path: "/ready", ExpectStatus: []int{200}}) {
		t.Errorf("server 1 keeps the http block when switching to https: %+v", hc)
	}
	if hc := rss[2].HealthCheck; hc.Type != "tcp" || hc.Probe != (healthcheck.TCPProbe{}) || hc.Port != 22 || hc.Interval != 10*time.Second {
		t.Errorf("server 2 drops the http block when switching to tcp: %+v", hc)
	}
	if hc := rss[3].HealthCheck; hc.Port != 8080 {
		t.Errorf("server 3 check port %d, want its own 8080", hc.Port)
	}
	if cfg.Services[0].HealthCheck.Port != 0 {
		t.Errorf("service-level check port resolved: %d", cfg.Services[0].HealthCheck.Port)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	in := dir + `services:
  - &base
    name: a
    vip: 198.18.0.100
    port: 80
    health_check: &hc {type: tcp, fall: 5}
    real_servers: &rs [{address: 198.18.1.1}]
  - <<: *base
    name: b
    port: 443
    health_check: {<<: *hc, rise: 4}
    real_servers: *rs
`
	cfg, err := Parse([]byte(in), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Services[1]
	if b.Name != "b" || b.Port != 443 || b.VIP != netip.MustParseAddr("198.18.0.100") {
		t.Errorf("merged service: %+v", b)
	}
	if b.HealthCheck.Type != "tcp" || b.HealthCheck.Fall != 5 || b.HealthCheck.Rise != 4 {
		t.Errorf("merged check: %+v", b.HealthCheck)
	}
	if len(b.RealServers) != 1 || b.RealServers[0].Port != 443 || b.RealServers[0].HealthCheck.Port != 443 {
		t.Errorf("aliased real servers: %+v", b.RealServers)
	}
}

func TestLoad(t *testing.T) {
	dirPath := t.TempDir()
	good := filepath.Join(dirPath, "govs.yaml")
	if err := os.WriteFile(good, []byte(svc()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || len(cfg.Services) != 1 {
		t.Fatalf("Load: %v %+v", err, cfg)
	}

	bad := filepath.Join(dirPath, "bad.yaml")
	if err := os.WriteFile(bad, []byte(svc("forward: bogus")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(bad)
	var list *ErrorList
	if cfg != nil || !errors.As(err, &list) || !strings.HasPrefix(err.Error(), bad+":6: services[0].forward:") {
		t.Errorf("Load(bad) = %v, %v", cfg, err)
	}

	_, err = Load(filepath.Join(dirPath, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestMethods(t *testing.T) {
	s := Service{VIP: netip.MustParseAddr("2001:db8::1"), Port: 53, Protocol: lvs.ProtoUDP, Forward: lvs.FwdDR}
	if k := s.Key(); k != (ServiceKey{VIP: s.VIP, Port: 53, Proto: lvs.ProtoUDP}) || k.String() != "[2001:db8::1]:53/udp" {
		t.Errorf("key %v", k)
	}
	if f := s.ForwardFor(&RealServer{}); f != lvs.FwdDR {
		t.Errorf("inherit: %v", f)
	}
	if f := s.ForwardFor(&RealServer{Forward: fwdp(lvs.FwdTun)}); f != lvs.FwdTun {
		t.Errorf("override: %v", f)
	}
	for v, want := range map[interface{ String() string }]string{
		XDPGeneric: "generic", SyncBackup: "backup", OnFailureRemove: "remove",
		Community{65001, 100}: "65001:100",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
	if (Community{1, 2}).Uint32() != 1<<16|2 {
		t.Error("community wire form")
	}
}

// fwdp is a real server's own forwarding method.
func fwdp(f lvs.Fwd) *lvs.Fwd { return &f }

// FuzzParse checks that no input panics and that Parse returns either a
// Config or an *ErrorList, never both or neither.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullExample))
	f.Add([]byte(svc("forward: dr", "real_servers:", "  - {address: 198.18.1.1, port: 8080}")))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Add([]byte("director: &d {<<: *d}\n"))
	f.Add([]byte("director: {interfaces: [eth0]}\nservices: [{<<: [{name: a}, 1]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v, err %v", cfg, err)
		}
		if err != nil {
			var list *ErrorList
			if !errors.As(err, &list) || len(list.Errors) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
		}
	})
}

func TestBPFPinPath(t *testing.T) {
	const head = "director:\n  interfaces: [eth0]\n"
	for _, c := range []struct{ in, want, err string }{
		{in: "", want: DefaultBPFPinPath},
		{in: "  bpf_pin_path: /sys/fs/bpf/govs-a\n", want: "/sys/fs/bpf/govs-a"},
		{in: "  bpf_pin_path: \"\"\n", want: ""},
		{in: "  bpf_pin_path: govs\n", err: "d.yaml:3: director.bpf_pin_path: want an absolute path"},
	} {
		cfg, err := Parse([]byte(head+c.in), "d.yaml")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := cfg.Director.BPFPinPath; got != c.want {
			t.Errorf("%q: bpf_pin_path %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSloppy(t *testing.T) {
	const head = "director:\n  interfaces: [eth0]\n%s" +
		"services:\n  - {name: a, vip: 198.18.0.100, port: 80, forward: %s%s, real_servers: [{address: 198.18.1.1}]}\n"
	for _, c := range []struct {
		director, fwd, svc string
		want               bool
		err                string
	}{
		{fwd: "dr"},
		{fwd: "dr", svc: ", sloppy: true", want: true},
		{director: "  sloppy: true\n", fwd: "dr", want: true},
		{director: "  sloppy: true\n", fwd: "tun", svc: ", sloppy: false"},
		{director: "  sloppy: true\n", fwd: "nat", want: true}, // a default: only dr and tun servers take mid-flow segments
		{fwd: "nat", svc: ", sloppy: true", err: "d.yaml:4: services[0].sloppy: only dr and tun real servers"},
	} {
		cfg, err := Parse([]byte(fmt.Sprintf(head, c.director, c.fwd, c.svc)), "d.yaml")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: error %v, want %q", c, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		if got := cfg.Services[0].Sloppy; got != c.want {
			t.Errorf("%+v: sloppy %v, want %v", c, got, c.want)
		}
	}
}
