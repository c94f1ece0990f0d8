package bpf

import (
	"errors"
	"github.com/govs/govs/inet"
	"net"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/google/gopacket/layers"
)

const (
	vip4      = "198.18.0.10"
	vip4Any   = "198.18.0.11" // an all-ports TCP service
	vip6      = "2001:db8::10"
	vip6Any   = "2001:db8::11" // an all-ports UDP service
	client4   = "198.18.1.1"
	client6   = "2001:db8:1::1"
	real4     = "198.18.2.1"
	real6     = "2001:db8:2::1"
	router4   = "198.18.3.1"
	router6   = "2001:db8:3::1"
	director4 = "198.18.4.1"
	director6 = "2001:db8:4::1"
	other4    = "198.18.9.9"
	other6    = "2001:db8:9::9"
)

const (
	tcp  = layers.IPProtocolTCP
	udp  = layers.IPProtocolUDP
	sctp = layers.IPProtocolSCTP
)

// newTestSteering loads the program with a few services and real servers,
// serving the interface BPF_PROG_TEST_RUN reports: the loopback device.
func newTestSteering(t testing.TB) *Steering {
	t.Helper()
	requireRoot(t)
	s, err := LoadSteering()
	if err != nil {
		t.Fatalf("LoadSteering: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	configureTestSteering(t, s)
	return s
}

// configureTestSteering gives s newTestSteering's interface, services and
// real servers: what a director process configures anew at each start.
func configureTestSteering(t testing.TB, s *Steering) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetInterface(lo.Index, Interface{MAC: [6]byte(testDstMAC)}); err != nil {
		t.Fatal(err)
	}
	vips := []Endpoint{
		endpoint(t, vip4, 80, tcp),
		endpoint(t, vip4, 53, udp),
		endpoint(t, vip4, 5000, sctp),
		endpoint(t, vip4Any, 0, tcp),
		endpoint(t, vip6, 443, tcp),
		endpoint(t, vip6, 53, udp),
		endpoint(t, vip6Any, 0, udp),
	}
	for i, e := range vips {
		if err := s.AddVIP(e, uint32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []Endpoint{endpoint(t, real4, 8080, tcp), endpoint(t, real6, 8443, tcp)} {
		if err := s.AddReal(e); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs the program once on frame and returns its action and what it
// added to the counters.
func run(t *testing.T, s *Steering, frame []byte) (uint32, Counters) {
	t.Helper()
	before, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	action, err := s.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return action, subCounters(after, before)
}

func subCounters(a, b Counters) Counters {
	av, bv := reflect.ValueOf(&a).Elem(), reflect.ValueOf(b)
	for i := range av.NumField() {
		av.Field(i).SetUint(av.Field(i).Uint() - bv.Field(i).Uint())
	}
	return a
}

type verdict int

const (
	wantVIP verdict = iota
	wantReply
	wantICMP
	wantPassed
	wantMalformed
	wantFragPassed
	wantFrag // a later fragment steered to the workers (frag.h)
)

// expected is the counter delta one packet with verdict v must cause. No
// socket is registered, so every steered packet also fails to redirect.
func expected(v verdict) Counters {
	switch v {
	case wantVIP:
		return Counters{SteeredVIP: 1, RedirectFailed: 1}
	case wantReply:
		return Counters{SteeredReply: 1, RedirectFailed: 1}
	case wantICMP:
		return Counters{SteeredICMP: 1, RedirectFailed: 1}
	case wantPassed:
		return Counters{Passed: 1}
	case wantMalformed:
		return Counters{Malformed: 1}
	case wantFrag:
		return Counters{SteeredFrag: 1, RedirectFailed: 1}
	default:
		return Counters{FragPassed: 1}
	}
}

const xdpPass = 2

// actionOf is the XDP action of a packet with verdict v when no socket is
// registered: a steered packet is dropped (the gap between two director
// processes), the rest goes to the kernel.
func actionOf(v verdict) uint32 {
	switch v {
	case wantVIP, wantReply, wantICMP, wantFrag:
		return xdpDrop
	}
	return xdpPass
}

// loXSK returns an AF_XDP socket bound to lo (newTestSteering's interface,
// base slot 0), queue 0. One socket at a time can be bound there, but it
// may sit in several programs' maps.
func loXSK(t *testing.T) int {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return newXSK(t, lo.Index, 0)
}

// registerSocket puts socket fd in slot 0: a director process runs.
func registerSocket(t *testing.T, s *Steering, fd int) {
	t.Helper()
	if err := s.RegisterSocket(0, fd); err != nil {
		t.Fatal(err)
	}
}

func TestSteerClassifies(t *testing.T) {
	s := newTestSteering(t)
	hopByHopDst := []uint8{extHopByHop, extDstOpts}
	cases := []struct {
		name  string
		frame func(t testing.TB) []byte
		want  verdict
	}{
		{"tcp4 to vip", pkt{src: client4, dst: vip4, proto: tcp, sport: 40000, dport: 80}.frame, wantVIP},
		{"udp4 to vip", pkt{src: client4, dst: vip4, proto: udp, sport: 40000, dport: 53}.frame, wantVIP},
		{"sctp4 to vip", pkt{src: client4, dst: vip4, proto: sctp, sport: 40000, dport: 5000}.frame, wantVIP},
		{"tcp6 to vip", pkt{src: client6, dst: vip6, proto: tcp, sport: 40000, dport: 443}.frame, wantVIP},
		{"udp6 to vip", pkt{src: client6, dst: vip6, proto: udp, sport: 40000, dport: 53}.frame, wantVIP},
		{"tcp4 802.1Q", pkt{vlans: []uint16{10}, src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame, wantVIP},
		{"tcp6 802.1Q", pkt{vlans: []uint16{10}, src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443}.frame, wantVIP},
		{"udp4 802.1ad", pkt{vlans: []uint16{100, 10}, src: client4, dst: vip4, proto: udp, sport: 1, dport: 53}.frame, wantVIP},
		{"tcp6 802.1ad", pkt{vlans: []uint16{100, 10}, src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443}.frame, wantVIP},
		{"three tags", pkt{vlans: []uint16{100, 10, 1}, src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame, wantPassed},
		{"port-0 service tcp4", pkt{src: client4, dst: vip4Any, proto: tcp, sport: 1, dport: 12345}.frame, wantVIP},
		{"port-0 service other proto", pkt{src: client4, dst: vip4Any, proto: udp, sport: 1, dport: 12345}.frame, wantPassed},
		{"port-0 service udp6", pkt{src: client6, dst: vip6Any, proto: udp, sport: 1, dport: 9}.frame, wantVIP},
		{"ipv4 options", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80, v4Options: []layers.IPv4Option{
			{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}},   // router alert
			{OptionType: 7, OptionLength: 11, OptionData: make([]byte, 9)}, // record route
			{OptionType: 1}, // NOP
		}}.frame, wantVIP},
		{"ipv6 hop-by-hop and dst opts", pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443, v6Ext: hopByHopDst}.frame, wantVIP},
		{"ipv6 routing and AH", pkt{src: client6, dst: vip6, proto: udp, sport: 1, dport: 53, v6Ext: []uint8{extRouting, extAH}}.frame, wantVIP},
		{"ipv6 six ext headers", pkt{src: client6, dst: vip6, proto: udp, sport: 1, dport: 53,
			v6Ext: []uint8{extHopByHop, extDstOpts, extRouting, extAH, extDstOpts, extDstOpts}}.frame, wantVIP},
		{"ipv6 seven ext headers", pkt{src: client6, dst: vip6, proto: udp, sport: 1, dport: 53,
			v6Ext: []uint8{extHopByHop, extDstOpts, extRouting, extAH, extDstOpts, extDstOpts, extDstOpts}}.frame, wantPassed},
		{"ipv4 first fragment", pkt{src: client4, dst: vip4, proto: udp, sport: 1, dport: 53, v4Flags: layers.IPv4MoreFragments, payload: payloadOf(64)}.frame, wantVIP},
		{"ipv4 non-first fragment", pkt{src: client4, dst: vip4, proto: udp, fragOffset: 9, payload: payloadOf(64)}.frame, wantFrag},
		{"ipv4 last fragment to other", pkt{src: client4, dst: other4, proto: udp, fragOffset: 1, payload: payloadOf(8)}.frame, wantFragPassed},
		{"ipv6 first fragment", pkt{src: client6, dst: vip6, proto: udp, sport: 1, dport: 53, v6Ext: []uint8{extFragment}, moreFrags: true}.frame, wantVIP},
		{"ipv6 non-first fragment", pkt{src: client6, dst: vip6, proto: udp, v6Ext: []uint8{extFragment}, fragOffset: 9, payload: payloadOf(64)}.frame, wantFrag},
		{"ipv6 non-first fragment after hop-by-hop", pkt{src: client6, dst: vip6, proto: udp, v6Ext: []uint8{extHopByHop, extFragment}, fragOffset: 1, payload: payloadOf(8)}.frame, wantFrag},
		{"nat reply tcp4", pkt{src: real4, dst: client4, proto: tcp, sport: 8080, dport: 40000}.frame, wantReply},
		{"nat reply tcp6", pkt{src: real6, dst: client6, proto: tcp, sport: 8443, dport: 40000}.frame, wantReply},
		{"full-nat reply tcp4 802.1Q", pkt{vlans: []uint16{7}, src: real4, dst: director4, proto: tcp, sport: 8080, dport: 5001}.frame, wantReply},
		{"real server other port", pkt{src: real4, dst: client4, proto: tcp, sport: 22, dport: 40000}.frame, wantPassed},
		{"real server other proto", pkt{src: real4, dst: client4, proto: udp, sport: 8080, dport: 40000}.frame, wantPassed},
		{"arp", arpFrame, wantPassed},
		{"vip other port", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 81}.frame, wantPassed},
		{"vip other proto", pkt{src: client4, dst: vip4, proto: udp, sport: 1, dport: 80}.frame, wantPassed},
		{"other address", pkt{src: client4, dst: other4, proto: tcp, sport: 1, dport: 80}.frame, wantPassed},
		{"other address v6", pkt{src: client6, dst: other6, proto: tcp, sport: 1, dport: 443}.frame, wantPassed},
		{"vip gre", pkt{src: client4, dst: vip4, proto: layers.IPProtocolGRE, payload: payloadOf(40)}.frame, wantPassed},
		{"icmp echo to vip", pkt{src: client4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 8, payload: payloadOf(32)}.frame, wantPassed},
		{"icmpv6 neighbor solicitation", pkt{src: client6, dst: vip6, proto: layers.IPProtocolICMPv6, icmpType: 135, payload: payloadOf(20)}.frame, wantPassed},
		{"icmpv6 echo", pkt{src: client6, dst: vip6, proto: layers.IPProtocolICMPv6, icmpType: 128, payload: payloadOf(20)}.frame, wantPassed},

		// ICMP errors about a reply the director sent from a VIP to a client.
		{"icmp4 frag needed about vip reply", pkt{src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 3, icmpCode: 4,
			embedded: &pkt{src: vip4, dst: client4, proto: tcp, sport: 80, dport: 40000}}.frame, wantICMP},
		{"icmp4 time exceeded about port-0 vip reply", pkt{src: router4, dst: vip4Any, proto: layers.IPProtocolICMPv4, icmpType: 11,
			embedded: &pkt{src: vip4Any, dst: client4, proto: tcp, sport: 4242, dport: 40000}}.frame, wantICMP},
		{"icmp4 parameter problem 802.1Q", pkt{vlans: []uint16{3}, src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 12,
			embedded: &pkt{src: vip4, dst: client4, proto: udp, sport: 53, dport: 40000}}.frame, wantICMP},
		{"icmp6 packet too big about vip reply", pkt{src: router6, dst: vip6, proto: layers.IPProtocolICMPv6, icmpType: 2,
			embedded: &pkt{src: vip6, dst: client6, proto: tcp, sport: 443, dport: 40000, payload: payloadOf(100)}}.frame, wantICMP},
		{"icmp6 dest unreachable about vip reply", pkt{src: router6, dst: vip6, proto: layers.IPProtocolICMPv6, icmpType: 1, icmpCode: 4,
			embedded: &pkt{src: vip6, dst: client6, proto: udp, sport: 53, dport: 40000}}.frame, wantICMP},
		// ICMP errors about a request the director sent to a real server.
		{"icmp4 unreachable about request to real", pkt{src: router4, dst: director4, proto: layers.IPProtocolICMPv4, icmpType: 3, icmpCode: 3,
			embedded: &pkt{src: client4, dst: real4, proto: tcp, sport: 40000, dport: 8080}}.frame, wantICMP},
		{"icmp4 about request to real with options", pkt{src: router4, dst: director4, proto: layers.IPProtocolICMPv4, icmpType: 11,
			embedded: &pkt{src: client4, dst: real4, proto: tcp, sport: 40000, dport: 8080,
				v4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}}.frame, wantICMP},
		{"icmp6 time exceeded about request to real", pkt{src: router6, dst: director6, proto: layers.IPProtocolICMPv6, icmpType: 3,
			embedded: &pkt{src: client6, dst: real6, proto: tcp, sport: 40000, dport: 8443}}.frame, wantICMP},
		{"icmp6 parameter problem about request to real with frag hdr", pkt{src: router6, dst: director6, proto: layers.IPProtocolICMPv6, icmpType: 4,
			embedded: &pkt{src: client6, dst: real6, proto: tcp, sport: 40000, dport: 8443, v6Ext: []uint8{extFragment}, moreFrags: true}}.frame, wantICMP},
		// ICMP errors about someone else's traffic.
		{"icmp4 error about other", pkt{src: router4, dst: director4, proto: layers.IPProtocolICMPv4, icmpType: 3,
			embedded: &pkt{src: director4, dst: other4, proto: tcp, sport: 80, dport: 40000}}.frame, wantPassed},
		{"icmp4 error about client to vip", pkt{src: router4, dst: client4, proto: layers.IPProtocolICMPv4, icmpType: 3,
			embedded: &pkt{src: client4, dst: vip4, proto: tcp, sport: 40000, dport: 80}}.frame, wantPassed},
		{"icmp6 error about other", pkt{src: router6, dst: director6, proto: layers.IPProtocolICMPv6, icmpType: 1,
			embedded: &pkt{src: director6, dst: other6, proto: udp, sport: 53, dport: 40000}}.frame, wantPassed},
		{"icmp4 error about non-first fragment", pkt{src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 11,
			embedded: &pkt{src: vip4, dst: client4, proto: tcp, fragOffset: 3, payload: payloadOf(16)}}.frame, wantPassed},

		// Broken headers.
		{"ipv4 version 6", func(t testing.TB) []byte {
			f := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
			f[14] = 0x65
			return f
		}, wantMalformed},
		{"ipv4 ihl 4", func(t testing.TB) []byte {
			f := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
			f[14] = 0x44
			return f
		}, wantMalformed},
		{"ipv4 total length below ihl", func(t testing.TB) []byte {
			f := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
			f[16], f[17] = 0, 19
			return f
		}, wantMalformed},
		{"ipv6 version 4", func(t testing.TB) []byte {
			f := pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443}.frame(t)
			f[14] = 0x40
			return f
		}, wantMalformed},
		{"tcp data offset 4", func(t testing.TB) []byte {
			f := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
			f[14+20+12] = 0x40
			return f
		}, wantMalformed},
		{"tcp data offset past end", func(t testing.TB) []byte {
			f := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
			f[14+20+12] = 0xf0
			return f
		}, wantMalformed},
		{"icmp4 error with embedded ipv6", func(t testing.TB) []byte {
			f := pkt{src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 3,
				embedded: &pkt{src: vip4, dst: client4, proto: tcp, sport: 80, dport: 40000}}.frame(t)
			f[14+20+8] = 0x65
			return f
		}, wantMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			action, delta := run(t, s, tc.frame(t))
			if want := actionOf(tc.want); action != want {
				t.Errorf("action %d, want %d (no socket is registered: steered ones are dropped)", action, want)
			}
			if want := expected(tc.want); delta != want {
				t.Errorf("counters moved by %+v, want %+v", delta, want)
			}
		})
	}
}

// TestSteerTruncated cuts steerable frames at every length the kernel
// accepts (at least an Ethernet header) and expects each cut to pass as
// malformed, never to be steered.
// TestSteerOwnAddress: a real server's answer to the director's own
// connection (a health check from the director's address) is not a reply to
// translate; one to a full-NAT local address still is.
func TestSteerOwnAddress(t *testing.T) {
	s := newTestSteering(t)
	const own4 = "198.18.4.254"
	toOwn := pkt{src: real4, dst: own4, proto: tcp, sport: 8080, dport: 50000}.frame(t)
	toLocal := pkt{src: real4, dst: director4, proto: tcp, sport: 8080, dport: 5001}.frame(t)
	check := func(step string, frame []byte, want verdict) {
		t.Helper()
		if _, delta := run(t, s, frame); delta != expected(want) {
			t.Errorf("%s: counters moved by %+v, want %+v", step, delta, expected(want))
		}
	}
	check("before AddOwnAddr", toOwn, wantReply)
	own := endpoint(t, own4, 0, tcp).Addr
	if err := s.AddOwnAddr(own); err != nil {
		t.Fatal(err)
	}
	check("to the director's own address", toOwn, wantPassed)
	check("to a full-NAT local address", toLocal, wantReply)
	if err := s.DelOwnAddr(own); err != nil {
		t.Fatal(err)
	}
	check("after DelOwnAddr", toOwn, wantReply)
	if err := s.AddOwnAddr(inet.Addr{}); err == nil {
		t.Error("AddOwnAddr accepted the zero address")
	}
}

func TestSteerTruncated(t *testing.T) {
	s := newTestSteering(t)
	frames := []struct {
		name string
		pkt  pkt
		want verdict
	}{
		{"tcp4", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80, payload: payloadOf(10)}, wantVIP},
		{"udp6 802.1ad", pkt{vlans: []uint16{100, 10}, src: client6, dst: vip6, proto: udp, sport: 1, dport: 53}, wantVIP},
		{"tcp6 ext headers", pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443, v6Ext: []uint8{extHopByHop, extFragment, extAH}}, wantVIP},
		{"tcp4 options 802.1Q", pkt{vlans: []uint16{5}, src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80, payload: payloadOf(4),
			v4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}, wantVIP},
		{"sctp4", pkt{src: client4, dst: vip4, proto: sctp, sport: 1, dport: 5000, payload: payloadOf(16)}, wantVIP},
		{"nat reply tcp4", pkt{src: real4, dst: client4, proto: tcp, sport: 8080, dport: 2, payload: payloadOf(10)}, wantReply},
		{"icmp4 error", pkt{src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 3, icmpCode: 4,
			embedded: &pkt{src: vip4, dst: client4, proto: tcp, sport: 80, dport: 40000}}, wantICMP},
		{"icmp6 error", pkt{src: router6, dst: director6, proto: layers.IPProtocolICMPv6, icmpType: 2,
			embedded: &pkt{src: client6, dst: real6, proto: tcp, sport: 40000, dport: 8443}}, wantICMP},
		{"ipv4 non-first fragment", pkt{src: client4, dst: vip4, proto: udp, fragOffset: 9, payload: payloadOf(40)}, wantFrag},
	}
	const ethHeaderLen = 14 // BPF_PROG_TEST_RUN refuses shorter input
	for _, f := range frames {
		t.Run(f.name, func(t *testing.T) {
			frame := f.pkt.frame(t)
			if len(frame) <= 60 {
				t.Fatalf("frame of %d bytes may be padded; give it a payload", len(frame))
			}
			action, delta := run(t, s, frame)
			if want := expected(f.want); action != actionOf(f.want) || delta != want {
				t.Fatalf("whole frame: action %d, counters moved by %+v, want %+v", action, delta, want)
			}
			for n := ethHeaderLen; n < len(frame); n++ {
				action, delta := run(t, s, frame[:n])
				if want := expected(wantMalformed); action != xdpPass || delta != want {
					t.Errorf("%d of %d bytes: action %d, counters moved by %+v, want %+v", n, len(frame), action, delta, want)
				}
			}
		})
	}
}

