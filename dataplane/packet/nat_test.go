package packet

import (
	"encoding/binary"
	"github.com/govs/govs/lvs"
	"testing"

	"github.com/govs/govs/inet"
)

// natCase is one rewrite: what to do to a frame built from spec, and the
// spec gopacket builds the expected frame from.
type natCase struct {
	name string
	in   spec
	want spec
	do   func(frame []byte, p *Parsed)
	// check the Parsed after the rewrite against the expected frame's
}

func rewriteCases() []natCase {
	var cs []natCase
	for _, s := range parseSpecs() {
		v6 := s.src[0] == '2'
		vip, rip, lip, cip := s.dst, "198.18.200.9", "198.18.100.1", s.src
		if v6 {
			rip, lip = "2001:db8:200::9", "2001:db8:100::1"
		}
		// NAT inbound: CIP:cport->VIP:vport becomes CIP:cport->RIP:rport.
		w := s
		w.dst, w.dport = rip, 8080
		cs = append(cs, natCase{"dnat/" + specName(s), s, w, func(f []byte, p *Parsed) { DNAT(f, p, addr(rip), 8080) }})
		// NAT reply: RIP:rport->CIP:cport becomes VIP:vport->CIP:cport.
		r := s
		r.src, r.sport, r.dst, r.dport = rip, 8080, cip, s.sport
		rw := r
		rw.src, rw.sport = vip, s.dport
		cs = append(cs, natCase{"snat/" + specName(s), r, rw, func(f []byte, p *Parsed) { SNAT(f, p, addr(vip), s.dport) }})
		// Full-NAT inbound: CIP:cport->VIP:vport becomes LIP:lport->RIP:rport.
		fw := s
		fw.src, fw.sport, fw.dst, fw.dport = lip, 5001, rip, 8080
		cs = append(cs, natCase{"fullnat-in/" + specName(s), s, fw, func(f []byte, p *Parsed) { FullNAT(f, p, addr(lip), 5001, addr(rip), 8080) }})
		// Full-NAT outbound: RIP:rport->LIP:lport becomes VIP:vport->CIP:cport.
		fo := fw
		fo.src, fo.sport, fo.dst, fo.dport = rip, 8080, lip, 5001
		foWant := s
		foWant.src, foWant.sport, foWant.dst, foWant.dport = vip, s.dport, cip, s.sport
		cs = append(cs, natCase{"fullnat-out/" + specName(s), fo, foWant, func(f []byte, p *Parsed) { FullNAT(f, p, addr(vip), s.dport, addr(cip), s.sport) }})
	}
	// ICMP echo: only addresses change; the ICMPv6 checksum covers them.
	for _, fam := range [][3]string{{"198.18.0.1", "198.18.0.2", "198.18.0.3"}, {"2001:db8::1", "2001:db8::2", "2001:db8::3"}} {
		proto, typ := lvs.ProtoICMP, uint8(8)
		if fam[0][0] == '2' {
			proto, typ = lvs.ProtoICMPv6, 128
		}
		in := spec{src: fam[0], dst: fam[1], proto: proto, icmpType: typ, icmpRest: 0x00070001, payload: []byte("ping payload")}
		w := in
		w.dst = fam[2]
		to := fam[2]
		cs = append(cs, natCase{"dnat-echo/" + fam[0], in, w, func(f []byte, p *Parsed) { DNAT(f, p, addr(to), 99) }})
	}
	// IPv4 UDP without checksum keeps none.
	z := spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1000, dport: 53, payload: []byte("q"), zeroUDPCsum: true}
	zw := z
	zw.dst, zw.dport = "198.18.7.7", 5353
	cs = append(cs, natCase{"dnat-udp-nocsum", z, zw, func(f []byte, p *Parsed) { DNAT(f, p, addr("198.18.7.7"), 5353) }})
	return cs
}

func TestRewrites(t *testing.T) {
	for _, c := range rewriteCases() {
		t.Run(c.name, func(t *testing.T) {
			frame := build(t, c.in)
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("input: %v", err)
			}
			want := build(t, c.want)
			p := mustParse(t, frame)
			c.do(frame, &p)
			if d := diff(frame, want); d != "" {
				t.Fatalf("%s", d)
			}
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("output: %v", err)
			}
			// The rewrite keeps p in step with the frame.
			if again := mustParse(t, frame); again != p {
				t.Errorf("Parsed after rewrite\n%+v\nreparsed\n%+v", p, again)
			}
		})
	}
}

