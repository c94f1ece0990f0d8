package packet

import (
	"testing"

	"github.com/govs/govs/lvs"
)

func benchFrame(b *testing.B, v6 bool) ([]byte, Parsed) {
	s := spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoTCP, sport: 40000, dport: 80, tcpFlags: 0x10, payload: make([]byte, 1400), vlans: 1}
	if v6 {
		s.src, s.dst = "2001:db8::1", "2001:db8::2"
	}
	f := build(b, s)
	return f, mustParse(b, f)
}

func forFamilies(b *testing.B, fn func(b *testing.B, v6 bool)) {
	b.Run("v4", func(b *testing.B) { fn(b, false) })
	b.Run("v6", func(b *testing.B) { fn(b, true) })
}

func BenchmarkParse(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		f, _ := benchFrame(b, v6)
		var p Parsed
		b.ReportAllocs()
		for b.Loop() {
			_ = Parse(f, &p)
		}
	})
}

func BenchmarkDNAT(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		f, p := benchFrame(b, v6)
		a := p.Dst
		a[15]++
		b.ReportAllocs()
		for b.Loop() {
			DNAT(f, &p, a, 8080)
		}
	})
}

func BenchmarkSNAT(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		f, p := benchFrame(b, v6)
		a := p.Src
		a[15]++
		b.ReportAllocs()
		for b.Loop() {
			SNAT(f, &p, a, 8080)
		}
	})
}

func BenchmarkFullNAT(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		f, p := benchFrame(b, v6)
		s, d := p.Src, p.Dst
		s[15]++
		d[15]++
		b.ReportAllocs()
		for b.Loop() {
			FullNAT(f, &p, s, 5000, d, 8080)
		}
	})
}

func BenchmarkSetMACs(b *testing.B) {
	f, _ := benchFrame(b, false)
	b.ReportAllocs()
	for b.Loop() {
		SetMACs(f, [6]byte{1, 2, 3, 4, 5, 6}, [6]byte{7, 8, 9, 10, 11, 12})
	}
}

// BenchmarkParseDNAT is the common per-packet path: parse, rewrite, MACs.
func BenchmarkParseDNAT(b *testing.B) {
	forFamilies(b, func(b *testing.B, v6 bool) {
		f, p := benchFrame(b, v6)
		a := p.Dst
		a[15]++
		b.ReportAllocs()
		for b.Loop() {
			_ = Parse(f, &p)
			DNAT(f, &p, a, 8080)
			SetMACs(f, [6]byte{1}, [6]byte{2})
		}
	})
}
