package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/govs/govs/lvs"
)

const markSvc = dir + `marks:
  - fwmark: 2
    addresses: [2001:db8:5::/48]
    protocols: [udp]
services:
  - name: web2
    fwmark: 1
    scheduler: rr
    persistence: {timeout: 300s, netmask: 255.255.255.0}
    match:
      addresses: [198.18.0.100, 198.18.0.96/30]
      ports: [80, "8443-8444"]
      protocols: [tcp, udp]
    real_servers:
      - {address: 198.18.1.1}
      - {address: 198.18.1.2, port: 8080}
  - name: dns6
    fwmark: 2
    persistence: {}
    real_servers: [{address: "2001:db8::1"}]
  - name: plain
    vip: 198.18.0.50
    port: 443
`

func TestFwmarkService(t *testing.T) {
	cfg, err := Parse([]byte(markSvc), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.FwMark != 1 || s.VIP.IsValid() || s.Port != 0 || s.Match == nil {
		t.Fatalf("service %+v: want fwmark 1, no vip, port 0, a match", s)
	}
	want := Mark{FwMark: 1, Line: 12,
		Prefixes:  []netip.Prefix{netip.MustParsePrefix("198.18.0.100/32"), netip.MustParsePrefix("198.18.0.96/30")},
		Ports:     []PortRange{{80, 80}, {8443, 8444}},
		Protocols: []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP}}
	if !reflect.DeepEqual(*s.Match, want) {
		t.Errorf("match %+v, want %+v", *s.Match, want)
	}
	if s.Persistence.PrefixLen != 24 || s.RealServers[0].Port != 0 || s.RealServers[1].Port != 8080 {
		t.Errorf("persistence /%d, real server ports %d %d; want /24, 0, 8080", s.Persistence.PrefixLen, s.RealServers[0].Port, s.RealServers[1].Port)
	}
	if s.Key().String() != "fwmark 1" {
		t.Errorf("key %s", s.Key())
	}
	d := cfg.Services[1]
	if d.Match == nil || d.Match.FwMark != 2 || !d.Match.Prefixes[0].Addr().Is6() || d.Persistence.PrefixLen != 128 ||
		!reflect.DeepEqual(d.Match.Ports, []PortRange{{1, 65535}}) {
		t.Errorf("fwmark 2 from marks: %+v persistence %+v", d.Match, d.Persistence)
	}
	if len(cfg.Marks) != 2 || cfg.Mark(1) == nil || cfg.Mark(2) == nil || cfg.Mark(3) != nil {
		t.Errorf("marks %+v", cfg.Marks)
	}
	m := cfg.Mark(1)
	for _, c := range []struct {
		addr  string
		port  uint16
		proto lvs.Proto
		want  bool
	}{
		{"198.18.0.100", 80, lvs.ProtoTCP, true}, {"198.18.0.97", 8444, lvs.ProtoUDP, true}, {"198.18.0.97", 8445, lvs.ProtoTCP, false},
		{"198.18.0.101", 80, lvs.ProtoTCP, false},
	} {
		if got := m.Matches(netip.MustParseAddr(c.addr), c.port, c.proto); got != c.want {
			t.Errorf("Matches %s:%d/%s = %v", c.addr, c.port, c.proto, got)
		}
	}
}

