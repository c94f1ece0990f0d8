package packet

import (
	"encoding/binary"
	"github.com/govs/govs/lvs"
	"testing"
)

// unfinish turns the complete TCP or UDP checksum of frame into what a
// sender with transmit checksum offload hands over (CHECKSUM_PARTIAL): the
// folded pseudo-header sum, not complemented. It uses the plain reference
// sums of helpers_test.go, not csum.go.
func unfinish(tb testing.TB, frame []byte) {
	tb.Helper()
	p := mustParse(tb, frame)
	field := 16
	if p.Proto == lvs.ProtoUDP {
		field = 6
	}
	ip := frame[p.L3Off:]
	var src, dst []byte
	if p.Family == 4 {
		src, dst = ip[12:16], ip[16:20]
	} else {
		src, dst = ip[8:24], ip[24:40]
	}
	n := p.L3Off + p.L3Len - p.L4Off
	binary.BigEndian.PutUint16(frame[p.L4Off+field:], refFold(refPseudo(src, dst, p.Proto, n)))
}

// TestFinishL4Checksum: an unfinished checksum comes out complete after
// every rewrite (NAT, full-NAT both ways; DR, which rewrites nothing in L3
// and L4; TUN, which encapsulates), IPv4 and IPv6, TCP and UDP, VLANs,
// options and padding included. gopacket builds the expected frames.
func TestFinishL4Checksum(t *testing.T) {
	n := 0
	for _, c := range rewriteCases() {
		if c.in.proto != lvs.ProtoTCP && c.in.proto != lvs.ProtoUDP || c.in.zeroUDPCsum {
			continue
		}
		n++
		t.Run(c.name, func(t *testing.T) {
			frame := build(t, c.in)
			unfinish(t, frame)
			if verifyChecksums(frame) == nil {
				t.Fatal("test setup: the unfinished frame verifies")
			}
			p := mustParse(t, frame)
			if !FinishL4Checksum(frame, &p) {
				t.Fatal("FinishL4Checksum: not recognised as unfinished")
			}
			if d := diff(frame, build(t, c.in)); d != "" {
				t.Fatalf("finished frame: %s", d)
			}
			if FinishL4Checksum(frame, &p) {
				t.Fatal("a finished checksum was finished again")
			}
			c.do(frame, &p)
			if d := diff(frame, build(t, c.want)); d != "" {
				t.Fatalf("%s", d)
			}
		})
	}
	if n == 0 {
		t.Fatal("no case")
	}
	// DR and TUN: the real server receives the frame as it is (TUN: inside
	// an outer header), so finishing alone must make it right.
	for _, s := range parseSpecs() {
		if s.proto != lvs.ProtoTCP && s.proto != lvs.ProtoUDP || s.vlans > 0 {
			continue
		}
		t.Run("tun/"+specName(s), func(t *testing.T) {
			orig := build(t, s)
			const headroom = 64
			chunk := make([]byte, 2048)
			copy(chunk[headroom:], orig)
			frame := chunk[headroom : headroom+len(orig)]
			unfinish(t, frame)
			p := mustParse(t, frame)
			if !FinishL4Checksum(frame, &p) {
				t.Fatal("not recognised as unfinished")
			}
			outer := "198.18.9.1"
			rs := "198.18.9.2"
			if p.Family == 6 {
				outer, rs = "2001:db8:9::1", "2001:db8:9::2"
			}
			off, n, err := Encap(chunk, headroom, len(frame), &p, addr(outer), addr(rs), 7)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyChecksums(chunk[off : off+n]); err != nil {
				t.Fatalf("encapsulated: %v", err)
			}
		})
	}
}

// TestFinishL4ChecksumLeavesAlone: complete checksums, an IPv4 UDP
// checksum of 0, fragments and other protocols are not touched.
func TestFinishL4ChecksumLeavesAlone(t *testing.T) {
	for _, s := range parseSpecs() {
		frame := build(t, s)
		want := append([]byte(nil), frame...)
		p := mustParse(t, frame)
		if FinishL4Checksum(frame, &p) {
			t.Errorf("%s: complete checksum reported unfinished", specName(s))
		}
		if d := diff(frame, want); d != "" {
			t.Errorf("%s: %s", specName(s), d)
		}
	}
	z := spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1000, dport: 53, payload: []byte("q"), zeroUDPCsum: true}
	frame := build(t, z)
	p := mustParse(t, frame)
	if FinishL4Checksum(frame, &p) || frame[p.L4Off+6] != 0 || frame[p.L4Off+7] != 0 {
		t.Error("IPv4 UDP checksum 0 changed")
	}
	// A first fragment: the checksum covers the whole datagram.
	frame = build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 1, dport: 2, tcpFlags: 0x10, payload: []byte("abcd")})
	unfinish(t, frame)
	p = mustParse(t, frame)
	p.Frag = FragFirst
	before := append([]byte(nil), frame...)
	if FinishL4Checksum(frame, &p) || diff(frame, before) != "" {
		t.Error("a first fragment was finished")
	}
}

// TestFinishL4ChecksumByChance: a complete checksum that equals the folded
// pseudo-header sum is indistinguishable from an unfinished one; finishing
// it recomputes the same value.
func TestFinishL4ChecksumByChance(t *testing.T) {
	for _, fam := range [][2]string{{"198.18.0.1", "198.18.0.2"}, {"2001:db8::1", "2001:db8::2"}} {
		for _, proto := range []lvs.Proto{lvs.ProtoTCP, lvs.ProtoUDP} {
			s := spec{src: fam[0], dst: fam[1], proto: proto, sport: 1000, dport: 2000, tcpFlags: 0x10, payload: []byte{0, 0, 0, 0}}
			frame := build(t, s)
			p := mustParse(t, frame)
			field := 16
			if proto == lvs.ProtoUDP {
				field = 6
			}
			ip := frame[p.L3Off:]
			src, dst := ip[12:16], ip[16:20]
			if p.Family == 6 {
				src, dst = ip[8:24], ip[24:40]
			}
			n := p.L3Off + p.L3Len - p.L4Off
			pseudo := refFold(refPseudo(src, dst, proto, n))
			cur := binary.BigEndian.Uint16(frame[p.L4Off+field:])
			// Choose the last payload word so that the complete checksum
			// becomes pseudo: the sum must move by ~pseudo - ~cur.
			delta := refFold(uint32(^pseudo) + uint32(cur))
			s.payload = []byte{0, 0, byte(delta >> 8), byte(delta)}
			frame = build(t, s)
			p = mustParse(t, frame)
			if got := binary.BigEndian.Uint16(frame[p.L4Off+field:]); got != pseudo {
				t.Fatalf("test setup: checksum %#x, want %#x", got, pseudo)
			}
			want := append([]byte(nil), frame...)
			if !FinishL4Checksum(frame, &p) {
				t.Fatalf("%s/%d: not recognised", fam[0], proto)
			}
			if d := diff(frame, want); d != "" {
				t.Fatalf("%s/%d: %s", fam[0], proto, d)
			}
		}
	}
}
