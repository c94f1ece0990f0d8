package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/govs/govs/lvs"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
)

func expectedFragNeeded(tb testing.TB, orig []byte, p *Parsed, mtu int, from string, srcMAC, dstMAC [6]byte, quote int) []byte {
	tb.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: dstMAC[:]}
	ls = append(ls, eth)
	l3type := layers.EthernetTypeIPv4
	if p.Family == 6 {
		l3type = layers.EthernetTypeIPv6
	}
	switch p.VLANs {
	case 0:
		eth.EthernetType = l3type
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: l3type})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 200, Type: l3type})
	}
	q := orig[p.L3Off : p.L3Off+quote]
	to := p.Src.Netip().AsSlice()
	if p.Family == 4 {
		ls = append(ls,
			&layers.IPv4{Version: 4, IHL: 5, TOS: 0xc0, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ipOf(from), DstIP: to},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: uint16(mtu)},
			gopacket.Payload(q))
	} else {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: ipOf(from), DstIP: to}
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}
		if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		m := make([]byte, 4, 4+len(q))
		binary.BigEndian.PutUint32(m, uint32(mtu))
		ls = append(ls, ip, ic, gopacket.Payload(append(m, q...)))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildFragNeeded(t *testing.T) {
	srcMAC, dstMAC := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	big := make([]byte, 1400)
	for i := range big {
		big[i] = byte(i)
	}
	cases := []struct {
		s          spec
		from       string
		mtu        int
		wantMTU    int
		wantQuoted int // bytes of the original IP packet
	}{
		{spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 40000, dport: 80, df: true, payload: big, vlans: 1}, "198.18.1.1", 1480, 1480, 548},
		{spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoUDP, sport: 40000, dport: 53, df: true, payload: big[:100], trailer: 3}, "198.18.1.1", 1000, 1000, 128},
		{spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoUDP, sport: 40000, dport: 53, df: true, payload: big, vlans: 2}, "198.18.1.1", 20, 68, 548},
		{spec{src: "2001:db8::1", dst: "2001:db8:1::1", proto: lvs.ProtoTCP, sport: 40000, dport: 443, payload: big}, "2001:db8:1::1", 1460, 1460, 1232},
		{spec{src: "2001:db8::1", dst: "2001:db8:1::1", proto: lvs.ProtoTCP, sport: 40000, dport: 443, payload: big[:10], vlans: 2}, "2001:db8:1::1", 1500, 1500, 70},
		{spec{src: "2001:db8::1", dst: "2001:db8:1::1", proto: lvs.ProtoUDP, sport: 40000, dport: 443, payload: big}, "2001:db8:1::1", 1000, 1280, 1232},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%d/mtu%d", c.s.src, len(c.s.payload), c.mtu), func(t *testing.T) {
			orig := build(t, c.s)
			p := mustParse(t, orig)
			out := make([]byte, 2048)
			n, err := BuildFragNeeded(out, orig, &p, c.mtu, addr(c.from), srcMAC, dstMAC)
			if err != nil {
				t.Fatal(err)
			}
			want := expectedFragNeeded(t, orig, &p, c.wantMTU, c.from, srcMAC, dstMAC, c.wantQuoted)
			if d := diff(out[:n], want); d != "" {
				t.Fatal(d)
			}
			if err := verifyChecksums(out[:n]); err != nil {
				t.Fatal(err)
			}
			// The answer quotes the packet: Parse sees the original tuple inside.
			q := mustParse(t, out[:n])
			if !q.Inner.Valid || q.Inner.Src != p.Src || q.Inner.Dst != p.Dst || q.Inner.SrcPort != p.SrcPort || q.Dst != p.Src {
				t.Errorf("answer parses as %+v", q)
			}
			if lim := map[uint8]int{4: 576, 6: 1280}[p.Family]; q.L3Len > lim {
				t.Errorf("answer is %d bytes of IP, limit %d", q.L3Len, lim)
			}
		})
	}
}

