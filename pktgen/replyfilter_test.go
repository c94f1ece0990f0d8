package pktgen

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// TestReplyFilter runs the filter over frames with BPF_PROG_TEST_RUN: IPv4
// into the prefix is dropped and counted, everything else passes.
func TestReplyFilter(t *testing.T) {
	requireRoot(t)
	f, err := LoadReplyFilter(netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frame := func(etherType uint16, dst string, size int) []byte {
		b := make([]byte, size)
		b[12], b[13] = byte(etherType>>8), byte(etherType)
		if size >= 34 {
			b[14] = 0x45
			a := netip.MustParseAddr(dst).As4()
			copy(b[30:34], a[:])
		}
		return b
	}
	for _, c := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"into the prefix", frame(0x0800, "198.19.7.9", 64), 1},
		{"first address", frame(0x0800, "198.19.0.0", 64), 1},
		{"last address", frame(0x0800, "198.19.255.255", 64), 1},
		{"the client", frame(0x0800, "198.18.0.1", 64), 2},
		{"next prefix", frame(0x0800, "198.20.0.1", 64), 2},
		{"same low bytes", frame(0x0800, "10.19.0.1", 64), 2},
		{"not IPv4", frame(0x86dd, "198.19.7.9", 64), 2},
		{"too short", frame(0x0800, "198.19.7.9", 33), 2},
	} {
		got, err := f.Program().Run(&ebpf.RunOptions{Data: c.frame})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
	if n, err := f.Dropped(); err != nil || n != 3 {
		t.Errorf("Dropped() = %d, %v; want 3", n, err)
	}
	if _, err := LoadReplyFilter(netip.MustParsePrefix("2001:db8::/32")); err == nil {
		t.Error("an IPv6 prefix was accepted")
	}
}