// A marks section alone is valid: govsadm -A -f N uses it.
func TestFwmarkMarksOnly(t *testing.T) {
	cfg, err := Parse([]byte(dir+"marks:\n  - {fwmark: 5, addresses: [198.18.0.0/24], ports: [80, 443]}\n"), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Mark(5); m == nil || len(m.Ports) != 2 || m.Protocols[0] != lvs.ProtoTCP {
		t.Errorf("mark 5: %+v", m)
	}
}

func TestFwmarkRules(t *testing.T) {
	mk := func(svcs string) string { return dir + "services:\n" + svcs }
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"vip with fwmark", mk("  - {name: a, fwmark: 1, vip: 198.18.0.1, match: {addresses: [198.18.0.1]}}\n"),
			[]string{"govs.yaml:3: services[0].vip: not used with fwmark"}},
		{"match without fwmark", mk("  - {name: a, vip: 198.18.0.1, port: 80, match: {addresses: [198.18.0.1]}}\n"),
			[]string{"services[0].match: only used with fwmark"}},
		{"no match", mk("  - {name: a, fwmark: 3}\n"), []string{"services[0].match: missing: fwmark 3 needs a match here or in marks"}},
		{"fwmark 0", mk("  - {name: a, fwmark: 0, match: {addresses: [198.18.0.1]}}\n"), []string{"services[0].fwmark: 0 is out of range 1..4294967295"}},
		{"mixed families", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1, \"2001:db8::1\"]}}\n"),
			[]string{"services[0].match.addresses[1]: 2001:db8::1/128: a mark's addresses are of one family"}},
		{"host bits", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1/24]}}\n"),
			[]string{"198.18.0.1/24 has host bits set (did you mean 198.18.0.0/24?)"}},
		{"bad range", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1], ports: [\"90-80\", 0, \"x\"]}}\n"),
			[]string{`"90-80": the range is empty`, "ports[1]: 0 is out of range 1..65535", `want a port or a range like 8000-8080, got "x"`}},
		{"overlapping ports", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1], ports: [80, \"70-90\"]}}\n"),
			[]string{"ports[1]: 70-90 overlaps 80"}},
		{"too many ranges", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1], ports: [1,2,3,4,5], protocols: [tcp, udp]}}\n"),
			[]string{"5 port ranges × 2 protocols: at most 8"}},
		{"family of real server", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1]}, real_servers: [{address: \"2001:db8::1\"}]}\n"),
			[]string{"real_servers[0].address: 2001:db8::1: address family differs"}},
		{"syn proxy on", mk("  - {name: a, fwmark: 1, syn_proxy: on, match: {addresses: [198.18.0.1]}}\n"),
			[]string{"services[0].syn_proxy: on is not available for fwmark services"}},
		{"two services one mark", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1]}}\n  - {name: b, fwmark: 1, match: {addresses: [198.18.0.2]}}\n"),
			[]string{"govs.yaml:4: services[1]: duplicate service fwmark 1"}},
		{"marks overlap", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.0/24], ports: [80]}}\n  - {name: b, fwmark: 2, match: {addresses: [198.18.0.7], ports: [\"1-100\"]}}\n"),
			[]string{"govs.yaml:4: fwmark 2: match 198.18.0.7/32 ports 1-100 tcp overlaps fwmark 1's (line 3)"}},
		{"plain service overlaps", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.0/24], ports: [80]}}\n  - {name: b, vip: 198.18.0.9, port: 80}\n"),
			[]string{"govs.yaml:4: services[1]: service 198.18.0.9:80/tcp overlaps the match of fwmark 1 (line 3)"}},
		{"port-0 service overlaps", mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.0/24], ports: [80]}}\n  - {name: b, vip: 198.18.0.9, port: 0, persistence: {}}\n"),
			[]string{"service 198.18.0.9:0/tcp overlaps the match of fwmark 1"}},
		{"defined twice", dir + "marks:\n  - {fwmark: 1, addresses: [198.18.0.1]}\n  - {fwmark: 1, addresses: [198.18.0.2]}\n",
			[]string{"govs.yaml:4: marks[1].fwmark: fwmark 1 is defined twice (first at line 3)"}},
		{"match here and in marks", dir + "marks:\n  - {fwmark: 1, addresses: [198.18.0.1]}\nservices:\n  - {name: a, fwmark: 1, match: {addresses: [198.18.0.1]}}\n",
			[]string{"services[0].match: fwmark 1 is also defined in marks (line 3)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := mustFail(t, c.in)
			text := list.Error()
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("want %q in\n%s", w, text)
				}
			}
		})
	}
	// Other protocol or other ports: no overlap.
	ok := mk("  - {name: a, fwmark: 1, match: {addresses: [198.18.0.0/24], ports: [80]}}\n" +
		"  - {name: b, fwmark: 2, match: {addresses: [198.18.0.7], ports: [80], protocols: [udp]}}\n" +
		"  - {name: c, vip: 198.18.0.9, port: 443}\n")
	if _, err := Parse([]byte(ok), "govs.yaml"); err != nil {
		t.Errorf("non-overlapping marks refused: %v", err)
	}
}
