package bpf

import (
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
)

// TestSteerFragments: a later fragment (no ports) goes to the workers when
// its destination is a VIP address, whatever the port it would have, or its
// source a NAT real server's and its destination not an own address; other
// later fragments, and those of protocols the workers do not forward, go to
// the kernel.
func TestSteerFragments(t *testing.T) {
	s := newTestSteering(t)
	if err := s.AddOwnAddr(inet.AddrFromNetip(mustAddr(t, director4))); err != nil {
		t.Fatal(err)
	}
	frag4 := func(src, dst string, proto layers.IPProtocol) func(testing.TB) []byte {
		return pkt{src: src, dst: dst, proto: proto, fragOffset: 185, payload: payloadOf(100)}.frame
	}
	frag6 := func(src, dst string, proto layers.IPProtocol) func(testing.TB) []byte {
		return pkt{src: src, dst: dst, proto: proto, v6Ext: []uint8{extFragment}, fragOffset: 181, payload: payloadOf(100)}.frame
	}
	cases := []struct {
		name  string
		frame func(t testing.TB) []byte
		want  verdict
	}{
		{"udp4 to vip", frag4(client4, vip4, udp), wantFrag},
		{"tcp4 to vip", frag4(client4, vip4, tcp), wantFrag},
		{"udp4 to all-ports tcp vip", frag4(client4, vip4Any, udp), wantFrag},
		{"icmp4 to vip", frag4(client4, vip4, layers.IPProtocolICMPv4), wantFragPassed},
		{"udp4 to other", frag4(client4, other4, udp), wantFragPassed},
		{"tcp4 nat reply", frag4(real4, client4, tcp), wantFrag},
		{"udp4 nat reply", frag4(real4, client4, udp), wantFrag},
		{"tcp4 from real to own", frag4(real4, director4, tcp), wantFragPassed},
		{"tcp4 from other", frag4(other4, client4, tcp), wantFragPassed},
		{"udp6 to vip", frag6(client6, vip6, udp), wantFrag},
		{"tcp6 to vip", frag6(client6, vip6, tcp), wantFrag},
		{"udp6 to other", frag6(client6, other6, udp), wantFragPassed},
		{"tcp6 nat reply", frag6(real6, client6, tcp), wantFrag},
		{"tcp6 from other", frag6(other6, client6, tcp), wantFragPassed},
		{"udp4 802.1Q to vip", pkt{vlans: []uint16{7}, src: client4, dst: vip4, proto: udp, fragOffset: 3, payload: payloadOf(64)}.frame, wantFrag},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			action, delta := run(t, s, c.frame(t))
			if want := expected(c.want); action != actionOf(c.want) || delta != want {
				t.Errorf("action %d, counters moved by %+v, want %+v", action, delta, want)
			}
		})
	}
}

// TestFragAddrRefs: an address stays in frag_addrs while any VIP or real
// server entry of it does.
func TestFragAddrRefs(t *testing.T) {
	s := newTestSteering(t)
	v4 := inet.AddrFromNetip(mustAddr(t, vip4))
	if got := s.FragAddrFlags(v4); got != fragAddrVIP {
		t.Fatalf("vip4 flags %#x, want %#x", got, fragAddrVIP)
	}
	// vip4 has two services (80/tcp, 53/udp; 5000/sctp too): one gone, it stays.
	if err := s.DelVIP(endpoint(t, vip4, 80, tcp)); err != nil {
		t.Fatal(err)
	}
	if got := s.FragAddrFlags(v4); got != fragAddrVIP {
		t.Fatalf("after one DelVIP: flags %#x", got)
	}
	// Re-adding an existing endpoint adds no reference.
	if err := s.AddVIP(endpoint(t, vip4, 53, udp), 9); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Endpoint{endpoint(t, vip4, 53, udp), endpoint(t, vip4, 5000, sctp)} {
		if err := s.DelVIP(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.FragAddrFlags(v4); got != 0 {
		t.Fatalf("after the last DelVIP: flags %#x", got)
	}
	action, delta := run(t, s, pkt{src: client4, dst: vip4, proto: udp, fragOffset: 9, payload: payloadOf(64)}.frame(t))
	if want := expected(wantFragPassed); action != xdpPass || delta != want {
		t.Errorf("fragment to a removed vip: action %d, counters %+v", action, delta)
	}

	// A real server that is also a VIP address: both flags, each with its own count.
	r4 := inet.AddrFromNetip(mustAddr(t, real4))
	if err := s.AddVIP(endpoint(t, real4, 9, udp), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AddReal(endpoint(t, real4, 8080, tcp)); err != nil { // a second reference to the same endpoint
		t.Fatal(err)
	}
	if got := s.FragAddrFlags(r4); got != fragAddrVIP|fragAddrReal {
		t.Fatalf("real4 flags %#x", got)
	}
	for range 2 {
		if err := s.DelReal(endpoint(t, real4, 8080, tcp)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.FragAddrFlags(r4); got != fragAddrVIP {
		t.Fatalf("real4 flags after DelReal %#x", got)
	}
}

// TestSteerFragmentsFollowFirst: the later fragments of a datagram whose
// first fragment went to the kernel (a real server's own traffic, a port of
// the VIP without a service) go there too; those of other datagrams
// between the same addresses still go to the workers.
func TestSteerFragmentsFollowFirst(t *testing.T) {
	s := newTestSteering(t)
	cases := []struct {
		name         string
		first, later pkt
		idOff        int // offset of the identification in the frame
	}{
		{"udp4 from real server, other port",
			pkt{src: real4, dst: client4, proto: udp, sport: 9999, dport: 53, v4Flags: layers.IPv4MoreFragments, payload: payloadOf(64)},
			pkt{src: real4, dst: client4, proto: udp, fragOffset: 9, payload: payloadOf(64)}, 14 + 4},
		{"udp4 to vip, port without service",
			pkt{src: client4, dst: vip4, proto: udp, sport: 1, dport: 9999, v4Flags: layers.IPv4MoreFragments, payload: payloadOf(64)},
			pkt{src: client4, dst: vip4, proto: udp, fragOffset: 9, payload: payloadOf(64)}, 14 + 4},
		{"udp6 to vip, port without service",
			pkt{src: client6, dst: vip6, proto: udp, sport: 1, dport: 9999, v6Ext: []uint8{extFragment}, moreFrags: true, payload: payloadOf(64)},
			pkt{src: client6, dst: vip6, proto: udp, v6Ext: []uint8{extFragment}, fragOffset: 9, payload: payloadOf(64)}, 14 + 40 + 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			other := c.later.frame(t)
			other[c.idOff+1] ^= 0x55 // another datagram between the same addresses
			if action, delta := run(t, s, other); action != xdpDrop || delta != expected(wantFrag) {
				t.Fatalf("later fragment before any first: action %d, counters %+v", action, delta)
			}
			if action, delta := run(t, s, c.first.frame(t)); action != xdpPass || delta != expected(wantPassed) {
				t.Fatalf("first fragment: action %d, counters %+v", action, delta)
			}
			if action, delta := run(t, s, c.later.frame(t)); action != xdpPass || delta != expected(wantFragPassed) {
				t.Errorf("its later fragment: action %d, counters %+v, want it passed", action, delta)
			}
			if action, delta := run(t, s, other); action != xdpDrop || delta != expected(wantFrag) {
				t.Errorf("another datagram's later fragment: action %d, counters %+v, want it steered", action, delta)
			}
		})
	}
}