func TestBuildFragNeededRefusals(t *testing.T) {
	out := make([]byte, 2048)
	mk := func(s spec) ([]byte, Parsed) { f := build(t, s); return f, mustParse(t, f) }
	f, p := mk(spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 1, dport: 2})
	if _, err := BuildFragNeeded(out[:60], f, &p, 1000, addr("198.18.1.1"), [6]byte{}, [6]byte{}); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	if _, err := BuildFragNeeded(out, f, &p, 1000, addr("2001:db8::1"), [6]byte{}, [6]byte{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("wrong family: %v", err)
	}
	refuse := []struct {
		name  string
		frame []byte
	}{
		{"icmp error", icmpErrorFrame(t, false, lvs.ProtoTCP, 0, 0)},
		{"icmpv6 error", icmpErrorFrame(t, true, lvs.ProtoUDP, 0, 0)},
		{"multicast source", build(t, spec{src: "224.0.0.9", dst: "198.18.1.1", proto: lvs.ProtoUDP, sport: 1, dport: 2})},
		{"broadcast destination", build(t, spec{src: "198.18.0.1", dst: "255.255.255.255", proto: lvs.ProtoUDP, sport: 1, dport: 2})},
		{"unspecified source", build(t, spec{src: "0.0.0.0", dst: "198.18.1.1", proto: lvs.ProtoUDP, sport: 1, dport: 2})},
		{"v6 multicast source", build(t, spec{src: "ff02::1", dst: "2001:db8::1", proto: lvs.ProtoUDP, sport: 1, dport: 2})},
		{"v6 unspecified source", build(t, spec{src: "::", dst: "2001:db8::1", proto: lvs.ProtoUDP, sport: 1, dport: 2})},
		{"v6 later fragment", ipv6WithFragHeader(t, 64)},
	}
	for _, r := range refuse {
		p := mustParse(t, r.frame)
		from := addr("198.18.1.1")
		if p.Family == 6 {
			from = addr("2001:db8::9")
		}
		if _, err := BuildFragNeeded(out, r.frame, &p, 1000, from, [6]byte{}, [6]byte{}); !errors.Is(err, ErrNoICMPError) {
			t.Errorf("%s: %v", r.name, err)
		}
	}
}

// The four translations of TestRewriteICMPError, for one family.
type icmpAddrs struct{ c, v, r, l, router string }

var icmpAddrs4 = icmpAddrs{"198.18.0.1", "198.18.1.1", "198.18.2.2", "198.18.3.3", "198.18.9.9"}
var icmpAddrs6 = icmpAddrs{"2001:db8::1", "2001:db8:1::1", "2001:db8:2::2", "2001:db8:3::3", "2001:db8:9::9"}

const cport, vport, rport, lport = 40000, 80, 8080, 5000

func TestRewriteICMPError(t *testing.T) {
	type endpoint struct {
		a    string
		port uint16
	}
	type scenario struct {
		name                string
		inOuter, wantOuter  [2]string
		inInner, wantInner  [2]endpoint
		outerSrcSet, dstSet bool
	}
	scenarios := func(a icmpAddrs) []scenario {
		return []scenario{
			{"nat-client-side", [2]string{a.router, a.v}, [2]string{a.router, a.r},
				[2]endpoint{{a.v, vport}, {a.c, cport}}, [2]endpoint{{a.r, rport}, {a.c, cport}}, false, true},
			{"nat-rs-side", [2]string{a.r, a.c}, [2]string{a.v, a.c},
				[2]endpoint{{a.c, cport}, {a.r, rport}}, [2]endpoint{{a.c, cport}, {a.v, vport}}, true, false},
			{"fnat-client-side", [2]string{a.router, a.v}, [2]string{a.l, a.r},
				[2]endpoint{{a.v, vport}, {a.c, cport}}, [2]endpoint{{a.r, rport}, {a.l, lport}}, true, true},
			{"fnat-rs-side", [2]string{a.r, a.l}, [2]string{a.v, a.c},
				[2]endpoint{{a.l, lport}, {a.r, rport}}, [2]endpoint{{a.c, cport}, {a.v, vport}}, true, true},
		}
	}
	for _, v6 := range []bool{false, true} {
		a, hdr := icmpAddrs4, 20
		if v6 {
			a, hdr = icmpAddrs6, 40
		}
		for _, sc := range scenarios(a) {
			for _, proto := range []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP} {
				for _, quote := range []int{0, hdr + 4, hdr + 8, hdr + 17, hdr + 18, hdr + 23} {
					for _, zeroUDP := range []bool{false, true} {
						if zeroUDP && (v6 || proto != lvs.ProtoUDP) {
							continue
						}
						name := fmt.Sprintf("v6=%v/%s/p%d/quote%d/zero%v", v6, sc.name, proto, quote, zeroUDP)
						t.Run(name, func(t *testing.T) {
							typ, code := uint8(3), uint8(3)
							if v6 {
								typ, code = 1, 4
							}
							if proto == lvs.ProtoTCP {
								typ, code = 3, 4
								if v6 {
									typ, code = 2, 0
								}
							}
							mk := func(outer [2]string, inner [2]endpoint) []byte {
								return buildICMPError(t, icmpErrorSpec{v6: v6, vlans: 1, outerSrc: outer[0], outerDst: outer[1], quoteLen: quote,
									icmpType: typ, icmpCode: code, rest: 1400,
									inner: spec{src: inner[0].a, dst: inner[1].a, sport: inner[0].port, dport: inner[1].port, proto: proto,
										tcpFlags: 0x18, payload: []byte("the quoted payload"), ipID: 99, zeroUDPCsum: zeroUDP}})
							}
							frame := mk(sc.inOuter, sc.inInner)
							want := mk(sc.wantOuter, sc.wantInner)
							p := mustParse(t, frame)
							if proto == lvs.ProtoTCP && quote == hdr+17 {
								// Half of the quoted TCP checksum is present: it is
								// left as it was, so expect that and fix the ICMP
								// checksum of the expectation.
								end := p.L3Off + p.L3Len
								want[end-1] = frame[end-1]
								refFixICMPChecksum(want)
							}
							var os, od *inet.Addr
							if sc.outerSrcSet {
								x := addr(sc.wantOuter[0])
								os = &x
							}
							if sc.dstSet {
								x := addr(sc.wantOuter[1])
								od = &x
							}
							wi := sc.wantInner
							if err := RewriteICMPError(frame, &p, os, od, addr(wi[0].a), wi[0].port, addr(wi[1].a), wi[1].port); err != nil {
								t.Fatal(err)
							}
							if d := diff(frame, want); d != "" {
								t.Fatal(d)
							}
							if err := verifyChecksums(frame); err != nil {
								t.Fatal(err)
							}
							if again := mustParse(t, frame); again != p {
								t.Errorf("Parsed after rewrite\n%+v\nreparsed\n%+v", p, again)
							}
						})
					}
				}
			}
		}
	}
}