func TestSteerUnknownInterface(t *testing.T) {
	s := newTestSteering(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DelInterface(lo.Index); err != nil {
		t.Fatal(err)
	}
	action, delta := run(t, s, pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t))
	if action != xdpPass || delta != (Counters{UnknownIface: 1}) {
		t.Errorf("action %d, counters moved by %+v, want XDP_PASS and one unknown interface", action, delta)
	}
}

func TestSteerMapUpdates(t *testing.T) {
	s := newTestSteering(t)
	toVIP := pkt{src: client4, dst: other4, proto: tcp, sport: 1, dport: 8000}.frame(t)
	fromReal := pkt{src: other4, dst: client4, proto: tcp, sport: 8000, dport: 1}.frame(t)
	e := endpoint(t, other4, 8000, tcp)

	check := func(step string, frame []byte, want verdict) {
		t.Helper()
		if _, delta := run(t, s, frame); delta != expected(want) {
			t.Errorf("%s: counters moved by %+v, want %+v", step, delta, expected(want))
		}
	}
	check("before AddVIP", toVIP, wantPassed)
	if err := s.AddVIP(e, 9); err != nil {
		t.Fatal(err)
	}
	check("after AddVIP", toVIP, wantVIP)
	if err := s.DelVIP(e); err != nil {
		t.Fatal(err)
	}
	check("after DelVIP", toVIP, wantPassed)
	if err := s.DelVIP(e); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("DelVIP of a missing VIP: %v, want ErrKeyNotExist", err)
	}

	// Two services share the real server: it stays until both let go.
	for range 2 {
		if err := s.AddReal(e); err != nil {
			t.Fatal(err)
		}
	}
	check("after AddReal", fromReal, wantReply)
	if err := s.DelReal(e); err != nil {
		t.Fatal(err)
	}
	check("after first DelReal", fromReal, wantReply)
	if err := s.DelReal(e); err != nil {
		t.Fatal(err)
	}
	check("after second DelReal", fromReal, wantPassed)
	if err := s.DelReal(e); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("DelReal of a missing real: %v, want ErrKeyNotExist", err)
	}

	if err := s.AddVIP(Endpoint{Port: 80, Proto: 6}, 1); err == nil {
		t.Error("AddVIP without an address succeeded")
	}
	if err := s.AddReal(Endpoint{Addr: e.Addr, Port: 80}); err == nil {
		t.Error("AddReal without a protocol succeeded")
	}
	if err := s.RegisterSocket(0, 0); err == nil {
		t.Error("RegisterSocket of stdin succeeded; only AF_XDP sockets belong in the map")
	}
}

