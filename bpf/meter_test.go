package bpf

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"
)

const xdpDrop = 1

// newMeterSteering is newTestSteering with the steering meter of slot 0
// (lo's base, RX queue 0 under BPF_PROG_TEST_RUN) at rate pps and burst
// packets, and UDP real servers for reply flows.
func newMeterSteering(t *testing.T, pps, burst uint64) *Steering {
	t.Helper()
	s := newTestSteering(t)
	for _, e := range []Endpoint{endpoint(t, real4, rportU, udp), endpoint(t, real6, rportU, udp)} {
		if err := s.AddReal(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSteerLimit(0, pps, burst); err != nil {
		t.Fatal(err)
	}
	return s
}

func meterOf(t *testing.T, s *Steering) SteerMeter {
	t.Helper()
	m, err := s.SteerMeter(0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runN runs frame n times and returns how many were steered (then dropped
// for want of a socket: RedirectFailed) and dropped by the meter
// (SteerMetered), with the counters' delta.
func runN(t *testing.T, s *Steering, frame []byte, n int) (steered, dropped int, delta Counters) {
	t.Helper()
	before, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		action, out, d := runOut(t, s, frame)
		switch {
		case action == xdpDrop && d.RedirectFailed == 1:
			steered++
			if !bytes.Equal(out, frame) {
				t.Errorf("steered frame was modified: %s", diffBytes(out, frame))
			}
		case action == xdpDrop && d.SteerMetered == 1:
			dropped++
		default:
			t.Fatalf("action %d, counters moved by %+v", action, d)
		}
	}
	after, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return steered, dropped, subCounters(after, before)
}

// TestSteerMeterDrops: new flows' packets over the queue's rate are dropped
// and counted, the bucket's burst passes first; replies are metered too.
func TestSteerMeterDrops(t *testing.T) {
	// 1 packet/s: no token comes back while the test runs.
	s := newMeterSteering(t, 1, 5)
	steered, dropped, d := runN(t, s, ack4.frame(t), 8)
	if steered != 5 || dropped != 3 {
		t.Errorf("steered %d, dropped %d; want the burst (5) steered and 3 dropped", steered, dropped)
	}
	if want := (Counters{SteeredVIP: 5, RedirectFailed: 5, SteerMetered: 3}); d != want {
		t.Errorf("counters moved by %+v, want %+v", d, want)
	}
	if m := meterOf(t, s); m.Admitted != 5 || m.Dropped != 3 || m.Rate != 1 || m.Burst != 5 {
		t.Errorf("meter %+v, want 5 admitted, 3 dropped, rate 1, burst 5", m)
	}
	// The bucket is per queue, not per flow or direction.
	for _, p := range []fpkt{reply4, udp6, reply4U} {
		_, dropped, d := runN(t, s, p.frame(t), 1)
		if dropped != 1 || d != (Counters{SteerMetered: 1}) {
			t.Errorf("%s -> %s: dropped %d, counters %+v; want metered", p.src, p.dst, dropped, d)
		}
	}
	// Another queue's slot has its own bucket: unlimited.
	if m, err := s.SteerMeter(1); err != nil || m.Rate != 0 || m.Admitted != 0 {
		t.Errorf("slot 1: %+v, %v", m, err)
	}
}

// TestSteerMeterKnownFlows: the packets of flows the workers know (a flow
// entry of the current generation, steer-only or with the fast path off)
// go to the workers past an empty bucket; a stale entry does not count.
func TestSteerMeterKnownFlows(t *testing.T) {
	s := newMeterSteering(t, 1, 1)
	if _, dropped, _ := runN(t, s, udp4.frame(t), 2); dropped != 1 {
		t.Fatalf("emptying the bucket: dropped %d of 2", dropped)
	}
	install := func(t *testing.T, p fpkt, fs flowSpec, steerOnly bool) {
		t.Helper()
		in := p.frame(t)
		a := fs.action(t, in, 9)
		a.SteerOnly = steerOnly
		if err := s.InstallFlow(nil, p.flow(t), &a, s.FlowGeneration()); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name      string
		pkt       fpkt
		spec      flowSpec
		steerOnly bool
		fastPath  bool
		want      Counters
	}{
		{"steer-only tcp4", ack4, dnat4, true, false, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"steer-only tcp4 fast path on", ack4, dnat4, true, true, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"steer-only tcp6 fin", ack6.with(func(p *fpkt) { p.flags = tcpFIN | tcpACK }), dnat6, true, true, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"steer-only reply tcp4", reply4, snat4, true, true, Counters{SteeredReply: 1, RedirectFailed: 1}},
		{"steer-only udp6", udp6, tun6, true, false, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"forwarding entry, fast path off", ack4, dnat4, false, false, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"forwarding entry, ttl 1", ack4.with(func(p *fpkt) { p.ttl = 1 }), dnat4, false, true, Counters{SteeredVIP: 1, RedirectFailed: 1}},
		{"forwarding reply, rst", reply4.with(func(p *fpkt) { p.flags = tcpRST }), snat4, false, true, Counters{SteeredReply: 1, RedirectFailed: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.SetFastPath(c.fastPath); err != nil {
				t.Fatal(err)
			}
			install(t, c.pkt, c.spec, c.steerOnly)
			defer s.DeleteFlow(nil, c.pkt.flow(t))
			before := meterOf(t, s)
			steered, _, d := runN(t, s, c.pkt.frame(t), 3)
			if steered != 3 || d != (Counters{SteeredVIP: 3 * c.want.SteeredVIP, SteeredReply: 3 * c.want.SteeredReply, RedirectFailed: 3}) {
				t.Errorf("steered %d of 3, counters %+v; want all steered as %+v each", steered, d, c.want)
			}
			if m := meterOf(t, s); m != before {
				t.Errorf("the meter moved: %+v -> %+v", before, m)
			}
		})
	}
	// A stale entry (an older generation) is no known flow; nor is a
	// VLAN-tagged frame (no fast-path lookup) or a SYN of a known flow.
	if err := s.SetFastPath(false); err != nil {
		t.Fatal(err)
	}
	gen := s.FlowGeneration()
	install(t, ack4, dnat4, true)
	if _, err := s.InvalidateFlows(); err != nil {
		t.Fatal(err)
	}
	if _, dropped, _ := runN(t, s, ack4.frame(t), 1); dropped != 1 {
		t.Errorf("stale steer-only entry (generation %d): not metered", gen)
	}
	install(t, ack4, dnat4, true)
	for _, p := range []fpkt{ack4.with(func(p *fpkt) { p.vlans = []uint16{10} }), ack4.with(func(p *fpkt) { p.flags = tcpSYN })} {
		if _, dropped, d := runN(t, s, p.frame(t), 1); dropped != 1 || d != (Counters{SteerMetered: 1}) {
			t.Errorf("vlans %v flags %#x: dropped %d, counters %+v; want metered", p.vlans, p.flags, dropped, d)
		}
	}
}

// TestSteerMeterExempt: SYNs the SYN budget admitted and ICMP errors pass
// an empty bucket; without a SYN budget, SYNs are metered like the rest.
func TestSteerMeterExempt(t *testing.T) {
	s := newMeterSteering(t, 1, 1)
	if _, dropped, _ := runN(t, s, udp4.frame(t), 2); dropped != 1 {
		t.Fatalf("emptying the bucket: dropped %d of 2", dropped)
	}
	synFrame := pkt{src: client4, dst: vip4, proto: tcp, sport: 40001, dport: 80}.frame(t) // pkt sends SYNs
	if err := s.SetSynLimit(1_000_000, 1000); err != nil {
		t.Fatal(err)
	}
	if steered, _, d := runN(t, s, synFrame, 3); steered != 3 || d != (Counters{SteeredVIP: 3, RedirectFailed: 3}) {
		t.Errorf("SYNs within the SYN budget: steered %d of 3, counters %+v", steered, d)
	}
	icmp := pkt{src: router4, dst: vip4, proto: layers.IPProtocolICMPv4, icmpType: 3, icmpCode: 4,
		embedded: &pkt{src: vip4, dst: client4, proto: tcp, sport: 80, dport: 40000}}.frame(t)
	if steered, _, d := runN(t, s, icmp, 3); steered != 3 || d != (Counters{SteeredICMP: 3, RedirectFailed: 3}) {
		t.Errorf("ICMP errors: steered %d of 3, counters %+v", steered, d)
	}
	if err := s.SetSynLimit(0, 0); err != nil {
		t.Fatal(err)
	}
	if _, dropped, d := runN(t, s, synFrame, 1); dropped != 1 || d != (Counters{SteerMetered: 1}) {
		t.Errorf("SYN without a SYN budget: dropped %d, counters %+v; want metered", dropped, d)
	}
}

// TestSteerMeterUnlimited: rate 0 passes everything and still counts what
// it admitted (the control loop's measure of the queue's load).
func TestSteerMeterUnlimited(t *testing.T) {
	s := newMeterSteering(t, 1, 1)
	if err := s.SetSteerLimit(0, 0, 0); err != nil {
		t.Fatal(err)
	}
	steered, _, d := runN(t, s, ack4.frame(t), 50)
	if steered != 50 || d != (Counters{SteeredVIP: 50, RedirectFailed: 50}) {
		t.Errorf("unlimited: steered %d of 50, counters %+v", steered, d)
	}
	if m := meterOf(t, s); m.Admitted != 50 || m.Dropped != 0 || m.Rate != 0 {
		t.Errorf("meter %+v, want 50 admitted", m)
	}
	// Burst 0 is a hundredth of a second's worth, at least 64.
	for pps, burst := range map[uint64]uint64{1000: 64, 1_000_000: 10_000} {
		if err := s.SetSteerLimit(0, pps, 0); err != nil {
			t.Fatal(err)
		}
		if m := meterOf(t, s); m.Burst != burst {
			t.Errorf("rate %d: burst %d, want %d", pps, m.Burst, burst)
		}
	}
	if err := s.SetSteerLimit(XSKSlots, 1, 1); err == nil {
		t.Error("a slot past the map was accepted")
	}
	if err := s.SetSteerLimit(0, MaxSteerLimit+1, 0); err == nil {
		t.Error("a rate above 2^30 was accepted")
	}
}
