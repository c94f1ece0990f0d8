package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

func TestProxyHeaderV1(t *testing.T) {
	cases := []struct {
		src, dst     string
		sport, dport uint16
		want         string
	}{
		{"198.18.0.1", "198.18.0.100", 40000, 80, "PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n"},
		{"0.0.0.0", "255.255.255.255", 0, 65535, "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"},
		{"198.19.10.200", "198.18.0.9", 9, 10, "PROXY TCP4 198.19.10.200 198.18.0.9 9 10\r\n"},
		{"2001:db8::1", "2001:db8:0:1::100", 1024, 443, "PROXY TCP6 2001:db8::1 2001:db8:0:1::100 1024 443\r\n"},
		// RFC 5952: the first of two equally long zero runs, never a
		// single zero group, lowercase, no leading zeros.
		{"2001:db8:0:0:1:0:0:1", "2001:0db8:0:1:1:1:1:1", 1, 2, "PROXY TCP6 2001:db8::1:0:0:1 2001:db8:0:1:1:1:1:1 1 2\r\n"},
		{"2001:db8:0:0:1:0:0:0", "2001:DB8:AB:CD:EF:ABCD:f00:f", 3, 4, "PROXY TCP6 2001:db8:0:0:1:: 2001:db8:ab:cd:ef:abcd:f00:f 3 4\r\n"},
		{"::", "::1", 5, 6, "PROXY TCP6 :: ::1 5 6\r\n"},
		{"1::", "0:1:0:1:0:1:0:1", 7, 8, "PROXY TCP6 1:: 0:1:0:1:0:1:0:1 7 8\r\n"},
		// One address of each family: both written as IPv6.
		{"198.18.0.1", "2001:db8::100", 40000, 80, "PROXY TCP6 ::ffff:198.18.0.1 2001:db8::100 40000 80\r\n"},
		{"2001:db8::1", "198.18.0.100", 40000, 80, "PROXY TCP6 2001:db8::1 ::ffff:198.18.0.100 40000 80\r\n"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535, 65534,
			"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65534\r\n"},
	}
	for _, c := range cases {
		buf := bytes.Repeat([]byte{0xa5}, ProxyHeaderMax+8)
		n := ProxyHeader(buf[:ProxyHeaderMax], lvs.ProxyV1, addr(c.src), addr(c.dst), c.sport, c.dport)
		if got := string(buf[:n]); got != c.want {
			t.Errorf("%s -> %s: %q, want %q", c.src, c.dst, got, c.want)
		}
		if n > ProxyHeaderMax || !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, len(buf)-n)) {
			t.Errorf("%s -> %s: wrote past the header", c.src, c.dst)
		}
	}
}

func TestProxyHeaderV2(t *testing.T) {
	sig := []byte{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		src, dst     string
		sport, dport uint16
		want         []byte
	}{
		{"198.18.0.1", "198.18.0.100", 40000, 80, cat(sig, []byte{0x21, 0x11, 0x00, 0x0c,
			198, 18, 0, 1, 198, 18, 0, 100, 0x9c, 0x40, 0x00, 0x50})},
		{"2001:db8::1", "2001:db8:1::100", 1, 65535, cat(sig, []byte{0x21, 0x21, 0x00, 0x24,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
			0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
			0x00, 0x01, 0xff, 0xff})},
		{"198.18.0.1", "2001:db8::100", 40000, 80, cat(sig, []byte{0x21, 0x21, 0x00, 0x24,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
			0x9c, 0x40, 0x00, 0x50})},
	}
	for _, c := range cases {
		buf := bytes.Repeat([]byte{0xa5}, ProxyHeaderMax)
		n := ProxyHeader(buf, lvs.ProxyV2, addr(c.src), addr(c.dst), c.sport, c.dport)
		if !bytes.Equal(buf[:n], c.want) {
			t.Errorf("%s -> %s:\n got %x\nwant %x", c.src, c.dst, buf[:n], c.want)
		}
		if n < 16 || int(binary.BigEndian.Uint16(buf[14:]))+16 != n {
			t.Errorf("%s -> %s: length field %d of a %d-byte header", c.src, c.dst, binary.BigEndian.Uint16(buf[14:]), n)
		}
		if !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, len(buf)-n)) {
			t.Errorf("%s -> %s: wrote past the header", c.src, c.dst)
		}
	}
}

