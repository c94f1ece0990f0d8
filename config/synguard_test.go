package config

import (
	"strings"
	"testing"
)

func TestSynGuardDefaults(t *testing.T) {
	cfg, err := Parse([]byte(svc("real_servers: [{address: 198.18.1.1}]")), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := SynGuard{HalfOpen: DefaultSynProxyHalfOpen, SynRate: DefaultSynProxySynRate, Limit: DefaultSynLimit,
		Burst: DefaultSynLimitBurst, MSS: DefaultSynProxyMSS}
	if cfg.Director.SynGuard != want {
		t.Errorf("defaults %+v, want %+v", cfg.Director.SynGuard, want)
	}
	if got := cfg.Services[0].SynProxy; got != SynProxyAuto {
		t.Errorf("syn_proxy default %v, want auto", got)
	}
}

func TestSynGuardKeys(t *testing.T) {
	in := "director:\n  interfaces: [eth0]\n  syn_proxy_half_open: 0\n  syn_proxy_syn_rate: 5000\n" +
		"  syn_limit: 2000\n  syn_limit_burst: 64\n  syn_proxy_mss: 1400\n" +
		"services:\n" +
		"  - {name: a, vip: 198.18.0.100, port: 80, syn_proxy: on, real_servers: [{address: 198.18.1.1}]}\n" +
		"  - {name: b, vip: 198.18.0.100, port: 81, syn_proxy: off, forward: dr}\n" +
		"  - {name: c, vip: 198.18.0.100, port: 82, syn_proxy: auto, forward: tun}\n" +
		"  - {name: d, vip: 198.18.0.100, port: 53, protocol: udp, syn_proxy: off}\n" +
		"  - {name: e, vip: 2001:db8::1, port: 443, syn_proxy: on, forward: fullnat, local_addresses: [2001:db8::2]}\n"
	cfg, err := Parse([]byte(in), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Director.SynGuard, (SynGuard{HalfOpen: 0, SynRate: 5000, Limit: 2000, Burst: 64, MSS: 1400}); got != want {
		t.Errorf("director %+v, want %+v", got, want)
	}
	for i, want := range []SynProxyMode{SynProxyOn, SynProxyOff, SynProxyAuto, SynProxyOff, SynProxyOn} {
		if got := cfg.Services[i].SynProxy; got != want {
			t.Errorf("service %s: syn_proxy %v, want %v", cfg.Services[i].Name, got, want)
		}
	}
	// syn_limit: 0 alone turns the bucket off.
	cfg, err = Parse([]byte("director: {interfaces: [eth0], syn_limit: 0}\n"), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Director.SynGuard.Limit != 0 || cfg.Director.SynGuard.Burst != DefaultSynLimitBurst {
		t.Errorf("syn_limit 0: %+v", cfg.Director.SynGuard)
	}
}

func TestSynGuardRules(t *testing.T) {
	d := func(line string) string { return "director:\n  interfaces: [eth0]\n  " + line + "\n" }
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"half_open negative", d("syn_proxy_half_open: -1"), []string{"govs.yaml:3: director.syn_proxy_half_open: -1 is out of range 0..2147483647"}},
		{"syn rate not int", d("syn_proxy_syn_rate: 1k"), []string{`govs.yaml:3: director.syn_proxy_syn_rate: want an integer, got "1k"`}},
		{"syn_limit too big", d("syn_limit: 5000000000"), []string{"govs.yaml:3: director.syn_limit: 5000000000 is out of range 0..1073741824"}},
		{"burst zero", d("syn_limit_burst: 0"), []string{"govs.yaml:3: director.syn_limit_burst: 0 is out of range 1..1073741824"}},
		{"burst without limit", d("syn_limit: 0\n  syn_limit_burst: 10"), []string{"govs.yaml:4: director.syn_limit_burst: only used with a syn_limit above 0"}},
		{"mss small", d("syn_proxy_mss: 500"), []string{"govs.yaml:3: director.syn_proxy_mss: 500 is out of range 536..65495"}},
		{"mss typo", d("syn_proxy_ms: 1400"), []string{`govs.yaml:3: director.syn_proxy_ms: unknown key (did you mean "syn_proxy_mss"?)`}},
		{"syn_proxy invalid", svc("syn_proxy: yes"), []string{`govs.yaml:6: services[0].syn_proxy: "yes" is not valid (valid: auto, on, off)`}},
		{"syn_proxy bool", svc("syn_proxy: true"), []string{`govs.yaml:6: services[0].syn_proxy: "true" is not valid`}},
		{"syn_proxy on udp", svc("protocol: udp", "syn_proxy: on"), []string{"govs.yaml:7: services[0].syn_proxy: on is only for tcp services (this one is udp)"}},
		{"syn_proxy on dr", svc("forward: dr", "syn_proxy: on"), []string{"govs.yaml:7: services[0].syn_proxy: on needs forward: nat or fullnat (the service uses dr"}},
		{"syn_proxy on tun", svc("syn_proxy: on", "forward: tun"), []string{"govs.yaml:6: services[0].syn_proxy: on needs forward: nat or fullnat (the service uses tun"}},
		{"syn_proxy on, a dr server", svc("syn_proxy: on", "real_servers:", "  - {address: 198.18.1.1}", "  - {address: 198.18.1.2, forward: dr}"),
			[]string{"govs.yaml:6: services[0].syn_proxy: on needs forward: nat or fullnat (real server 198.18.1.2 at line 9 uses dr"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := mustFail(t, c.in)
			got := list.Error()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors\n%s\nlack %q", got, w)
				}
			}
		})
	}
	// What on refuses, auto and off accept.
	for _, ok := range []string{
		svc("protocol: udp", "syn_proxy: auto"), svc("protocol: udp", "syn_proxy: off"),
		svc("forward: dr", "syn_proxy: auto"), svc("forward: tun", "syn_proxy: off"),
	} {
		if _, err := Parse([]byte(ok), "govs.yaml"); err != nil {
			t.Errorf("refused\n%s: %v", ok, err)
		}
	}
}