// TestUDP6ChecksumNeverZero picks the new port so that the true checksum
// is 0, which UDP must send as 0xffff (RFC 768, RFC 8200 section 8.1).
func TestUDPChecksumNeverZero(t *testing.T) {
	for _, fam := range [][3]string{{"2001:db8::1", "2001:db8::2", "2001:db8::3"}, {"198.18.0.1", "198.18.0.2", "198.18.0.3"}} {
		in := spec{src: fam[0], dst: fam[1], proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: []byte("zero me")}
		w := in
		w.dst, w.dport = fam[2], 0
		w0 := build(t, w)
		p0 := mustParse(t, w0)
		port := binary.BigEndian.Uint16(w0[p0.L4Off+6:]) // sum + port = 0xffff: the checksum becomes 0
		w.dport = port
		want := build(t, w)
		if c := binary.BigEndian.Uint16(want[p0.L4Off+6:]); c != 0 {
			t.Fatalf("test setup: gopacket checksum %#x, want 0", c)
		}
		want[p0.L4Off+6], want[p0.L4Off+7] = 0xff, 0xff
		frame := build(t, in)
		p := mustParse(t, frame)
		DNAT(frame, &p, addr(fam[2]), port)
		if d := diff(frame, want); d != "" {
			t.Errorf("%s: %s", fam[0], d)
		}
		if err := verifyChecksums(frame); err != nil {
			t.Errorf("%s: %v", fam[0], err)
		}
	}
}

func TestRewriteFragments(t *testing.T) {
	in := spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1000, dport: 53, payload: []byte("fragmented datagram")}
	w := in
	w.dst, w.dport = "198.18.5.5", 5353
	// First fragment: the L4 checksum covers the whole datagram but is
	// patched incrementally like any other.
	frame, want := build(t, in), build(t, w)
	setIPv4Frag(frame, 14, 0x2000)
	setIPv4Frag(want, 14, 0x2000)
	p := mustParse(t, frame)
	DNAT(frame, &p, addr(w.dst), w.dport)
	if d := diff(frame, want); d != "" {
		t.Errorf("first fragment: %s", d)
	}
	// Later fragment: only the address and the IPv4 header checksum change;
	// the bytes where ports would be are payload.
	frame, want = build(t, in), build(t, w)
	setIPv4Frag(frame, 14, 0x0010)
	copy(want[34:], frame[34:])
	setIPv4Frag(want, 14, 0x0010)
	p = mustParse(t, frame)
	DNAT(frame, &p, addr(w.dst), w.dport)
	if d := diff(frame, want); d != "" {
		t.Errorf("later fragment: %s", d)
	}
	if p.DstPort != 0 || p.Dst != addr(w.dst) {
		t.Errorf("later fragment Parsed %+v", p)
	}
	// IPv6 later fragment: only the address.
	frame = ipv6WithFragHeader(t, 8<<3)
	orig := append([]byte(nil), frame...)
	p = mustParse(t, frame)
	SNAT(frame, &p, addr("2001:db8::77"), 1)
	for i := range frame {
		if (i < 14+8 || i >= 14+24) && frame[i] != orig[i] {
			t.Fatalf("v6 later fragment: byte %d changed", i)
		}
	}
}

func TestRewriteRefusesMismatch(t *testing.T) {
	frame := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2})
	orig := append([]byte(nil), frame...)
	p := mustParse(t, frame)
	DNAT(frame, &p, addr("2001:db8::1"), 9)     // wrong family
	SNAT(frame[:40], &p, addr("198.18.0.9"), 9) // p does not fit the frame
	bad := p
	bad.L3Off = -3
	DNAT(frame, &bad, addr("198.18.0.9"), 9)
	bad = p
	bad.Family = 5
	DNAT(frame, &bad, addr("198.18.0.9"), 9)
	if d := diff(frame, orig); d != "" {
		t.Errorf("frame changed: %s", d)
	}
	SetMACs(frame[:11], [6]byte{1}, [6]byte{2})
	if d := diff(frame, orig); d != "" {
		t.Errorf("SetMACs on a short frame: %s", d)
	}
}

