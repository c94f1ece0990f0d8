package bpf

import (
	"net"
	"net/netip"
	"testing"

	"github.com/govs/govs/inet"
)

// flowOpsCase is the key and action of a NAT flow from client src to
// vip:80, to real server real:8080 through the loopback device.
func flowOpsCase(t testing.TB, src, vip, real string) (Flow, FlowAction) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	a := FlowAction{Op: FlowSetDst, Dst: inet.AddrFromNetip(netip.MustParseAddr(real)), DstPort: 8080, Ifindex: lo.Index}
	f := Flow{Src: inet.AddrFromNetip(netip.MustParseAddr(src)), Dst: inet.AddrFromNetip(netip.MustParseAddr(vip)),
		SrcPort: 40000, DstPort: 80, Proto: 6}
	return f, a
}

// TestFlowCallsAllocateNothing: a worker's flow-map calls through its
// FlowBuf (write an entry, read its last-seen stamp, delete it: what a
// connection that gets the fast path costs) allocate nothing, for IPv4
// (flows4) and IPv6 (flows) flows alike.
func TestFlowCallsAllocateNothing(t *testing.T) {
	s := newTestSteering(t)
	for _, c := range [][3]string{{"198.18.0.1", "198.18.0.100", "198.18.1.1"}, {"2001:db8::1", "2001:db8::100", "2001:db8:1::1"}} {
		src := c[0]
		f, a := flowOpsCase(t, c[0], c[1], c[2])
		gen := s.FlowGeneration()
		var buf FlowBuf
		allocs := testing.AllocsPerRun(200, func() {
			if err := s.InstallFlow(&buf, f, &a, gen); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.FlowLastSeen(&buf, f); !ok {
				t.Fatal("FlowLastSeen: no entry after InstallFlow")
			}
			if err := s.DeleteFlow(&buf, f); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: install, last seen and delete allocate %v times, want 0", src, allocs)
		}
		if s.FlowCurrent(f) {
			t.Errorf("%s: entry left after DeleteFlow", src)
		}
	}
}

// BenchmarkFlowInstallDelete: what a worker pays in system calls for a
// connection's flow entry: one write and one delete (a NAT or full-NAT
// connection has two entries, one per direction).
func BenchmarkFlowInstallDelete(b *testing.B) {
	s := newTestSteering(b)
	f, a := flowOpsCase(b, "198.18.0.1", "198.18.0.100", "198.18.1.1")
	gen := s.FlowGeneration()
	var buf FlowBuf
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.SrcPort = uint16(i)
		if err := s.InstallFlow(&buf, f, &a, gen); err != nil {
			b.Fatal(err)
		}
		if err := s.DeleteFlow(&buf, f); err != nil {
			b.Fatal(err)
		}
	}
}
