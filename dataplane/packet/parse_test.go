package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/govs/govs/lvs"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// parseSpecs is the matrix of well-formed frames Parse and the rewrites are
// tested on.
func parseSpecs() []spec {
	var out []spec
	pay := []byte("hello, govs! an odd-length payload")
	for _, fam := range []struct{ src, dst string }{{"198.18.0.1", "198.19.255.7"}, {"2001:db8::1", "2001:db8:ffff::7"}} {
		for _, proto := range []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP, lvs.ProtoSCTP} {
			for vlans := 0; vlans <= 2; vlans++ {
				out = append(out, spec{vlans: vlans, src: fam.src, dst: fam.dst, proto: proto,
					sport: 40000 + uint16(vlans), dport: 80, tcpFlags: 0x12, payload: pay, ipID: 0x4242})
			}
		}
		v6 := fam.src[0] == '2'
		o := spec{src: fam.src, dst: fam.dst, proto: lvs.ProtoTCP, sport: 1234, dport: 443, tcpFlags: 0x10, payload: pay[:7], trailer: 6}
		if v6 {
			o.hopByHop, o.dstOpts = true, true
		} else {
			o.ipOptions = true
		}
		out = append(out, o)
		u := spec{src: fam.src, dst: fam.dst, proto: lvs.ProtoUDP, sport: 53, dport: 5353, vlans: 1, trailer: 10}
		if v6 {
			u.dstOpts = true
		} else {
			u.ipOptions = true
		}
		out = append(out, u)
	}
	return out
}

func specName(s spec) string {
	return fmt.Sprintf("%s>%s/p%d/vlan%d/opt%v%v%v/trail%d", s.src, s.dst, s.proto, s.vlans, s.ipOptions, s.hopByHop, s.dstOpts, s.trailer)
}

func TestParseAgainstGopacket(t *testing.T) {
	for _, s := range parseSpecs() {
		t.Run(specName(s), func(t *testing.T) {
			frame := build(t, s)
			p := mustParse(t, frame)
			pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			wantL3 := 14 + 4*s.vlans
			if p.L3Off != wantL3 {
				t.Errorf("L3Off %d want %d", p.L3Off, wantL3)
			}
			wantL4 := wantL3 + 20
			if s.src[0] == '2' {
				wantL4 = wantL3 + 40
			}
			for _, b := range []bool{s.ipOptions, s.hopByHop, s.dstOpts} {
				if b {
					wantL4 += map[bool]int{true: 4, false: 8}[s.ipOptions]
				}
			}
			if p.L4Off != wantL4 {
				t.Errorf("L4Off %d want %d", p.L4Off, wantL4)
			}
			// gopacket decodes the same addresses and ports.
			nl, tl := pkt.NetworkLayer(), pkt.TransportLayer()
			if nl == nil || tl == nil {
				t.Fatalf("gopacket found no network/transport layer")
			}
			gs, gd := nl.NetworkFlow().Endpoints()
			if string(gs.Raw()) != string(p.Src.Netip().AsSlice()) || string(gd.Raw()) != string(p.Dst.Netip().AsSlice()) {
				t.Errorf("gopacket addrs %v>%v, ours %v>%v", gs, gd, p.Src, p.Dst)
			}
			ps, pd := tl.TransportFlow().Endpoints()
			if binary.BigEndian.Uint16(ps.Raw()) != p.SrcPort || binary.BigEndian.Uint16(pd.Raw()) != p.DstPort {
				t.Errorf("gopacket ports %v>%v", ps, pd)
			}
			l4len := map[lvs.Proto]int{lvs.ProtoTCP: 20, lvs.ProtoUDP: 8, lvs.ProtoSCTP: 12}[s.proto] + len(s.payload)
			if s.proto == lvs.ProtoSCTP {
				l4len = 12 + len(sctpDataChunk(s.payload))
			}
			if want := wantL4 - wantL3 + l4len; p.L3Len != want {
				t.Errorf("L3Len %d want %d", p.L3Len, want)
			}
			if p.VLANs != s.vlans {
				t.Errorf("VLANs %d want %d", p.VLANs, s.vlans)
			}
			wantFam := uint8(4)
			if s.src[0] == '2' {
				wantFam = 6
			}
			if p.Family != wantFam || p.Proto != s.proto {
				t.Errorf("family/proto %d/%d want %d/%d", p.Family, p.Proto, wantFam, s.proto)
			}
			if p.Src != addr(s.src) || p.Dst != addr(s.dst) {
				t.Errorf("addrs %v>%v", p.Src, p.Dst)
			}
			if p.SrcPort != s.sport || p.DstPort != s.dport {
				t.Errorf("ports %d>%d", p.SrcPort, p.DstPort)
			}
			if s.proto == lvs.ProtoTCP && p.TCPFlags != s.tcpFlags {
				t.Errorf("tcp flags %#x want %#x", p.TCPFlags, s.tcpFlags)
			}
			if p.HasIPOptions != (s.ipOptions || s.hopByHop || s.dstOpts) {
				t.Errorf("HasIPOptions %v", p.HasIPOptions)
			}
			if p.Frag != FragNone || p.Inner.Valid {
				t.Errorf("frag %v inner %v", p.Frag, p.Inner.Valid)
			}
		})
	}
}