func TestSetMACs(t *testing.T) {
	frame := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2})
	orig := append([]byte(nil), frame...)
	SetMACs(frame, [6]byte{1, 2, 3, 4, 5, 6}, [6]byte{7, 8, 9, 10, 11, 12})
	want := append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, orig[12:]...)
	if d := diff(frame, want); d != "" {
		t.Error(d)
	}
}

func TestRewriteAllocs(t *testing.T) {
	f4 := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2, vlans: 1})
	f6 := build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 1, dport: 2})
	fs := build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoSCTP, sport: 1, dport: 2, payload: []byte("sctp")})
	a4, b4 := addr("198.18.3.3"), addr("198.18.4.4")
	a6, b6 := addr("2001:db8::3"), addr("2001:db8::4")
	for _, c := range []struct {
		name  string
		frame []byte
		a, b  inet.Addr
	}{{"v4", f4, a4, b4}, {"v6", f6, a6, b6}, {"sctp", fs, a6, b6}} {
		p := mustParse(t, c.frame)
		for name, fn := range map[string]func(){
			"DNAT":    func() { DNAT(c.frame, &p, c.a, 80) },
			"SNAT":    func() { SNAT(c.frame, &p, c.b, 81) },
			"FullNAT": func() { FullNAT(c.frame, &p, c.a, 82, c.b, 83) },
			"SetMACs": func() { SetMACs(c.frame, [6]byte{1}, [6]byte{2}) },
		} {
			if n := testing.AllocsPerRun(100, fn); n != 0 {
				t.Errorf("%s %s allocates %v", c.name, name, n)
			}
		}
	}
}

func TestChecksumHelpers(t *testing.T) {
	data := []byte{0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2}
	c := Checksum(data, 0)
	if want := ^refFold(refSum(data, 0)); c != want {
		t.Fatalf("Checksum %#x want %#x", c, want)
	}
	check := func(name string, got uint16) {
		t.Helper()
		if want := ^refFold(refSum(data, 0)); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
			t.Errorf("%s: %#x want %#x", name, got, want)
		}
	}
	old16 := binary.BigEndian.Uint16(data[4:])
	binary.BigEndian.PutUint16(data[4:], 0xbeef)
	c = UpdateChecksum16(c, old16, 0xbeef)
	check("16", c)
	old32 := binary.BigEndian.Uint32(data[12:])
	binary.BigEndian.PutUint32(data[12:], 0xc6120909)
	c = UpdateChecksum32(c, old32, 0xc6120909)
	check("32", c)
	nb := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	c = UpdateChecksumBytes(c, data[12:20], nb)
	copy(data[12:], nb)
	check("bytes", c)
	v6 := make([]byte, 40)
	copy(v6, "0123456789abcdef0123456789abcdef01234567")
	c = Checksum(v6, 0)
	a := addr("2001:db8::ffff:1")
	c = UpdateChecksumAddr16(c, v6[8:24], &a)
	copy(v6[8:], a[:])
	if want := ^refFold(refSum(v6, 0)); c != want {
		t.Errorf("addr16: %#x want %#x", c, want)
	}
	src, dst := addr("198.18.0.1"), addr("198.18.0.2")
	if got, want := refFold(uint32(fold(PseudoHeaderSum(4, &src, &dst, 6, 20)))), refFold(refPseudo(src[12:], dst[12:], 6, 20)); got != want {
		t.Errorf("pseudo v4 %#x want %#x", got, want)
	}
}

// TestRewriteKeepsCorruptionVisible: a packet that arrived with a bad
// checksum must not leave with a good one.
func TestRewriteKeepsCorruptionVisible(t *testing.T) {
	for _, s := range []spec{
		{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2, payload: []byte("abc")},
		{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: []byte("abc")},
		{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoSCTP, sport: 1, dport: 2, payload: []byte("abc")},
	} {
		frame := build(t, s)
		frame[len(frame)-5] ^= 0x40 // inside the payload (and past any padding: none here)
		if verifyChecksums(frame) == nil {
			t.Fatalf("%d: corruption not detected in the input", s.proto)
		}
		p := mustParse(t, frame)
		a := addr("198.18.7.7")
		if p.Family == 6 {
			a = addr("2001:db8::7")
		}
		FullNAT(frame, &p, a, 7, a, 8)
		if verifyChecksums(frame) == nil {
			t.Errorf("proto %d: corrupt packet left with a valid checksum", s.proto)
		}
	}
}