// TestProxyHeaderNone: no header for ProxyNone, unknown versions and a
// buffer shorter than ProxyHeaderMax, and nothing written.
func TestProxyHeaderNone(t *testing.T) {
	a, b := addr("198.18.0.1"), addr("198.18.0.2")
	for _, c := range []struct {
		v   lvs.ProxyProtocol
		len int
	}{{lvs.ProxyNone, ProxyHeaderMax}, {lvs.ProxyProtocol(3), ProxyHeaderMax}, {lvs.ProxyProtocol(255), ProxyHeaderMax},
		{lvs.ProxyV1, ProxyHeaderMax - 1}, {lvs.ProxyV2, 52}, {lvs.ProxyV1, 0}} {
		buf := bytes.Repeat([]byte{0xa5}, c.len)
		if n := ProxyHeader(buf, c.v, a, b, 1, 2); n != 0 {
			t.Errorf("%v into %d bytes: %d", c.v, c.len, n)
		}
		if !bytes.Equal(buf, bytes.Repeat([]byte{0xa5}, c.len)) {
			t.Errorf("%v into %d bytes: wrote", c.v, c.len)
		}
	}
}

// TestProxyHeaderV1Random: the text form agrees with netip (RFC 5952,
// ::ffff: for a mapped address) and strconv, and reads back as the
// addresses and ports written, for addresses rich in zero groups.
func TestProxyHeaderV1Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v4 bool) inet.Addr {
		if v4 {
			return inet.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		var a inet.Addr
		for g := 0; g < 8; g++ {
			switch r.IntN(4) {
			case 0, 1: // zero group: runs of every length
			case 2:
				a[2*g+1] = byte(r.IntN(16))
			default:
				binary.BigEndian.PutUint16(a[2*g:], uint16(r.Uint32()))
			}
		}
		return a
	}
	buf := make([]byte, ProxyHeaderMax)
	longest := 0
	for i := range 20000 {
		v4s, v4d := i%3 == 0, i%3 == 0 || i%7 == 0
		src, dst := randAddr(v4s), randAddr(v4d)
		sport, dport := uint16(r.Uint32()), uint16(r.Uint32())
		n := ProxyHeader(buf, lvs.ProxyV1, src, dst, sport, dport)
		longest = max(longest, n)
		fam, text := "TCP6", func(a inet.Addr) string { return netip.AddrFrom16(a).String() }
		if src.Is4() && dst.Is4() {
			fam, text = "TCP4", func(a inet.Addr) string { return a.String() }
		}
		want := "PROXY " + fam + " " + text(src) + " " + text(dst) + " " +
			strconv.Itoa(int(sport)) + " " + strconv.Itoa(int(dport)) + "\r\n"
		if got := string(buf[:n]); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
		f := strings.Fields(strings.TrimSuffix(want, "\r\n"))
		if a := inet.AddrFromNetip(netip.MustParseAddr(f[2])); a != src {
			t.Fatalf("source %s reads back as %s", src, a)
		}
	}
	if longest > ProxyHeaderMax {
		t.Fatalf("header of %d bytes", longest)
	}
}

// tcpPayloadCase is one SetTCPPayload: a segment with its payload and the
// payload to put in.
type tcpPayloadCase struct {
	name string
	s    seg
	data []byte
}

