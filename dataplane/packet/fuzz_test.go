package packet

import (
	"encoding/binary"
	"github.com/govs/govs/lvs"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
)

// seedFrames are the well-formed frames every fuzz target starts from.
func seedFrames(tb testing.TB) [][]byte {
	var out [][]byte
	for _, s := range parseSpecs() {
		out = append(out, build(tb, s))
	}
	for _, v6 := range []bool{false, true} {
		for _, proto := range []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP} {
			for _, q := range []int{0, 28, 48} {
				out = append(out, icmpErrorFrame(tb, v6, proto, q, 0))
			}
		}
	}
	f := build(tb, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: make([]byte, 24)})
	setIPv4Frag(f, 14, 0x2000)
	out = append(out, f, ipv6WithFragHeader(tb, 1), ipv6WithFragHeader(tb, 64))
	out = append(out, build(tb, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoICMPv6, icmpType: 128, payload: []byte("ping")}))
	return out
}

// fuzzAddr makes an address of the packet's family from fuzz bytes.
func fuzzAddr(family uint8, b []byte) inet.Addr {
	var raw [16]byte
	copy(raw[:], b)
	if family == 4 {
		return inet.AddrFrom4([4]byte(raw[:4]))
	}
	if inet.Addr(raw).Is4() {
		raw[0] = 0x20 // an IPv6 rewrite target must not look IPv4-mapped
	}
	return inet.Addr(raw)
}

// guarded returns a copy of data inside a larger buffer with guard bytes on
// both sides; the frame's capacity ends at its length.
func guarded(data []byte) (buf, frame []byte) {
	buf = make([]byte, len(data)+64)
	for i := range buf {
		buf[i] = 0xa5
	}
	copy(buf[32:], data)
	return buf, buf[32 : 32+len(data) : 32+len(data)]
}

func checkGuards(t *testing.T, buf []byte, n int) {
	t.Helper()
	for i := range 32 {
		if buf[i] != 0xa5 || buf[32+n+i] != 0xa5 {
			t.Fatalf("write outside the frame")
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parsed
		if err := Parse(data, &p); err != nil {
			return
		}
		if p.L3Off < 14 || p.L3Off+p.L3Len > len(data) || p.L4Off < p.L3Off || p.L4Off > p.L3Off+p.L3Len {
			t.Fatalf("offsets out of frame: %+v (len %d)", p, len(data))
		}
		if p.Inner.Valid && (p.Inner.L3Off < p.L4Off || p.Inner.L4Off > p.L3Off+p.L3Len) {
			t.Fatalf("inner offsets: %+v", p)
		}
		if p.Frag == FragLater && (p.SrcPort != 0 || p.DstPort != 0) {
			t.Fatalf("later fragment with ports")
		}
		// gopacket agrees on the addresses.
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
		if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && p.Family == 4 {
			if inet.AddrFromSlice4(ip4.SrcIP.To4()) != p.Src || inet.AddrFromSlice4(ip4.DstIP.To4()) != p.Dst {
				t.Fatalf("ipv4 addresses differ from gopacket")
			}
		}
		if ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok && p.Family == 6 {
			if inet.AddrFromSlice16(ip6.SrcIP) != p.Src || inet.AddrFromSlice16(ip6.DstIP) != p.Dst {
				t.Fatalf("ipv6 addresses differ from gopacket")
			}
		}
	})
}

// fuzzRewrite runs one rewrite on a guarded copy of data and checks: no
// write outside the frame, only header fields a rewrite may touch changed,
// and checksums that were valid stay valid.
func fuzzRewrite(t *testing.T, data []byte, do func(frame []byte, p *Parsed)) {
	var p Parsed
	if Parse(data, &p) != nil {
		return
	}
	buf, frame := guarded(data)
	validIn := verifyChecksums(frame) == nil
	do(frame, &p)
	checkGuards(t, buf, len(data))
	if err := verifyChecksums(frame); validIn && err != nil {
		t.Fatalf("checksums valid before, not after: %v\nin  %x\nout %x", err, data, frame)
	}
	var q Parsed
	if err := Parse(frame, &q); err != nil {
		t.Fatalf("rewritten frame does not parse: %v", err)
	}
	if q != p {
		t.Fatalf("Parsed out of step with the frame:\n%+v\n%+v", p, q)
	}
}

