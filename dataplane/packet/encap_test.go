package packet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/lvs"
)

const headroom = 256

// inChunk places frame in a UMEM-like chunk after headroom bytes of slack.
func inChunk(frame []byte) []byte {
	c := make([]byte, headroom+len(frame)+64)
	for i := range c {
		c[i] = 0x5a
	}
	copy(c[headroom:], frame)
	return c
}

func expectedEncap(tb testing.TB, inner []byte, p *Parsed, outerSrc, outerDst string, ds uint8, df bool, id uint16) []byte {
	tb.Helper()
	innerIP := inner[p.L3Off : p.L3Off+p.L3Len]
	next := layers.IPProtocolIPv4
	if p.Family == 6 {
		next = layers.IPProtocolIPv6
	}
	var ls []gopacket.SerializableLayer
	zero := make([]byte, 6)
	if addr(outerSrc).Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TOS: ds, Id: id, TTL: 64, Protocol: next, SrcIP: ipOf(outerSrc), DstIP: ipOf(outerDst)}
		if df {
			ip.Flags = layers.IPv4DontFragment
		}
		ls = append(ls, &layers.Ethernet{SrcMAC: zero, DstMAC: zero, EthernetType: layers.EthernetTypeIPv4}, ip)
	} else {
		ls = append(ls, &layers.Ethernet{SrcMAC: zero, DstMAC: zero, EthernetType: layers.EthernetTypeIPv6},
			&layers.IPv6{Version: 6, TrafficClass: ds, FlowLabel: FlowLabel(p), NextHeader: next, HopLimit: 64, SrcIP: ipOf(outerSrc), DstIP: ipOf(outerDst)})
	}
	ls = append(ls, gopacket.Payload(innerIP))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestEncap(t *testing.T) {
	inners := []struct {
		s  spec
		ds uint8 // the inner DS field
	}{
		{spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 40000, dport: 80, tcpFlags: 0x02, df: true, ipID: 7, payload: []byte("syn")}, 0x10},
		{spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoUDP, sport: 40000, dport: 53, ipID: 8, vlans: 2, trailer: 5, payload: []byte("q")}, 0x10},
		{spec{src: "2001:db8::1", dst: "2001:db8:1::1", proto: lvs.ProtoTCP, sport: 40000, dport: 443, tcpFlags: 0x10, vlans: 1, payload: []byte("v6 data")}, 0x20},
	}
	outers := [][2]string{{"198.18.100.1", "198.18.200.2"}, {"2001:db8:100::1", "2001:db8:200::2"}}
	for _, in := range inners {
		for _, o := range outers {
			t.Run(fmt.Sprintf("%s-in-%s/vlan%d", in.s.src, o[0], in.s.vlans), func(t *testing.T) {
				frame := build(t, in.s)
				p := mustParse(t, frame)
				chunk := inChunk(frame)
				off, n, err := Encap(chunk, headroom, len(frame), &p, addr(o[0]), addr(o[1]), 0x1234)
				if err != nil {
					t.Fatal(err)
				}
				df := in.s.df || p.Family == 6
				want := expectedEncap(t, frame, &p, o[0], o[1], in.ds, df, 0x1234)
				got := chunk[off : off+n]
				if d := diff(got, want); d != "" {
					t.Fatal(d)
				}
				if err := verifyChecksums(got); err != nil {
					t.Fatal(err)
				}
				q := mustParse(t, got)
				wantProto := lvs.ProtoIPIP
				if p.Family == 6 {
					wantProto = lvs.ProtoIPv6
				}
				if q.Proto != wantProto || q.L3Len != n-14 || q.Dst != addr(o[1]) {
					t.Errorf("encapsulated frame parses as %+v", q)
				}
				// Bytes after the new frame (the old padding) and before it are untouched.
				for i := range off {
					if chunk[i] != 0x5a {
						t.Fatalf("headroom byte %d written", i)
					}
				}
			})
		}
	}
}

