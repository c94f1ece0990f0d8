package bpf

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/sched"
)

// spreadMAC is the next-hop MAC the test gives real server id.
func spreadMAC(id uint32) [6]byte { return [6]byte{0x02, 0, 0, 0, 0x10, byte(id)} }

// spreadTable fills a Maglev table with real servers 1 to n in turn.
func spreadTable(n int) []uint32 {
	t := make([]uint32, SpreadTableSize)
	for i := range t {
		t[i] = uint32(i%n) + 1 + 1 // id + 1
	}
	return t
}

// TestSpreadTableSize: the program's tables have the slots of the
// scheduler's Maglev table, which govsd copies there slot for slot.
func TestSpreadTableSize(t *testing.T) {
	if SpreadTableSize != sched.MaglevTableSize {
		t.Fatalf("SpreadTableSize %d, sched.MaglevTableSize %d", SpreadTableSize, sched.MaglevTableSize)
	}
}

// TestSynSpread checks that SYNs over the SYN budget to a service with a
// Maglev table are forwarded to the real server of the client's slot, as
// sched's mh hashes it (address; address and port with mh-port): DR
// rewrites the MACs and decrements the TTL (IPv4), TUN encapsulates
// (IPv6); and that they are dropped as before when the slot's server takes
// none or the service has no table.
func TestSynSpread(t *testing.T) {
	requireRoot(t)
	onOneCPU(t)
	s := newTestSteering(t)
	// No socket is registered: a SYN the budget admits is dropped (redirect_failed) and run again.
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for id := uint32(1); id <= n; id++ {
		if err := s.SetSpreadDest(&FlowAction{Op: FlowForward, DstMAC: spreadMAC(id), SrcMAC: [6]byte(testDstMAC),
			Ifindex: lo.Index, DestID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Real servers 11 to 15 are TUN ones, for the IPv6 service.
	tunSrc, tunDst := inet.AddrFromNetip(mustAddr(t, director6)), inet.AddrFromNetip(mustAddr(t, real6))
	for id := uint32(11); id < 11+n; id++ {
		if err := s.SetSpreadDest(&FlowAction{Op: FlowEncap, Src: tunSrc, Dst: tunDst, DstMAC: spreadMAC(id),
			SrcMAC: [6]byte(testDstMAC), Ifindex: lo.Index, DestID: id, MaxL3Len: 1400}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSpreadTable(0, spreadTable(n)); err != nil {
		t.Fatal(err)
	}
	t6 := spreadTable(n)
	for i := range t6 {
		t6[i] += 10
	}
	if err := s.SetSpreadTable(1, t6); err != nil {
		t.Fatal(err)
	}
	// vip4:80 is service 1, vip6:443 service 5 (configureTestSteering).
	if err := s.SetSpreadService(1, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSpreadService(5, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSynLimit(1, 1); err != nil {
		t.Fatal(err)
	}

	// over runs a SYN that the budget does not admit: the first of a
	// second may be admitted (steered), and is run again.
	overFrame := func(frame []byte) (uint32, []byte, Counters) {
		t.Helper()
		for {
			action, out, delta, _ := runSyn(t, s, frame)
			if delta.SteeredVIP == 0 {
				return action, out, delta
			}
		}
	}
	over := func(sy syn) (uint32, []byte, Counters) { t.Helper(); return overFrame(sy.frame()) }
	wantDest := func(sy syn, hashPort bool, base uint32) uint32 {
		a := inet.AddrFromNetip(netip.MustParseAddr(sy.src))
		var port uint16
		if hashPort {
			port = sy.sport
		}
		return uint32(sched.MaglevSlot(&a, port)%n) + 1 + base
	}

	seen := map[uint32]bool{}
	for i := range 40 {
		sy := syn{src: fmt.Sprintf("198.18.1.%d", i+1), dst: vip4, sport: 1000, dport: 80, isn: 7}
		in := sy.frame()
		action, out, delta := over(sy)
		want := wantDest(sy, false, 0)
		seen[want] = true
		if action != actRedirect || delta != (Counters{SynSpread: 1}) {
			t.Fatalf("SYN from %s: action %d, counters %+v; want a redirect, syn_spread", sy.src, action, delta)
		}
		out = out[:len(in)]
		if mac := spreadMAC(want); !bytes.Equal(out[0:6], mac[:]) || !bytes.Equal(out[6:12], testDstMAC) {
			t.Fatalf("SYN from %s: MACs %x > %x, want real server %d's %x", sy.src, out[6:12], out[0:6], want, mac)
		}
		p := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil || ip.TTL != in[14+8]-1 || !bytes.Equal(out[14+20:], in[14+20:]) {
			t.Fatalf("SYN from %s: %v; want the same SYN with TTL %d", sy.src, p, in[14+8]-1)
		}
		check := ip.Checksum
		ip.Checksum = 0
		buf := gopacket.NewSerializeBuffer()
		ip.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true})
		if got := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4).Checksum; got != check {
			t.Fatalf("SYN from %s: IPv4 checksum %#x, want %#x", sy.src, check, got)
		}
	}
	if len(seen) != n {
		t.Errorf("40 clients went to %d real servers, want all %d", len(seen), n)
	}

	// mh-port: the port moves a client between slots (IPv6, TUN).
	seen = map[uint32]bool{}
	for i := range 40 {
		sy := syn{src: client6, dst: vip6, sport: uint16(2000 + i), dport: 443, isn: 7}
		in := sy.frame()
		action, out, delta := over(sy)
		want := wantDest(sy, true, 10)
		seen[want] = true
		if action != actRedirect || delta != (Counters{SynSpread: 1}) {
			t.Fatalf("SYN from port %d: action %d, counters %+v; want a redirect, syn_spread", sy.sport, action, delta)
		}
		out = out[:len(in)+40]
		p := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
		outer, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		mac := spreadMAC(want)
		if outer == nil || outer.NextHeader != layers.IPProtocolIPv6 || !outer.DstIP.Equal(net.ParseIP(real6)) ||
			!bytes.Equal(out[0:6], mac[:]) || !bytes.Equal(out[14+40+40:], in[14+40:]) {
			t.Fatalf("SYN from port %d: %v; want it in IPv6 to %s through real server %d's MAC", sy.sport, p, real6, want)
		}
	}
	if len(seen) < 2 {
		t.Errorf("40 ports of one client went to %d real servers, want them spread", len(seen))
	}

	// A SYN whose sender left its checksum to the offload (a container's
	// veth) leaves with it finished: the real server checks it.
	for _, sy := range []syn{
		{src: "198.18.1.77", dst: vip4, sport: 1000, dport: 80, isn: 9},
		{src: client6, dst: vip6, sport: 3000, dport: 443, isn: 9},
	} {
		complete := sy.frame()
		in := unfinished(t, complete)
		if bytes.Equal(in, complete) {
			continue // the pseudo-header sum is the checksum by chance
		}
		action, out, delta := overFrame(in)
		if action != actRedirect || delta != (Counters{SynSpread: 1, FastCsumFinished: 1}) {
			t.Fatalf("unfinished SYN from %s: action %d, counters %+v; want spread, its checksum finished", sy.src, action, delta)
		}
		// The TCP header (20 bytes: no options), past the IPv4 header,
		// or the outer and inner IPv6 headers (TUN).
		at, outAt := 14+20, 14+20
		if sy.dst == vip6 {
			at, outAt = 14+40, 14+40+40
		}
		if got, want := out[outAt:outAt+20], complete[at:at+20]; !bytes.Equal(got, want) {
			t.Errorf("unfinished SYN from %s: TCP header %x, want %x (checksum finished)", sy.src, got, want)
		}
	}

	// A real server that takes no SYNs: its clients' SYNs are dropped.
	sy := syn{src: "198.18.1.1", dst: vip4, sport: 1000, dport: 80, isn: 7}
	gone := wantDest(sy, false, 0)
	if err := s.DelSpreadDest(gone); err != nil {
		t.Fatal(err)
	}
	if action, _, delta := over(sy); action != actDrop || delta != (Counters{SynThrottled: 1}) {
		t.Errorf("SYN to a real server without an entry: action %d, counters %+v; want a drop, syn_throttled", action, delta)
	}
	// A service without a table: as before.
	if err := s.DelSpreadService(1); err != nil {
		t.Fatal(err)
	}
	if err := s.DelSpreadService(1); err != nil {
		t.Errorf("deleting it again: %v", err)
	}
	sy.src = "198.18.1.2"
	if action, _, delta := over(sy); action != actDrop || delta != (Counters{SynThrottled: 1}) {
		t.Errorf("SYN to a service without a table: action %d, counters %+v; want a drop, syn_throttled", action, delta)
	}
	if err := s.SetSpreadTable(SpreadServices, spreadTable(1)); err == nil {
		t.Error("a table out of range was accepted")
	}
	if err := s.SetSpreadDest(&FlowAction{Op: FlowSetDst, Ifindex: lo.Index, DestID: 1}); err == nil {
		t.Error("a NAT action was accepted")
	}
}