// TestSteerCountersMatchBTF keeps Counters in step with enum counter_id.
func TestSteerCountersMatchBTF(t *testing.T) {
	spec, err := loadSteer()
	if err != nil {
		t.Fatal(err)
	}
	var ids *btf.Enum
	if err := spec.Types.TypeByName("counter_id", &ids); err != nil {
		t.Fatal(err)
	}
	// counter_max is not a counter.
	if got, want := reflect.TypeOf(Counters{}).NumField(), len(ids.Values)-1; got != want {
		t.Errorf("Counters has %d fields, enum counter_id %d counters", got, want)
	}
}

// BenchmarkSteer measures the program's per-packet cost in the kernel (the
// reported ns/op is the kernel's own per-run average).
func BenchmarkSteer(b *testing.B) {
	requireRoot(b)
	s, err := LoadSteering()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetInterface(lo.Index, Interface{MAC: [6]byte(testDstMAC)}); err != nil {
		b.Fatal(err)
	}
	if err := s.AddVIP(endpoint(b, vip4, 80, tcp), 1); err != nil {
		b.Fatal(err)
	}
	if err := s.AddVIP(endpoint(b, vip6, 443, tcp), 1); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		pkt  pkt
	}{
		{"vip_tcp4", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}},
		{"vip_tcp6_ext", pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443, v6Ext: []uint8{extHopByHop, extDstOpts}}},
		{"other_tcp4", pkt{src: client4, dst: other4, proto: tcp, sport: 1, dport: 80}},
		{"icmp6_error", pkt{src: router6, dst: vip6, proto: layers.IPProtocolICMPv6, icmpType: 2,
			embedded: &pkt{src: vip6, dst: client6, proto: tcp, sport: 443, dport: 1}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			frame := bc.pkt.frame(b)
			_, perRun, err := s.Program().Benchmark(frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(perRun.Nanoseconds()), "kernel-ns/pkt")
		})
	}
}