func TestRewriteICMPErrorRefusals(t *testing.T) {
	echo := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoICMP, icmpType: 8})
	p := mustParse(t, echo)
	a := addr("198.18.0.3")
	if err := RewriteICMPError(echo, &p, nil, nil, a, 1, a, 2); !errors.Is(err, ErrBadArgument) {
		t.Errorf("echo: %v", err)
	}
	f := icmpErrorFrame(t, false, lvs.ProtoTCP, 0, 0)
	orig := append([]byte(nil), f...)
	p = mustParse(t, f)
	b := addr("2001:db8::1")
	if err := RewriteICMPError(f, &p, &b, nil, a, 1, a, 2); !errors.Is(err, ErrBadArgument) {
		t.Errorf("wrong family: %v", err)
	}
	if err := RewriteICMPError(f[:50], &p, nil, nil, a, 1, a, 2); !errors.Is(err, ErrBadArgument) {
		t.Errorf("short frame: %v", err)
	}
	if d := diff(f, orig); d != "" {
		t.Errorf("refused rewrite changed the frame: %s", d)
	}
}

func TestICMPAllocs(t *testing.T) {
	f := icmpErrorFrame(t, false, lvs.ProtoTCP, 0, 1)
	p := mustParse(t, f)
	x, y := addr("198.18.5.5"), addr("198.18.6.6")
	if n := testing.AllocsPerRun(100, func() { _ = RewriteICMPError(f, &p, &x, &y, x, 1, y, 2) }); n != 0 {
		t.Errorf("RewriteICMPError allocates %v", n)
	}
	orig := build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoTCP, sport: 1, dport: 2, payload: make([]byte, 1400)})
	op := mustParse(t, orig)
	out := make([]byte, 2048)
	from := addr("2001:db8::2")
	if n := testing.AllocsPerRun(100, func() { _, _ = BuildFragNeeded(out, orig, &op, 1400, from, [6]byte{}, [6]byte{}) }); n != 0 {
		t.Errorf("BuildFragNeeded allocates %v", n)
	}
}

func BenchmarkRewriteICMPError(b *testing.B) {
	f := icmpErrorFrame(b, false, lvs.ProtoTCP, 0, 1)
	p := mustParse(b, f)
	x, y := addr("198.18.5.5"), addr("198.18.6.6")
	b.ReportAllocs()
	for b.Loop() {
		_ = RewriteICMPError(f, &p, &x, &y, x, 1, y, 2)
	}
}

func BenchmarkBuildFragNeeded(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		orig, p := benchFrame(b, v6)
		out := make([]byte, 2048)
		from := p.Dst
		b.ReportAllocs()
		for b.Loop() {
			_, _ = BuildFragNeeded(out, orig, &p, 1400, from, [6]byte{}, [6]byte{})
		}
	})
}

// refFixICMPChecksum recomputes the ICMP or ICMPv6 checksum of a frame from
// scratch with the reference sum.
func refFixICMPChecksum(frame []byte) {
	var p Parsed
	if Parse(frame, &p) != nil {
		panic("refFixICMPChecksum: frame does not parse")
	}
	msg := frame[p.L4Off : p.L3Off+p.L3Len]
	msg[2], msg[3] = 0, 0
	var s uint32
	if p.Family == 6 {
		s = refPseudo(p.Src[:], p.Dst[:], lvs.ProtoICMPv6, len(msg))
	}
	binary.BigEndian.PutUint16(msg[2:], ^refFold(refSum(msg, s)))
}