func tcpPayloadCases() []tcpPayloadCase {
	hdr := func(v lvs.ProxyProtocol, v6 bool) []byte {
		b := make([]byte, ProxyHeaderMax)
		src, dst := addr("198.18.0.1"), addr("198.18.0.100")
		if v6 {
			src, dst = addr("2001:db8::1"), addr("2001:db8::100")
		}
		return b[:ProxyHeader(b, v, src, dst, 40000, 80)]
	}
	ts := []layers.TCPOption{nop, nop, timestamp}
	var out []tcpPayloadCase
	for _, v6 := range []bool{false, true} {
		out = append(out,
			tcpPayloadCase{"handshake ack + v1", seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 502}, hdr(lvs.ProxyV1, v6)},
			tcpPayloadCase{"handshake ack + v2", seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 502}, hdr(lvs.ProxyV2, v6)},
			tcpPayloadCase{"timestamps + v2", seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 502, opts: ts}, hdr(lvs.ProxyV2, v6)},
			tcpPayloadCase{"sack + odd data", seg{v6: v6, flags: 0x10, seq: 0xfffffff0, ack: 9, win: 1,
				opts: []layers.TCPOption{nop, nop, timestamp, nop, nop, sackOpt(1, 2, 3, 4)}}, ackData()},
			tcpPayloadCase{"padding on a short frame", seg{v6: v6, trailer: 6, flags: 0x10, seq: 1, ack: 2, win: 3}, hdr(lvs.ProxyV1, v6)},
			tcpPayloadCase{"vlans and padding", seg{v6: v6, vlans: 2, trailer: 20, flags: 0x18, seq: 1, ack: 2, win: 3, opts: ts,
				payload: []byte("x")}, hdr(lvs.ProxyV2, v6)},
			tcpPayloadCase{"payload replaced by a longer one", seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3, opts: ts,
				payload: []byte("GET / HTTP/1.0\r\n\r\n")}, append(hdr(lvs.ProxyV1, v6), "GET / HTTP/1.0\r\n\r\n"...)},
			tcpPayloadCase{"payload replaced by a shorter one", seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3,
				payload: ackData()}, []byte("abc")},
			tcpPayloadCase{"payload removed", seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3, opts: ts, payload: ackData()}, nil},
			tcpPayloadCase{"empty stays empty", seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 3}, []byte{}},
		)
	}
	out = append(out, tcpPayloadCase{"ipv4 options", seg{ipOptions: true, flags: 0x10, seq: 1, ack: 2, win: 3, opts: ts}, hdr(lvs.ProxyV2, false)})
	return out
}

// TestSetTCPPayload: the result is byte for byte the frame gopacket builds
// with the new payload (Ethernet padding gone), gopacket decodes it to the
// same fields, and its checksums verify.
func TestSetTCPPayload(t *testing.T) {
	for _, c := range tcpPayloadCases() {
		name := c.name + map[bool]string{false: " v4", true: " v6"}[c.s.v6]
		t.Run(name, func(t *testing.T) {
			in := c.s.frame(t)
			ws := c.s
			ws.trailer, ws.payload = 0, c.data
			want := ipPacketOnly(t, ws.frame(t))
			buf := make([]byte, len(in)+ProxyHeaderMax+64)
			copy(buf, in)
			p := mustParse(t, in)
			before := p
			n, err := SetTCPPayload(buf, &p, c.data)
			if err != nil {
				t.Fatal(err)
			}
			if p != before {
				t.Errorf("Parsed changed")
			}
			if d := diff(buf[:n], want); d != "" {
				t.Errorf("SetTCPPayload: %s", d)
			}
			compareDecoded(t, buf[:n], want)
			if err := verifyChecksums(buf[:n]); err != nil {
				t.Error(err)
			}
		})
	}
}

// ipPacketOnly cuts the Ethernet padding (gopacket pads frames to 60
// bytes) off frame.
func ipPacketOnly(tb testing.TB, frame []byte) []byte {
	p := mustParse(tb, frame)
	return frame[:p.L3Off+p.L3Len]
}

// compareDecoded decodes got and want with gopacket and compares the IP
// and TCP fields and the payload one by one, for a readable failure.
func compareDecoded(t *testing.T, got, want []byte) {
	t.Helper()
	g := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	w := gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default)
	if el := g.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	if g4, ok := g.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		w4 := w.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if g4.Length != w4.Length || g4.Checksum != w4.Checksum || g4.IHL != w4.IHL || !g4.SrcIP.Equal(w4.SrcIP) || !g4.DstIP.Equal(w4.DstIP) {
			t.Errorf("ipv4: length %d checksum %#x, want %d %#x", g4.Length, g4.Checksum, w4.Length, w4.Checksum)
		}
	}
	if g6, ok := g.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		w6 := w.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if g6.Length != w6.Length || g6.NextHeader != w6.NextHeader || !g6.SrcIP.Equal(w6.SrcIP) || !g6.DstIP.Equal(w6.DstIP) {
			t.Errorf("ipv6: payload length %d, want %d", g6.Length, w6.Length)
		}
	}
	gt, ok := g.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok {
		t.Fatalf("no tcp layer")
	}
	wt := w.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if gt.SrcPort != wt.SrcPort || gt.DstPort != wt.DstPort || gt.Seq != wt.Seq || gt.Ack != wt.Ack ||
		gt.DataOffset != wt.DataOffset || gt.Window != wt.Window || gt.Checksum != wt.Checksum ||
		gt.SYN != wt.SYN || gt.ACK != wt.ACK || gt.PSH != wt.PSH || gt.FIN != wt.FIN || gt.RST != wt.RST {
		t.Errorf("tcp:\n got %+v\nwant %+v", gt.BaseLayer, wt.BaseLayer)
	}
	if len(gt.Options) != len(wt.Options) {
		t.Errorf("tcp options %v, want %v", gt.Options, wt.Options)
	} else {
		for i := range gt.Options {
			if gt.Options[i].OptionType != wt.Options[i].OptionType || !bytes.Equal(gt.Options[i].OptionData, wt.Options[i].OptionData) {
				t.Errorf("tcp option %d: %v, want %v", i, gt.Options[i], wt.Options[i])
			}
		}
	}
	if !bytes.Equal(gt.Payload, wt.Payload) {
		t.Errorf("payload %q, want %q", gt.Payload, wt.Payload)
	}
}

