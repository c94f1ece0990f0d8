package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/lvs"
)

// unfinished returns frame with its TCP or UDP checksum as a sender with
// transmit checksum offload leaves it (CHECKSUM_PARTIAL): the folded
// pseudo-header sum, not complemented. The sum is onesSum's, not csum.h's
// nor package packet's.
func unfinished(t testing.TB, frame []byte) []byte {
	t.Helper()
	out := bytes.Clone(frame)
	var p packet.Parsed
	if err := packet.Parse(out, &p); err != nil {
		t.Fatal(err)
	}
	field := 16
	if p.Proto == lvs.ProtoUDP {
		field = 6
	}
	ip := out[p.L3Off:]
	var addrs []byte
	if p.Family == 4 {
		addrs = ip[12:20]
	} else {
		addrs = ip[8:40]
	}
	n := p.L3Off + p.L3Len - p.L4Off
	binary.BigEndian.PutUint16(out[p.L4Off+field:], onesSum(addrs, uint32(p.Proto)+uint32(n)))
	return out
}

// TestFastPathFinishesChecksums: a packet of an established flow whose
// checksum its sender left unfinished leaves the fast path with a complete
// one, in every mode (NAT both ways, full-NAT both ways, DR, TUN, with and
// without sequence translation), IPv4 and IPv6, TCP and UDP, and payloads
// of every length class the program sums in blocks (1 byte to 3000
// bytes). The output is byte for byte the workers' rewrite of the complete
// frame, and the packet counts as fast_csum_finished.
func TestFastPathFinishesChecksums(t *testing.T) {
	s := newFastSteering(t)
	var cases []fastCase
	for _, c := range slices.Concat(matrixCases(), seqAdjCases()) {
		if len(c.pkt.tcpOpts) > 0 && (c.spec.seqAdd != 0 || c.spec.ackAdd != 0) {
			continue // to the workers (SACK blocks)
		}
		cases = append(cases, c)
	}
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 255, 511, 512, 513, 1000, 1460, 3000} {
		for _, c := range matrixCases() {
			c.name = fmt.Sprintf("%s payload %d", c.name, n)
			c.pkt.payload = payloadOf(n)
			cases = append(cases, c)
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			complete := c.pkt.frame(t)
			in := unfinished(t, complete)
			if bytes.Equal(in, complete) {
				t.Skip("the complete checksum is the pseudo-header sum by chance")
			}
			f := c.pkt.flow(t)
			a := c.spec.action(t, complete, uint32(i+1))
			if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.DeleteFlow(nil, f) })

			action, out, delta := runOut(t, s, in)
			if action != xdpRedirect {
				t.Fatalf("action %d, want redirect", action)
			}
			if delta != (Counters{FastForwarded: 1, FastCsumFinished: 1}) {
				t.Errorf("counters moved by %+v, want one fast-forwarded packet with its checksum finished", delta)
			}
			want := oracle(t, complete, &a)
			encap4 := c.spec.op == FlowEncap && f.Src.Is4()
			if encap4 {
				out, want = zeroOuterID(out), zeroOuterID(want)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from the workers' rewrite of the complete frame: %s", diffBytes(out, want))
			}
			if encap4 {
				out = zeroOuterIDKeepSum(t, out)
			}
			verifyDecodes(t, out)

			// A complete checksum is left alone: no finishing counted.
			if _, _, delta = runOut(t, s, complete); delta != (Counters{FastForwarded: 1}) {
				t.Errorf("complete checksum: counters moved by %+v, want one fast-forwarded packet", delta)
			}
		})
	}
}

// BenchmarkFastPathUnfinished: what finishing a checksum costs the program
// per packet (ns/pkt-prog, as BenchmarkFastPath), for a NAT request of a
// full-size TCP segment and of a small UDP datagram, complete against
// unfinished.
func BenchmarkFastPathUnfinished(b *testing.B) {
	s := newFastSteering(b)
	for i, c := range matrixCases() {
		if c.name != "nat in tcp4" && c.name != "nat in udp6" {
			continue
		}
		for _, n := range []int{64, 1460} {
			c.pkt.payload = payloadOf(n)
			complete := c.pkt.frame(b)
			f := c.pkt.flow(b)
			a := c.spec.action(b, complete, uint32(i+1))
			for _, kind := range []string{"complete", "unfinished"} {
				in := complete
				if kind == "unfinished" {
					in = unfinished(b, complete)
				}
				b.Run(fmt.Sprintf("%s %d %s", c.name, n, kind), func(b *testing.B) {
					if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
						b.Fatal(err)
					}
					defer s.DeleteFlow(nil, f)
					var total time.Duration
					for b.Loop() {
						action, d, err := s.Program().Benchmark(in, 1, nil)
						if err != nil || action != xdpRedirect {
							b.Fatalf("action %d, err %v", action, err)
						}
						total += d
					}
					b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt-prog")
				})
			}
		}
	}
}
