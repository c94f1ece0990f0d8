package lvs

import "testing"

func TestFwd(t *testing.T) {
	for _, c := range []struct {
		f            Fwd
		name, column string
		inputOnly    bool
	}{
		{FwdNAT, "nat", "Masq", false},
		{FwdFullNAT, "fullnat", "FullNat", false},
		{FwdDR, "dr", "Route", true},
		{FwdTun, "tun", "Tunnel", true},
	} {
		if c.f.Name() != c.name || c.f.String() != c.column || c.f.InputOnly() != c.inputOnly {
			t.Errorf("%d: %s %s %v, want %s %s %v", c.f, c.f.Name(), c.f, c.f.InputOnly(), c.name, c.column, c.inputOnly)
		}
		for _, s := range []string{c.name, c.column, c.column + ""} {
			if got, err := ParseFwd(s); err != nil || got != c.f {
				t.Errorf("ParseFwd(%q) = %v, %v; want %v", s, got, err, c.f)
			}
		}
	}
	for s, want := range map[string]Fwd{"masq": FwdNAT, "ipip": FwdTun, "gatewaying": FwdDR, "TUN": FwdTun} {
		if got, err := ParseFwd(s); err != nil || got != want {
			t.Errorf("ParseFwd(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseFwd("gre"); err == nil || err.Error() != `unknown forwarding method "gre" (valid: nat, fullnat, dr, tun)` {
		t.Errorf("ParseFwd(gre): %v", err)
	}
	// The values are on the sync wire and in the XDP flow entries.
	if FwdNAT != 0 || FwdFullNAT != 1 || FwdDR != 2 || FwdTun != 3 {
		t.Error("forwarding methods renumbered")
	}
	if Fwd(9).String() != "Fwd(9)" {
		t.Errorf("invalid: %s", Fwd(9))
	}
}

func TestProto(t *testing.T) {
	if ProtoTCP.String() != "TCP" || ProtoUDP.Name() != "udp" || Proto(99).String() != "99" {
		t.Errorf("names: %s %s %s", ProtoTCP, ProtoUDP.Name(), Proto(99))
	}
	if p, err := ParseProto("TCP"); err != nil || p != ProtoTCP {
		t.Errorf("ParseProto(TCP) = %v, %v", p, err)
	}
	if _, err := ParseProto("icmp"); err == nil {
		t.Error("icmp accepted as a service protocol")
	}
	if !ProtoSCTP.Transport() || ProtoICMP.Transport() {
		t.Error("Transport")
	}
}

func TestTCPFlags(t *testing.T) {
	cases := []struct {
		f           TCPFlags
		syn, synack bool
		s           string
	}{
		{TCPSyn, true, false, "SYN"},
		{TCPSyn | TCPAck, false, true, "SYN|ACK"},
		{TCPSyn | TCPRst, false, false, "SYN|RST"},
		{TCPAck | TCPFin, false, false, "FIN|ACK"},
		{TCPSyn | TCPEce | TCPCwr, true, false, "SYN|ECE|CWR"},
		{0, false, false, ""},
	}
	for _, c := range cases {
		if c.f.IsSYN() != c.syn || c.f.IsSYNACK() != c.synack || c.f.String() != c.s {
			t.Errorf("%#x: IsSYN %v IsSYNACK %v %q", uint8(c.f), c.f.IsSYN(), c.f.IsSYNACK(), c.f.String())
		}
	}
	if !(TCPFin | TCPAck).Has(TCPAck) || TCPAck.Has(TCPAck|TCPFin) {
		t.Error("Has")
	}
}

func TestSchedulerFlags(t *testing.T) {
	if s, ok := SchedulerOfFlag("mh-port"); !ok || s != "mh" {
		t.Errorf("mh-port: %q %v", s, ok)
	}
	if _, ok := SchedulerOfFlag("flag-1"); ok {
		t.Error("flag-1 is an alias, not a name")
	}
	if len(SchedulerFlagNames()) != 4 || DefaultScheduler != "wlc" {
		t.Error("flags or default")
	}
}

func TestProxyProtocolNames(t *testing.T) {
	for _, v := range append([]ProxyProtocol{ProxyNone}, ProxyProtocols...) {
		got, err := ParseProxyProtocol(v.String())
		if err != nil || got != v {
			t.Errorf("ParseProxyProtocol(%q) = %v, %v; want %v", v.String(), got, err, v)
		}
	}
	for s, want := range map[string]ProxyProtocol{"V2": ProxyV2, "1": ProxyV1, "off": ProxyNone, "": ProxyNone} {
		if got, err := ParseProxyProtocol(s); err != nil || got != want {
			t.Errorf("ParseProxyProtocol(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseProxyProtocol("v3"); err == nil {
		t.Error("ParseProxyProtocol(v3): no error")
	}
}