// TestSetTCPPayloadExtHeaders: IPv6 extension headers stay in front of
// the segment and count in the payload length.
func TestSetTCPPayloadExtHeaders(t *testing.T) {
	s := spec{src: "2001:db8::1", dst: "2001:db8::100", proto: lvs.ProtoTCP, sport: 40000, dport: 80, tcpFlags: 0x10,
		hopByHop: true, dstOpts: true, trailer: 3}
	in := build(t, s)
	data := []byte("PROXY TCP6 2001:db8::1 2001:db8::100 40000 80\r\n")
	s.trailer, s.payload = 0, data
	want := ipPacketOnly(t, build(t, s))
	buf := make([]byte, 256)
	copy(buf, in)
	p := mustParse(t, in)
	if !p.HasIPOptions {
		t.Fatal("no extension headers")
	}
	n, err := SetTCPPayload(buf, &p, data)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(buf[:n], want); d != "" {
		t.Errorf("SetTCPPayload: %s", d)
	}
	if err := verifyChecksums(buf[:n]); err != nil {
		t.Error(err)
	}
}

// TestSetTCPPayloadKeepsBadChecksum: a wrong TCP or IPv4 header checksum
// stays wrong by the same amount; it is not made right.
func TestSetTCPPayloadKeepsBadChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s := seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3, payload: []byte("data")}
		in := s.frame(t)
		p := mustParse(t, in)
		in[p.L4Off+16] ^= 0x01
		if !v6 {
			in[p.L3Off+10] ^= 0x10
		}
		buf := make([]byte, 256)
		copy(buf, in)
		n, err := SetTCPPayload(buf, &p, []byte("other data"))
		if err != nil {
			t.Fatal(err)
		}
		s.payload = []byte("other data")
		want := ipPacketOnly(t, s.frame(t))
		want[p.L4Off+16] ^= 0x01
		if !v6 {
			want[p.L3Off+10] ^= 0x10
		}
		if d := diff(buf[:n], want); d != "" {
			t.Errorf("v6 %v: %s", v6, d)
		}
	}
}

