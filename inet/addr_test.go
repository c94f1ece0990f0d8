package inet

import (
	"net/netip"
	"testing"
)

func TestAddrRoundTrip(t *testing.T) {
	for _, s := range []string{"198.18.0.1", "2001:db8::1", "0.0.0.0"} {
		ip := netip.MustParseAddr(s)
		a := AddrFromNetip(ip)
		if got := a.Netip(); got != ip && !(s == "0.0.0.0" && a.Is4()) {
			t.Errorf("round trip %s: got %s", s, got)
		}
		if a.Is4() != ip.Is4() {
			t.Errorf("%s: Is4 = %v", s, a.Is4())
		}
	}
}

func TestMask(t *testing.T) {
	cases := []struct {
		in   string
		bits int
		want string
	}{
		{"198.18.3.77", 24, "198.18.3.0"},
		{"198.18.3.77", 32, "198.18.3.77"},
		{"198.18.3.77", 20, "198.18.0.0"},
		{"2001:db8:1:2::9", 64, "2001:db8:1:2::"},
		{"2001:db8:1:2::9", 128, "2001:db8:1:2::9"},
	}
	for _, c := range cases {
		got := AddrFromNetip(netip.MustParseAddr(c.in)).Mask(c.bits).String()
		if got != c.want {
			t.Errorf("Mask(%s, %d) = %s, want %s", c.in, c.bits, got, c.want)
		}
	}
}
