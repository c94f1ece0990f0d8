package bpf

import (
	"net/netip"
	"testing"
)

// TestSteerMarks checks the firewall-mark lookup of the steering program:
// a packet to a prefix and port range of a mark goes to the workers, plain
// services are matched first, an enclosing prefix's ranges hold for a more
// specific one, later fragments to a mark's prefix are steered, and
// removing the marks stops all of it.
func TestSteerMarks(t *testing.T) {
	s := newTestSteering(t)
	want := []MarkPrefix{
		// fwmark service 100: 198.18.5.0/24 tcp 80 and 8443, udp 8443.
		{Prefix: netip.MustParsePrefix("198.18.5.0/24"), Ranges: []MarkRange{
			{Lo: 80, Hi: 80, Proto: 6, ServiceID: 100},
			{Lo: 8443, Hi: 8443, Proto: 6, ServiceID: 100},
			{Lo: 8443, Hi: 8443, Proto: 17, ServiceID: 100},
		}},
		// fwmark service 101: one address inside, another port range.
		{Prefix: netip.MustParsePrefix("198.18.5.7/32"), Ranges: []MarkRange{{Lo: 9000, Hi: 9100, Proto: 6, ServiceID: 101}}},
		// fwmark service 102 over IPv6; and the VIP of a plain service.
		{Prefix: netip.MustParsePrefix("2001:db8:5::/48"), Ranges: []MarkRange{{Lo: 1, Hi: 65535, Proto: 17, ServiceID: 102}}},
		{Prefix: netip.MustParsePrefix("198.18.0.10/32"), Ranges: []MarkRange{{Lo: 1, Hi: 65535, Proto: 6, ServiceID: 103}}},
	}
	if err := s.SetMarks(want); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    pkt
		want verdict
	}{
		{"tcp4 80", pkt{src: client4, dst: "198.18.5.1", proto: tcp, sport: 1, dport: 80}, wantVIP},
		{"tcp4 8443", pkt{src: client4, dst: "198.18.5.200", proto: tcp, sport: 1, dport: 8443}, wantVIP},
		{"udp4 8443", pkt{src: client4, dst: "198.18.5.200", proto: udp, sport: 1, dport: 8443}, wantVIP},
		{"udp4 80", pkt{src: client4, dst: "198.18.5.1", proto: udp, sport: 1, dport: 80}, wantPassed},
		{"tcp4 81", pkt{src: client4, dst: "198.18.5.1", proto: tcp, sport: 1, dport: 81}, wantPassed},
		{"more specific inherits", pkt{src: client4, dst: "198.18.5.7", proto: tcp, sport: 1, dport: 80}, wantVIP},
		{"more specific own range", pkt{src: client4, dst: "198.18.5.7", proto: tcp, sport: 1, dport: 9050}, wantVIP},
		{"own range only there", pkt{src: client4, dst: "198.18.5.8", proto: tcp, sport: 1, dport: 9050}, wantPassed},
		{"outside", pkt{src: client4, dst: "198.18.6.1", proto: tcp, sport: 1, dport: 80}, wantPassed},
		{"udp6", pkt{src: client6, dst: "2001:db8:5::9", proto: udp, sport: 1, dport: 53}, wantVIP},
		{"tcp6", pkt{src: client6, dst: "2001:db8:5::9", proto: tcp, sport: 1, dport: 53}, wantPassed},
		{"later fragment to a mark", pkt{src: client4, dst: "198.18.5.3", proto: udp, fragOffset: 9, payload: payloadOf(64)}, wantFrag},
		{"icmp about a mark's reply", pkt{src: router4, dst: "198.18.5.1", proto: 1, icmpType: 3, icmpCode: 4,
			embedded: &pkt{src: "198.18.5.1", dst: client4, proto: tcp, sport: 80, dport: 40000}}, wantICMP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, got := run(t, s, c.p.frame(t)); got != expected(c.want) {
				t.Errorf("counters %+v, want %+v", got, expected(c.want))
			}
		})
	}
	// The more specific prefix holds the enclosing one's ranges.
	if id, ok := s.LookupMark(netip.MustParseAddr("198.18.5.7"), 80, 6); !ok || id != 100 {
		t.Errorf("LookupMark 198.18.5.7:80 = %d %v, want 100 (inherited)", id, ok)
	}
	if err := s.SetMarkFlags(100, 1); err != nil {
		t.Fatal(err)
	}
	if got := s.markPrefixes[netip.MustParsePrefix("198.18.5.0/24")].R[0].Ev.Flags; got != 1 {
		t.Errorf("flags %d after SetMarkFlags, want 1", got)
	}
	// Too many ranges under one prefix: refused, nothing changed.
	var many []MarkRange
	for i := range MarkRanges + 1 {
		many = append(many, MarkRange{Lo: uint16(1000 + i), Hi: uint16(1000 + i), Proto: 6, ServiceID: 104})
	}
	if err := s.SetMarks([]MarkPrefix{{Prefix: netip.MustParsePrefix("198.18.7.0/24"), Ranges: many}}); err == nil {
		t.Error("SetMarks with too many ranges succeeded")
	}
	if err := s.SetMarks(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases[:3] {
		if _, got := run(t, s, c.p.frame(t)); got != expected(wantPassed) {
			t.Errorf("%s after removal: %+v, want passed", c.name, got)
		}
	}
}