// TestSetTCPPayloadErrors: what SetTCPPayload refuses, and that it leaves
// the buffer alone then.
func TestSetTCPPayloadErrors(t *testing.T) {
	tcp4 := seg{flags: 0x10, seq: 1, ack: 2, win: 3}.frame(t)
	first := bytes.Clone(tcp4)
	setIPv4Frag(first, 14, 0x2000) // more fragments, offset 0
	later := bytes.Clone(tcp4)
	setIPv4Frag(later, 14, 0x0004)
	udp := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: []byte("x")})
	big4 := seg{flags: 0x10, payload: make([]byte, 65000)}.frame(t)
	big6 := seg{v6: true, flags: 0x10, payload: make([]byte, 65000)}.frame(t)
	long := seg{flags: 0x10, opts: []layers.TCPOption{nop, nop, timestamp}}.frame(t)
	lp := mustParse(t, long)
	long[lp.L4Off+12] = 15 << 4 // a 60-byte header in a 32-byte segment
	cases := []struct {
		name  string
		frame []byte
		room  int
		data  []byte
		want  error
	}{
		{"udp", udp, 64, []byte("a"), ErrBadArgument},
		{"first fragment", first, 64, []byte("a"), ErrBadArgument},
		{"later fragment", later, 64, []byte("a"), ErrBadArgument},
		{"header past the segment", long, 64, []byte("a"), ErrBadArgument},
		{"buffer too short", tcp4, 0, make([]byte, 20), ErrShortBuffer},
		{"ipv4 over 65535", big4, 1000, make([]byte, 65536-40), ErrTooLong},
		{"ipv6 over 65535", big6, 1000, make([]byte, 65536-20), ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.frame)
			buf := append(bytes.Clone(c.frame), make([]byte, c.room)...)
			orig := bytes.Clone(buf)
			if _, err := SetTCPPayload(buf, &p, c.data); !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(buf, orig) {
				t.Error("buffer changed")
			}
		})
	}
	t.Run("largest ipv4 and ipv6 packets", func(t *testing.T) {
		for _, f := range [][]byte{big4, big6} {
			p := mustParse(t, f)
			buf := make([]byte, 70000)
			copy(buf, f)
			room := 0xffff - (p.L4Off + 20 - p.L3Off)
			if p.Family == 6 {
				room += IPv6HeaderLen
			}
			n, err := SetTCPPayload(buf, &p, make([]byte, room))
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyChecksums(buf[:n]); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("parsed does not fit the buffer", func(t *testing.T) {
		p := mustParse(t, tcp4)
		if _, err := SetTCPPayload(tcp4[:p.L4Off+10], &p, nil); !errors.Is(err, ErrBadArgument) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestProxyProtoAllocs(t *testing.T) {
	buf := make([]byte, ProxyHeaderMax)
	for _, a := range [][2]string{{"198.18.0.1", "198.18.0.100"}, {"2001:db8::1", "2001:db8:0:0:1::100"}} {
		src, dst := addr(a[0]), addr(a[1])
		for _, v := range lvs.ProxyProtocols {
			if n := testing.AllocsPerRun(1000, func() { ProxyHeader(buf, v, src, dst, 40000, 80) }); n != 0 {
				t.Errorf("ProxyHeader %v %s: %v allocations", v, a[0], n)
			}
		}
	}
	for _, v6 := range []bool{false, true} {
		in := seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}}.frame(t)
		p := mustParse(t, in)
		frame := make([]byte, 256)
		data := []byte("PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n")
		if n := testing.AllocsPerRun(1000, func() {
			copy(frame, in)
			_, _ = SetTCPPayload(frame, &p, data)
		}); n != 0 {
			t.Errorf("SetTCPPayload v6 %v: %v allocations", v6, n)
		}
	}
}

func BenchmarkSetTCPPayload(b *testing.B) {
	in := seg{flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}}.frame(b)
	p := mustParse(b, in)
	frame := make([]byte, 256)
	hdr := make([]byte, ProxyHeaderMax)
	hdr = hdr[:ProxyHeader(hdr, lvs.ProxyV2, p.Src, p.Dst, p.SrcPort, p.DstPort)]
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, in)
		_, _ = SetTCPPayload(frame, &p, hdr)
	}
}

// refFixChecksums makes the IPv4 header checksum and the TCP checksum of
// the segment p describes right, with the reference sum, where the TCP
// header is inside the packet; it reports whether it could.
func refFixChecksums(frame []byte, p *Parsed) bool {
	if p.Proto != lvs.ProtoTCP || p.Frag != FragNone || p.L4Off+TCPHeaderLen > p.L3Off+p.L3Len {
		return false
	}
	var src, dst []byte
	if p.Family == 4 {
		fixIPv4HeaderRef(frame, p.L3Off)
		src, dst = p.Src[12:], p.Dst[12:]
	} else {
		src, dst = p.Src[:], p.Dst[:]
	}
	l4 := frame[p.L4Off : p.L3Off+p.L3Len]
	l4[16], l4[17] = 0, 0
	binary.BigEndian.PutUint16(l4[16:], ^refFold(refSum(l4, refPseudo(src, dst, lvs.ProtoTCP, len(l4)))))
	return true
}

// refTCPChecksumOK checks the TCP checksum of the segment p describes with
// the reference sum.
func refTCPChecksumOK(frame []byte, p *Parsed) bool {
	src, dst := p.Src[:], p.Dst[:]
	if p.Family == 4 {
		src, dst = p.Src[12:], p.Dst[12:]
		if refFold(refSum(frame[p.L3Off:p.L4Off], 0)) != 0xffff {
			return false
		}
	}
	l4 := frame[p.L4Off : p.L3Off+p.L3Len]
	return refFold(refSum(l4, refPseudo(src, dst, lvs.ProtoTCP, len(l4)))) == 0xffff
}

