package bpf

import (
	"net"
	"testing"
)

// withDstMAC returns frame with its Ethernet destination replaced by mac.
func withDstMAC(frame []byte, mac net.HardwareAddr) []byte {
	f := append([]byte(nil), frame...)
	copy(f[:6], mac)
	return f
}

// TestSteerForeignMAC checks the destination-MAC filter: frames to the
// interface's own MAC and broadcast/multicast frames are classified as
// before, unicast frames to another MAC pass to the kernel (ForeignMAC)
// unless the interface accepts foreign MACs, and a changed MAC takes
// effect with the next SetInterface.
func TestSteerForeignMAC(t *testing.T) {
	s := newTestSteering(t) // serves lo with MAC testDstMAC
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	foreign := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	vrrp := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33} // keepalived use_vmac
	tcp4 := pkt{src: client4, dst: vip4, proto: tcp, sport: 40000, dport: 80}.frame(t)
	tcp6 := pkt{src: client6, dst: vip6, proto: tcp, sport: 40000, dport: 443}.frame(t)
	reply4 := pkt{src: real4, dst: client4, proto: tcp, sport: 8080, dport: 40000}.frame(t)
	other4 := pkt{src: client4, dst: other4, proto: tcp, sport: 1, dport: 80}.frame(t)
	foreignMAC := Counters{ForeignMAC: 1}

	check := func(name string, frame []byte, want Counters) {
		t.Helper()
		action, got := run(t, s, frame)
		if got != want {
			t.Errorf("%s: counters %+v, want %+v", name, got, want)
		}
		// No socket is registered: steered frames are dropped.
		wantAction := uint32(xdpPass)
		if want.RedirectFailed != 0 {
			wantAction = xdpDrop
		}
		if action != wantAction {
			t.Errorf("%s: action %d, want %d", name, action, wantAction)
		}
	}

	check("own MAC to vip", tcp4, expected(wantVIP))
	check("own MAC to vip v6", tcp6, expected(wantVIP))
	check("own MAC nat reply", reply4, expected(wantReply))
	check("own MAC other address", other4, expected(wantPassed))
	check("broadcast to vip", withDstMAC(tcp4, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), expected(wantVIP))
	check("ipv4 multicast MAC to vip", withDstMAC(tcp4, net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}), expected(wantVIP))
	check("ipv6 multicast MAC to vip", withDstMAC(tcp6, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}), expected(wantVIP))
	check("broadcast arp", arpFrame(t), expected(wantPassed))
	check("foreign MAC to vip", withDstMAC(tcp4, foreign), foreignMAC)
	check("foreign MAC to vip v6", withDstMAC(tcp6, foreign), foreignMAC)
	check("foreign MAC nat reply", withDstMAC(reply4, foreign), foreignMAC)
	check("foreign MAC other address", withDstMAC(other4, foreign), foreignMAC)
	check("vrrp virtual MAC to vip", withDstMAC(tcp4, vrrp), foreignMAC)
	check("locally administered bit only", withDstMAC(tcp4, net.HardwareAddr{0x00, 0, 0, 0, 0, 0x02}), foreignMAC)
	check("own MAC, no IP header", tcp4[:14], expected(wantMalformed))
	check("foreign MAC, no IP header", withDstMAC(tcp4[:14], foreign), foreignMAC)

	// Opt-out: every destination MAC is classified.
	if err := s.SetInterface(lo.Index, Interface{MAC: [6]byte(testDstMAC), AcceptForeignMAC: true}); err != nil {
		t.Fatal(err)
	}
	check("accepting: foreign MAC to vip", withDstMAC(tcp4, foreign), expected(wantVIP))
	check("accepting: vrrp virtual MAC to vip", withDstMAC(tcp4, vrrp), expected(wantVIP))
	check("accepting: own MAC to vip", tcp4, expected(wantVIP))

	// A new MAC: the old one is foreign from then on.
	if err := s.SetInterface(lo.Index, Interface{MAC: [6]byte(foreign)}); err != nil {
		t.Fatal(err)
	}
	check("new MAC to vip", withDstMAC(tcp4, foreign), expected(wantVIP))
	check("old MAC to vip", tcp4, foreignMAC)
}