// setIPv4Frag sets the flags/fragment offset word of an IPv4 frame and
// recomputes its header checksum from scratch.
func setIPv4Frag(frame []byte, l3 int, word uint16) {
	binary.BigEndian.PutUint16(frame[l3+6:], word)
	fixIPv4HeaderRef(frame, l3)
}

func fixIPv4HeaderRef(frame []byte, l3 int) {
	ihl := int(frame[l3]&0xf) * 4
	frame[l3+10], frame[l3+11] = 0, 0
	binary.BigEndian.PutUint16(frame[l3+10:], ^refFold(refSum(frame[l3:l3+ihl], 0)))
}

func TestParseFragments(t *testing.T) {
	base := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: make([]byte, 32)})
	for _, c := range []struct {
		word uint16
		want FragKind
	}{{0, FragNone}, {0x4000, FragNone}, {0x2000, FragFirst}, {0x2000 | 100, FragLater}, {1, FragLater}} {
		f := append([]byte(nil), base...)
		setIPv4Frag(f, 14, c.word)
		p := mustParse(t, f)
		if p.Frag != c.want {
			t.Errorf("word %#x: frag %v want %v", c.word, p.Frag, c.want)
		}
		if c.want == FragLater && (p.SrcPort != 0 || p.DstPort != 0 || p.HasPorts()) {
			t.Errorf("later fragment has ports")
		}
		if c.want != FragLater && (p.SrcPort != 1 || p.DstPort != 2) {
			t.Errorf("ports lost")
		}
	}
	// IPv6 with a fragment header, first and later fragment.
	for _, c := range []struct {
		offMF uint16
		want  FragKind
	}{{1, FragFirst}, {8 << 3, FragLater}, {0, FragNone}} {
		f := ipv6WithFragHeader(t, c.offMF)
		p := mustParse(t, f)
		if p.Frag != c.want || p.Proto != lvs.ProtoUDP || p.L4Off != 14+48 {
			t.Errorf("offMF %#x: frag %v proto %d l4 %d", c.offMF, p.Frag, p.Proto, p.L4Off)
		}
		if (c.want == FragLater) == (p.DstPort == 9) {
			t.Errorf("offMF %#x: ports %d", c.offMF, p.DstPort)
		}
	}
}

// ipv6WithFragHeader builds an IPv6 UDP frame with a fragment header whose
// offset/M word is offMF (gopacket cannot serialise one).
func ipv6WithFragHeader(tb testing.TB, offMF uint16) []byte {
	f := build(tb, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 7, dport: 9, payload: []byte("fragment")})
	l3 := 14
	out := append([]byte(nil), f[:l3+40]...)
	out[l3+6] = protoFragment
	binary.BigEndian.PutUint16(out[l3+4:], binary.BigEndian.Uint16(f[l3+4:])+8)
	fh := []byte{byte(lvs.ProtoUDP), 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	binary.BigEndian.PutUint16(fh[2:], offMF)
	out = append(out, fh...)
	return append(out, f[l3+40:]...)
}