func FuzzDNAT(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, []byte{198, 18, 3, byte(i), 0x20, 1, 0xd, 0xb8}, uint16(8080+i))
	}
	f.Fuzz(func(t *testing.T, data, a []byte, port uint16) {
		fuzzRewrite(t, data, func(frame []byte, p *Parsed) { DNAT(frame, p, fuzzAddr(p.Family, a), port) })
	})
}

func FuzzSNAT(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, []byte{198, 19, 3, byte(i), 0x20, 1, 0xd, 0xb8}, uint16(80+i))
	}
	f.Fuzz(func(t *testing.T, data, a []byte, port uint16) {
		fuzzRewrite(t, data, func(frame []byte, p *Parsed) { SNAT(frame, p, fuzzAddr(p.Family, a), port) })
	})
}

func FuzzFullNAT(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, []byte{198, 19, 3, byte(i), 0x20, 1, 0xd, 0xb8}, uint16(80+i), []byte{198, 18, 1, 1}, uint16(5000))
	}
	f.Fuzz(func(t *testing.T, data, a []byte, sport uint16, b []byte, dport uint16) {
		fuzzRewrite(t, data, func(frame []byte, p *Parsed) {
			FullNAT(frame, p, fuzzAddr(p.Family, a), sport, fuzzAddr(p.Family, b), dport)
		})
	})
}

func FuzzEncap(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, uint8(64+i), []byte{198, 18, 100, 1, 198, 18, 200, byte(i)}, i%2 == 0, uint16(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, room uint8, a []byte, outer6 bool, id uint16) {
		var p Parsed
		if Parse(data, &p) != nil {
			return
		}
		fam := uint8(4)
		if outer6 {
			fam = 6
		}
		var sb, db [16]byte
		copy(sb[:], a)
		if len(a) > 8 {
			copy(db[:], a[8:])
		}
		src, dst := fuzzAddr(fam, sb[:]), fuzzAddr(fam, db[:])
		hr := int(room)
		buf := make([]byte, hr+len(data)+64)
		for i := range buf {
			buf[i] = 0xa5
		}
		copy(buf[hr:], data)
		chunk := buf[: hr+len(data) : hr+len(data)]
		validIn := verifyChecksums(data) == nil
		off, n, err := Encap(chunk, hr, len(data), &p, src, dst, id)
		for i := hr + len(data); i < len(buf); i++ {
			if buf[i] != 0xa5 {
				t.Fatalf("write past the chunk")
			}
		}
		if err != nil {
			if hr+p.L3Off >= EthHeaderLen+EncapOverhead(fam) && p.L3Len <= 0xffff-40 {
				t.Fatalf("Encap refused with enough headroom: %v", err)
			}
			if string(buf[hr:hr+len(data)]) != string(data) {
				t.Fatalf("refused Encap changed the frame")
			}
			return
		}
		for i := range off {
			if buf[i] != 0xa5 {
				t.Fatalf("write before the new frame")
			}
		}
		out := chunk[off : off+n]
		if string(out[n-p.L3Len:]) != string(data[p.L3Off:p.L3Off+p.L3Len]) {
			t.Fatalf("inner packet changed")
		}
		var q Parsed
		if err := Parse(out, &q); err != nil {
			t.Fatalf("encapsulated frame does not parse: %v", err)
		}
		if q.Family != fam || q.Src != src || q.Dst != dst || q.L3Off+q.L3Len != n {
			t.Fatalf("encapsulated frame parses as %+v", q)
		}
		if err := verifyChecksums(out); validIn && err != nil {
			t.Fatalf("checksums: %v", err)
		}
	})
}

