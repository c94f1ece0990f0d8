package config

import (
	"strings"
	"testing"

	"github.com/govs/govs/lvs"
)

// TestClientAddrKeys: proxy_protocol and toa reach the Service, in every
// spelling ParseProxyProtocol takes, IPv4 and IPv6, and default to none and
// false.
func TestClientAddrKeys(t *testing.T) {
	const fnat = "forward: fullnat"
	cases := []struct {
		in    string
		proxy lvs.ProxyProtocol
		toa   bool
	}{
		{svc(fnat, "local_addresses: [198.18.1.250]"), lvs.ProxyNone, false},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: v2"), lvs.ProxyV2, false},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: v1", "toa: true"), lvs.ProxyV1, true},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: V2"), lvs.ProxyV2, false},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: 1"), lvs.ProxyV1, false},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: none", "toa: false"), lvs.ProxyNone, false},
		{svc(fnat, "local_addresses: [198.18.1.250]", "proxy_protocol: \"off\"", "toa: true",
			"real_servers: [{address: 198.18.1.1}, {address: 198.18.1.2, port: 8080, forward: fullnat}]"), lvs.ProxyNone, true},
		{svc6(fnat, "local_addresses: [2001:db8:1::250]", "proxy_protocol: v2", "toa: true",
			"real_servers: [{address: 2001:db8:1::1}]"), lvs.ProxyV2, true},
		// none and false are fine anywhere: they ask for nothing.
		{svc("protocol: udp", "proxy_protocol: none", "toa: false"), lvs.ProxyNone, false},
		{svc("forward: dr", "proxy_protocol: none"), lvs.ProxyNone, false},
	}
	for _, c := range cases {
		cfg, err := Parse([]byte(c.in), "govs.yaml")
		if err != nil {
			t.Errorf("refused\n%s: %v", c.in, err)
			continue
		}
		s := cfg.Services[0]
		if s.ProxyProtocol != c.proxy || s.TOA != c.toa {
			t.Errorf("\n%s: proxy_protocol %v, toa %v; want %v, %v", c.in, s.ProxyProtocol, s.TOA, c.proxy, c.toa)
		}
	}
}

// TestClientAddrRules: proxy_protocol and toa are refused, naming the file,
// the line and the key, where the director cannot send them: not TCP, an
// fwmark service, a service or a real server not forwarding by fullnat; and
// bad values.
func TestClientAddrRules(t *testing.T) {
	const fnat, la = "forward: fullnat", "local_addresses: [198.18.1.250]"
	mark := "director: {interfaces: [eth0]}\nmarks: [{fwmark: 1, addresses: [198.18.0.1]}]\nservices:\n" +
		"  - {name: a, fwmark: 1, forward: fullnat, local_addresses: [198.18.1.250], %s}\n"
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown version", svc(fnat, la, "proxy_protocol: v3"),
			[]string{`govs.yaml:8: services[0].proxy_protocol: "v3" is not valid (valid: v1, v2, none)`}},
		{"version as bool", svc(fnat, la, "proxy_protocol: true"),
			[]string{`govs.yaml:8: services[0].proxy_protocol: "true" is not valid`}},
		{"version as list", svc(fnat, la, "proxy_protocol: [v2]"),
			[]string{`govs.yaml:8: services[0].proxy_protocol: want a string, got a list`}},
		{"toa not bool", svc(fnat, la, "toa: yes please"),
			[]string{`govs.yaml:8: services[0].toa: want true or false, got "yes please"`}},
		{"udp", svc("protocol: udp", fnat, la, "proxy_protocol: v2"),
			[]string{"govs.yaml:9: services[0].proxy_protocol: v2 is only for tcp services (this one is udp)"}},
		{"udp toa", svc("protocol: udp", fnat, la, "toa: true"),
			[]string{"govs.yaml:9: services[0].toa: true is only for tcp services (this one is udp)"}},
		{"nat", svc("proxy_protocol: v1"),
			[]string{"govs.yaml:6: services[0].proxy_protocol: v1 needs forward: fullnat (the service uses nat;"}},
		{"dr toa", svc("forward: dr", "toa: true"),
			[]string{"govs.yaml:7: services[0].toa: true needs forward: fullnat (the service uses dr;"}},
		{"a nat server", svc(fnat, la, "proxy_protocol: v2", "real_servers:", "  - {address: 198.18.1.1}", "  - {address: 198.18.1.2, forward: nat}"),
			[]string{"govs.yaml:8: services[0].proxy_protocol: v2 needs forward: fullnat for every real server (real server 198.18.1.2 at line 11 uses nat)"}},
		{"fullnat servers, nat service", svc("toa: true", la, "real_servers: [{address: 198.18.1.1, forward: fullnat}]"),
			[]string{"govs.yaml:6: services[0].toa: true needs forward: fullnat (the service uses nat;"}},
		{"both on dr", svc("forward: tun", "proxy_protocol: v2", "toa: true"),
			[]string{"govs.yaml:7: services[0].proxy_protocol: v2 needs forward: fullnat (the service uses tun;",
				"govs.yaml:8: services[0].toa: true needs forward: fullnat (the service uses tun;"}},
		{"fwmark", strings.Replace(mark, "%s", "proxy_protocol: v2", 1),
			[]string{"govs.yaml:4: services[0].proxy_protocol: v2 is not available for fwmark services"}},
		{"fwmark toa", strings.Replace(mark, "%s", "toa: true", 1),
			[]string{"govs.yaml:4: services[0].toa: true is not available for fwmark services"}},
		{"typo", svc(fnat, la, "proxy_protocl: v2"),
			[]string{`govs.yaml:8: services[0].proxy_protocl: unknown key (did you mean "proxy_protocol"?)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := mustFail(t, c.in)
			if len(list.Errors) != len(c.want) {
				t.Errorf("%d errors, want %d:\n%s", len(list.Errors), len(c.want), list.Error())
			}
			got := list.Error()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors\n%s\nlack %q", got, w)
				}
			}
		})
	}
}