func TestParseErrors(t *testing.T) {
	good := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2, payload: []byte("x")})
	good6 := build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoTCP, sport: 1, dport: 2, vlans: 2})
	mod := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrTruncated},
		{"short eth", good[:13], ErrTruncated},
		{"arp", mod(good, func(b []byte) { b[12], b[13] = 0x08, 0x06 }), ErrNotIP},
		{"three vlans", append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0}, good[14:]...), ErrNotIP},
		{"short vlan", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0, 0, 1}, ErrTruncated},
		{"v4 bad version", mod(good, func(b []byte) { b[14] = 0x65 }), ErrBadHeader},
		{"v4 ihl 4", mod(good, func(b []byte) { b[14] = 0x44 }), ErrBadHeader},
		{"v4 total < ihl", mod(good, func(b []byte) { b[16], b[17] = 0, 19 }), ErrBadHeader},
		{"v4 total > frame", mod(good, func(b []byte) { b[16], b[17] = 0x05, 0xdc }), ErrTruncated},
		{"v4 tcp doff 4", mod(good, func(b []byte) { b[14+20+12] = 0x40 }), ErrBadHeader},
		{"v6 bad version", mod(good6, func(b []byte) { b[22] = 0x45 }), ErrBadHeader},
		{"v6 payload 0", mod(good6, func(b []byte) { b[22+4], b[22+5] = 0, 0 }), ErrBadHeader},
		{"v6 tcp cut by length", mod(good6, func(b []byte) { b[22+4], b[22+5] = 0, 10 }), ErrTruncated},
	}
	for _, c := range cases {
		var p Parsed
		if err := Parse(c.frame, &p); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v want %v", c.name, err, c.want)
		}
	}
	// Every truncation of a good frame fails cleanly.
	for _, f := range [][]byte{good, good6} {
		p := mustParse(t, f)
		for n := 0; n < p.L3Off+p.L3Len; n++ {
			var p Parsed
			if err := Parse(f[:n], &p); err == nil {
				t.Errorf("truncated to %d parsed", n)
			}
		}
	}
}

func TestParseExtHeaderLoop(t *testing.T) {
	// Nine destination-options headers: more than we walk.
	f := build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 7, dport: 9})
	out := append([]byte(nil), f[:54]...)
	out[20] = protoDestOpts
	for i := range 9 {
		nh := byte(protoDestOpts)
		if i == 8 {
			nh = byte(lvs.ProtoUDP)
		}
		out = append(out, nh, 0, 1, 4, 0, 0, 0, 0)
	}
	out = append(out, f[54:]...)
	binary.BigEndian.PutUint16(out[18:], uint16(len(out)-54))
	var p Parsed
	if err := Parse(out, &p); !errors.Is(err, ErrTooManyExtHeaders) {
		t.Fatalf("err %v", err)
	}
}

func TestParseAllocs(t *testing.T) {
	frames := [][]byte{
		build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2, vlans: 1}),
		build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 1, dport: 2, hopByHop: true}),
		icmpErrorFrame(t, false, lvs.ProtoTCP, 28, 0),
		icmpErrorFrame(t, true, lvs.ProtoUDP, 48, 0),
	}
	var p Parsed
	for _, f := range frames {
		if n := testing.AllocsPerRun(100, func() { _ = Parse(f, &p) }); n != 0 {
			t.Errorf("Parse allocates %v", n)
		}
	}
}

func TestParseICMPError(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, proto := range []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP} {
			for _, quote := range []int{0, 20, 28, 40, 44, 48, 60} {
				f := icmpErrorFrame(t, v6, proto, quote, 1)
				p := mustParse(t, f)
				hdr := 20
				if v6 {
					hdr = 40
				}
				name := fmt.Sprintf("v6=%v proto=%d quote=%d", v6, proto, quote)
				if p.ICMPType != map[bool]uint8{false: 3, true: 2}[v6] {
					t.Errorf("%s: icmp type %d", name, p.ICMPType)
				}
				if quote != 0 && quote < hdr {
					if p.Inner.Valid {
						t.Errorf("%s: inner valid with a short quote", name)
					}
					continue
				}
				in := p.Inner
				if !in.Valid || in.Proto != proto || in.L3Off != p.L4Off+8 || in.L4Off != in.L3Off+hdr {
					t.Fatalf("%s: inner %+v", name, in)
				}
				wantPorts := quote == 0 || quote >= hdr+4
				if in.HasPorts != wantPorts || (wantPorts && (in.SrcPort != 80 || in.DstPort != 33000)) {
					t.Errorf("%s: inner ports %v %d %d", name, in.HasPorts, in.SrcPort, in.DstPort)
				}
				if (in.Src.Is4() == v6) || in.Src != p.Dst {
					t.Errorf("%s: inner src %v outer dst %v", name, in.Src, p.Dst)
				}
			}
		}
	}
	// An echo request is not an error: no inner packet.
	f := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoICMP, icmpType: 8, icmpRest: 0x00010002, payload: make([]byte, 40)})
	if p := mustParse(t, f); p.Inner.Valid || p.ICMPType != 8 {
		t.Errorf("echo: %+v", p)
	}
}