func FuzzFragNeeded(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, uint16(500+100*i))
	}
	f.Fuzz(func(t *testing.T, data []byte, mtu uint16) {
		var p Parsed
		if Parse(data, &p) != nil {
			return
		}
		from := p.Dst
		orig := append([]byte(nil), data...)
		buf := make([]byte, 2048+32)
		for i := range buf {
			buf[i] = 0xa5
		}
		out := buf[:2048:2048]
		n, err := BuildFragNeeded(out, data, &p, int(mtu), from, [6]byte{1}, [6]byte{2})
		if string(orig) != string(data) {
			t.Fatalf("original changed")
		}
		for _, b := range buf[2048:] {
			if b != 0xa5 {
				t.Fatalf("write past out")
			}
		}
		if err != nil {
			return
		}
		var q Parsed
		if err := Parse(out[:n], &q); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if lim := map[uint8]int{4: 576, 6: 1280}[p.Family]; q.L3Len > lim || q.Dst != p.Src || q.Src != from {
			t.Fatalf("answer %+v", q)
		}
		if err := verifyChecksums(out[:n]); err != nil {
			t.Fatalf("answer checksums: %v", err)
		}
	})
}

// innerChecksums reports, for the packet quoted in an ICMP error, whether
// its IPv4 header checksum is valid and, when the whole datagram is quoted,
// whether its TCP/UDP/ICMPv6 checksum is (checked says whether it could be).
func innerChecksums(frame []byte, p *Parsed) (ipOK, l4OK, checked bool) {
	in := &p.Inner
	end := p.L3Off + p.L3Len
	ipOK = true
	var total int
	if in.Family == 4 {
		ipOK = refFold(refSum(frame[in.L3Off:in.L4Off], 0)) == 0xffff
		total = int(binary.BigEndian.Uint16(frame[in.L3Off+2:]))
	} else {
		total = 40 + int(binary.BigEndian.Uint16(frame[in.L3Off+4:]))
	}
	if in.Frag != FragNone || in.L3Off+total > end || in.L4Off > in.L3Off+total {
		return ipOK, false, false
	}
	l4 := frame[in.L4Off : in.L3Off+total]
	var src, dst []byte
	if in.Family == 4 {
		src, dst = in.Src[12:], in.Dst[12:]
	} else {
		src, dst = in.Src[:], in.Dst[:]
	}
	switch {
	case in.Proto == lvs.ProtoTCP && len(l4) >= 20, in.Proto == lvs.ProtoUDP && len(l4) >= 8, in.Proto == lvs.ProtoICMPv6 && in.Family == 6 && len(l4) >= 4:
		if in.Proto == lvs.ProtoUDP && in.Family == 4 && l4[6] == 0 && l4[7] == 0 {
			return ipOK, true, true
		}
		return ipOK, refFold(refSum(l4, refPseudo(src, dst, in.Proto, len(l4)))) == 0xffff, true
	}
	return ipOK, false, false
}

func FuzzICMPError(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s, []byte{198, 18, 5, 5, 0x20, 1, 0xd, 0xb8}, []byte{198, 18, 6, 6}, uint16(1), uint16(2), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data, a, b []byte, sport, dport uint16, which uint8) {
		var p Parsed
		if Parse(data, &p) != nil || !p.Inner.Valid {
			return
		}
		buf, frame := guarded(data)
		validIn := verifyChecksums(frame) == nil
		ipIn, l4In, checkedIn := innerChecksums(frame, &p)
		x, y := fuzzAddr(p.Family, a), fuzzAddr(p.Family, b)
		var os, od *inet.Addr
		if which&1 != 0 {
			os = &x
		}
		if which&2 != 0 {
			od = &y
		}
		if err := RewriteICMPError(frame, &p, os, od, y, sport, x, dport); err != nil {
			t.Fatalf("RewriteICMPError on a parsed error: %v", err)
		}
		checkGuards(t, buf, len(data))
		if err := verifyChecksums(frame); validIn && err != nil {
			t.Fatalf("outer checksums valid before, not after: %v", err)
		}
		ipOut, l4Out, checkedOut := innerChecksums(frame, &p)
		if ipIn && !ipOut {
			t.Fatalf("quoted ipv4 header checksum broken")
		}
		if checkedIn && checkedOut && l4In && !l4Out {
			t.Fatalf("quoted l4 checksum broken")
		}
		var q Parsed
		if err := Parse(frame, &q); err != nil {
			t.Fatalf("rewritten frame does not parse: %v", err)
		}
		if q != p {
			t.Fatalf("Parsed out of step:\n%+v\n%+v", p, q)
		}
	})
}