func TestEncapECN(t *testing.T) {
	for in, want := range map[uint8]uint8{0x00: 0x00, 0x01: 0x01, 0x02: 0x02, 0x03: 0x02, 0xb8: 0xb8, 0xbb: 0xba} {
		if got := ecnEncapsulate(in); got != want {
			t.Errorf("ecnEncapsulate(%#x) = %#x, want %#x", in, got, want)
		}
	}
}

func TestEncapErrors(t *testing.T) {
	frame := build(t, spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 1, dport: 2})
	p := mustParse(t, frame)
	chunk := inChunk(frame)
	cases := []struct {
		name        string
		off, length int
		src, dst    string
		want        error
	}{
		{"no headroom", 0, len(frame), "198.18.100.1", "198.18.100.2", ErrNoHeadroom},
		{"6 bytes headroom", 0, len(frame), "198.18.100.1", "198.18.100.2", ErrNoHeadroom},
		{"mixed outer families", headroom, len(frame), "198.18.100.1", "2001:db8::2", ErrBadArgument},
		{"beyond chunk", headroom, len(chunk), "198.18.100.1", "198.18.100.2", ErrBadArgument},
		{"negative", -1, len(frame), "198.18.100.1", "198.18.100.2", ErrBadArgument},
		{"shorter than p", headroom, 30, "198.18.100.1", "198.18.100.2", ErrBadArgument},
	}
	for _, c := range cases {
		ch := chunk
		if c.name == "no headroom" {
			ch = append([]byte(nil), frame...)
		}
		if c.name == "6 bytes headroom" {
			ch = append(make([]byte, 6), frame...)
		}
		if _, _, err := Encap(ch, c.off, c.length, &p, addr(c.src), addr(c.dst), 1); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecTTL(t *testing.T) {
	for _, s := range []spec{
		{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 1, dport: 2, vlans: 1},
		{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 1, dport: 2},
	} {
		frame := build(t, s)
		p := mustParse(t, frame)
		ttl := p.L3Off + 8
		if p.Family == 6 {
			ttl = p.L3Off + 7
		}
		for frame[ttl] > 1 {
			before := frame[ttl]
			prev := bytes.Clone(frame)
			if !DecTTL(frame, &p) || frame[ttl] != before-1 {
				t.Fatalf("%s: ttl %d not decremented", s.src, before)
			}
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("%s: ttl %d: %v", s.src, frame[ttl], err)
			}
			// RestoreTTL undoes it, checksum included.
			again := bytes.Clone(frame)
			RestoreTTL(again, &p)
			if !bytes.Equal(again, prev) {
				t.Fatalf("%s: ttl %d restored to %x, want %x", s.src, frame[ttl], again, prev)
			}
		}
		if DecTTL(frame, &p) || frame[ttl] != 1 {
			t.Errorf("%s: TTL 1 decremented", s.src)
		}
	}
}

func TestEncapAllocs(t *testing.T) {
	frame := build(t, spec{src: "198.18.0.1", dst: "198.18.1.1", proto: lvs.ProtoTCP, sport: 1, dport: 2})
	p := mustParse(t, frame)
	chunk := inChunk(frame)
	s, d := addr("198.18.100.1"), addr("198.18.100.2")
	if n := testing.AllocsPerRun(100, func() { _, _, _ = Encap(chunk, headroom, len(frame), &p, s, d, 1) }); n != 0 {
		t.Errorf("Encap allocates %v", n)
	}
	if n := testing.AllocsPerRun(100, func() { DecTTL(frame, &p) }); n != 0 {
		t.Errorf("DecTTL allocates %v", n)
	}
}

func BenchmarkEncap(b *testing.B) {
	for _, o := range [][2]string{{"198.18.100.1", "198.18.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
		b.Run("outer"+o[0], func(b *testing.B) {
			frame, p := benchFrame(b, false)
			chunk := inChunk(frame)
			s, d := addr(o[0]), addr(o[1])
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = Encap(chunk, headroom, len(frame), &p, s, d, 1)
			}
		})
	}
}
