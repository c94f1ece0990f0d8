package bpf

import (
	"testing"
	"time"
)

// BenchmarkFastPath measures the steering program per packet and mode, as
// the kernel times one BPF_PROG_TEST_RUN (ns/pkt-prog, the program alone:
// no driver, no redirect), against the packet it steers to the workers.
// On veth the benchmark topology's noise hides differences this small;
// here every mode runs the same code on the same CPU.
func BenchmarkFastPath(b *testing.B) {
	s := newFastSteering(b)
	var cases []fastCase
	for _, c := range matrixCases() {
		switch c.name {
		case "nat in udp4", "nat out udp4", "full-nat in udp4", "dr udp4", "tun udp4", "nat in udp6", "tun udp6",
			"nat in tcp4", "nat out tcp4":
			cases = append(cases, c)
		}
	}
	// A SYN-proxied connection's flows (sequence translation) against the
	// plain TCP ones above.
	for _, c := range seqAdjCases() {
		switch c.name {
		case "seq-adj nat in tcp4", "seq-adj nat out window shift 3 tcp4":
			cases = append(cases, c)
		}
	}
	run := func(b *testing.B, frame []byte, want uint32) {
		var total time.Duration
		for b.Loop() {
			action, d, err := s.Program().Benchmark(frame, 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			if action != want {
				b.Fatalf("action %d, want %d", action, want)
			}
			total += d
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt-prog")
	}
	b.Run("steered to the workers tcp4", func(b *testing.B) {
		in := matrixCases()[0].pkt.frame(b) // no flow entry
		run(b, in, xdpDrop)
	})
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := c.pkt.frame(b)
			f := c.pkt.flow(b)
			a := c.spec.action(b, in, uint32(i+1))
			if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
				b.Fatal(err)
			}
			defer s.DeleteFlow(nil, f)
			want := uint32(xdpRedirect)
			run(b, in, want)
		})
	}
}