// growFuzz runs a rewrite that may grow the frame: data (checksums made
// right first) sits in a buffer room bytes longer, between guard bytes.
// A refusal must leave the buffer as it was; a result must stay inside
// the buffer, parse as the same connection and have right checksums.
// check gets the input, its Parsed and the result for more checks.
func growFuzz(t *testing.T, data []byte, room int, do func(buf []byte, p *Parsed) (int, error),
	check func(t *testing.T, in []byte, p *Parsed, out []byte)) {
	var p Parsed
	if Parse(data, &p) != nil {
		return
	}
	data = bytes.Clone(data)
	fixed := refFixChecksums(data, &p)
	size := len(data) + room
	all := bytes.Repeat([]byte{0xa5}, 32+size+32)
	copy(all[32:], data)
	buf := all[32 : 32+size : 32+size]
	orig := bytes.Clone(all)
	q := p
	n, err := do(buf, &q)
	if q != p {
		t.Fatalf("Parsed changed")
	}
	if !bytes.Equal(all[:32], orig[:32]) || !bytes.Equal(all[32+size:], orig[32+size:]) {
		t.Fatalf("write outside the buffer")
	}
	if err != nil {
		if !bytes.Equal(all, orig) {
			t.Fatalf("refused (%v) but changed the buffer", err)
		}
		return
	}
	if !fixed {
		t.Fatalf("accepted a frame that is not a whole unfragmented tcp segment: %+v", p)
	}
	if n < p.L4Off+TCPHeaderLen || n > size {
		t.Fatalf("length %d of a %d-byte buffer", n, size)
	}
	out := buf[:n]
	var r Parsed
	if err := Parse(out, &r); err != nil {
		t.Fatalf("result does not parse: %v\nin  %x\nout %x", err, data, out)
	}
	if r.Proto != lvs.ProtoTCP || r.Src != p.Src || r.Dst != p.Dst || r.SrcPort != p.SrcPort || r.DstPort != p.DstPort ||
		r.L3Off != p.L3Off || r.L4Off != p.L4Off || r.L3Off+r.L3Len != n || r.TCPFlags != p.TCPFlags {
		t.Fatalf("result parses as %+v, was %+v", r, p)
	}
	if !refTCPChecksumOK(out, &r) {
		t.Fatalf("checksum wrong\nin  %x\nout %x", data, out)
	}
	if err := verifyChecksums(out); err != nil {
		t.Fatalf("gopacket: %v", err)
	}
	check(t, data, &p, out)
}

// proxyPayloadSeeds are TCP segments with and without options and payload.
func proxyPayloadSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, c := range tcpPayloadCases() {
		out = append(out, c.s.frame(tb))
	}
	return append(out, sackSeeds(tb)...)
}

func FuzzSetTCPPayload(f *testing.F) {
	for i, s := range append(seedFrames(f), proxyPayloadSeeds(f)...) {
		f.Add(s, uint8(i*13), []byte("PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n"[:i%46]))
	}
	f.Fuzz(func(t *testing.T, data []byte, room uint8, payload []byte) {
		growFuzz(t, data, int(room), func(buf []byte, p *Parsed) (int, error) {
			return SetTCPPayload(buf, p, payload)
		}, func(t *testing.T, in []byte, p *Parsed, out []byte) {
			hl := int(in[p.L4Off+12]>>4) * 4
			if !bytes.Equal(out[p.L4Off+hl:], payload) {
				t.Fatalf("payload %x, want %x", out[p.L4Off+hl:], payload)
			}
			// Only the IP length and checksum fields and the TCP
			// checksum change in front of the payload.
			for i := 0; i < p.L4Off+hl; i++ {
				if out[i] == in[i] || i == p.L4Off+16 || i == p.L4Off+17 {
					continue
				}
				if p.Family == 4 && (i == p.L3Off+2 || i == p.L3Off+3 || i == p.L3Off+10 || i == p.L3Off+11) {
					continue
				}
				if p.Family == 6 && (i == p.L3Off+4 || i == p.L3Off+5) {
					continue
				}
				t.Fatalf("byte %d changed", i)
			}
		})
	})
}
