package bpf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
)

func newTestDecap(t *testing.T) *Decap {
	t.Helper()
	requireRoot(t)
	d, err := LoadDecap()
	if err != nil {
		t.Fatalf("LoadDecap: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, vip := range []string{vip4, vip6} {
		if err := d.AddVIP(inet.AddrFromNetip(mustAddr(t, vip))); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// runDecap runs the program on frame and returns its action, the frame it
// left and what it added to the counters.
func runDecap(t *testing.T, d *Decap, frame []byte) (uint32, []byte, DecapCounters) {
	t.Helper()
	before, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	action, err := d.Program().Run(&opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	delta := DecapCounters{
		Decapsulated: after.Decapsulated - before.Decapsulated,
		NotOurs:      after.NotOurs - before.NotOurs,
		Malformed:    after.Malformed - before.Malformed,
		Fragmented:   after.Fragmented - before.Fragmented,
		AdjustFailed: after.AdjustFailed - before.AdjustFailed,
	}
	return action, opts.DataOut, delta
}

// Inner packets, with payloads that keep every frame above the 60-byte
// Ethernet minimum, so no padding differs between input and expectation.
var (
	inner4      = pkt{src: client4, dst: vip4, proto: tcp, sport: 40000, dport: 80, payload: payloadOf(20)}
	inner6      = pkt{src: client6, dst: vip6, proto: udp, sport: 40000, dport: 53, payload: payloadOf(20)}
	inner4Other = pkt{src: client4, dst: other4, proto: tcp, sport: 40000, dport: 80, payload: payloadOf(20)}
	inner6Other = pkt{src: client6, dst: other6, proto: tcp, sport: 40000, dport: 80, payload: payloadOf(20)}
)

// tunnel wraps inner in an outer header from the director to the real
// server of the given family.
func tunnel(t testing.TB, outer pkt, inner pkt) pkt {
	ipBytes, _ := inner.ip(t)
	outer.payload = ipBytes
	if mustAddr(t, inner.src).Is4() {
		outer.proto = layers.IPProtocolIPv4
	} else {
		outer.proto = layers.IPProtocolIPv6
	}
	return outer
}

var (
	outer4 = pkt{src: director4, dst: real4}
	outer6 = pkt{src: director6, dst: real6}
)

func TestDecapStripsOuterHeader(t *testing.T) {
	d := newTestDecap(t)
	withOptions := outer4
	withOptions.v4Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	withEncapLimit := outer6
	withEncapLimit.v6Ext = []uint8{extDstOpts}
	qinq := outer4
	qinq.vlans = []uint16{100, 10}
	dot1q := outer6
	dot1q.vlans = []uint16{10}

	cases := []struct {
		name  string
		outer pkt
		inner pkt
	}{
		{"ipv4 in ipv4", outer4, inner4},
		{"ipv6 in ipv6", outer6, inner6},
		{"ipv6 in ipv4", outer4, inner6},
		{"ipv4 in ipv6", outer6, inner4},
		{"ipv4 in ipv4 with options", withOptions, inner4},
		{"ipv6 in ipv6 with encapsulation limit", withEncapLimit, inner6},
		{"ipv4 in ipv4 802.1ad", qinq, inner4},
		{"ipv6 in ipv6 802.1Q", dot1q, inner6},
		{"ipv4 in ipv6 802.1Q", dot1q, inner4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tunnel(t, tc.outer, tc.inner).frame(t)
			innerIP, _ := tc.inner.ip(t)
			etherType := layers.EthernetTypeIPv4
			if !mustAddr(t, tc.inner.src).Is4() {
				etherType = layers.EthernetTypeIPv6
			}
			want := ethFrame(t, tc.outer.vlans, etherType, innerIP)

			action, out, delta := runDecap(t, d, in)
			if action != xdpPass {
				t.Errorf("action %d, want XDP_PASS", action)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output frame\n got %x\nwant %x", out, want)
			}
			if delta != (DecapCounters{Decapsulated: 1}) {
				t.Errorf("counters moved by %+v, want one decapsulated", delta)
			}
		})
	}
}

func TestDecapPassesOtherTraffic(t *testing.T) {
	d := newTestDecap(t)
	fragmented := tunnel(t, outer4, inner4)
	fragmented.v4Flags = layers.IPv4MoreFragments
	fragmented6 := tunnel(t, outer6, inner6)
	fragmented6.v6Ext = []uint8{extFragment}
	fragmented6.moreFrags = true
	gre := outer4
	gre.proto = layers.IPProtocolGRE
	gre.payload = payloadOf(60)

	cases := []struct {
		name  string
		frame func(testing.TB) []byte
		want  DecapCounters
	}{
		{"ipv4 in ipv4 to other address", tunnel(t, outer4, inner4Other).frame, DecapCounters{NotOurs: 1}},
		{"ipv6 in ipv6 to other address", tunnel(t, outer6, inner6Other).frame, DecapCounters{NotOurs: 1}},
		{"plain tcp to vip", inner4.frame, DecapCounters{NotOurs: 1}},
		{"plain udp6 to vip", inner6.frame, DecapCounters{NotOurs: 1}},
		{"gre", gre.frame, DecapCounters{NotOurs: 1}},
		{"arp", arpFrame, DecapCounters{NotOurs: 1}},
		{"fragmented ipv4 outer", fragmented.frame, DecapCounters{Fragmented: 1}},
		{"fragmented ipv6 outer", fragmented6.frame, DecapCounters{Fragmented: 1}},
		{"inner version mismatch", func(t testing.TB) []byte {
			f := tunnel(t, outer4, inner4).frame(t)
			f[14+20] = 0x65
			return f
		}, DecapCounters{Malformed: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.frame(t)
			action, out, delta := runDecap(t, d, in)
			if action != xdpPass {
				t.Errorf("action %d, want XDP_PASS", action)
			}
			if !bytes.Equal(out, in) {
				t.Errorf("frame changed\n got %x\nwant %x", out, in)
			}
			if delta != tc.want {
				t.Errorf("counters moved by %+v, want %+v", delta, tc.want)
			}
		})
	}
}

// TestDecapTruncated cuts tunnel frames at every length the kernel accepts;
// each cut must pass unchanged.
func TestDecapTruncated(t *testing.T) {
	d := newTestDecap(t)
	dot1q := outer6
	dot1q.vlans = []uint16{10}
	for _, p := range []pkt{tunnel(t, outer4, inner4), tunnel(t, outer6, inner6), tunnel(t, dot1q, inner4)} {
		frame := p.frame(t)
		for n := 14; n < len(frame); n++ {
			action, out, delta := runDecap(t, d, frame[:n])
			if action != xdpPass || !bytes.Equal(out, frame[:n]) || delta != (DecapCounters{Malformed: 1}) {
				t.Errorf("%d of %d bytes: action %d, changed %v, counters moved by %+v; want XDP_PASS, unchanged, one malformed",
					n, len(frame), action, !bytes.Equal(out, frame[:n]), delta)
			}
		}
	}
}

func TestDecapVIPs(t *testing.T) {
	d := newTestDecap(t)
	frame := tunnel(t, outer4, inner4Other).frame(t)
	other := inet.AddrFromNetip(mustAddr(t, other4))
	if _, _, delta := runDecap(t, d, frame); delta.NotOurs != 1 {
		t.Fatalf("before AddVIP: counters moved by %+v", delta)
	}
	if err := d.AddVIP(other); err != nil {
		t.Fatal(err)
	}
	if _, _, delta := runDecap(t, d, frame); delta.Decapsulated != 1 {
		t.Errorf("after AddVIP: counters moved by %+v", delta)
	}
	if err := d.DelVIP(other); err != nil {
		t.Fatal(err)
	}
	if _, _, delta := runDecap(t, d, frame); delta.NotOurs != 1 {
		t.Errorf("after DelVIP: counters moved by %+v", delta)
	}
	if err := d.DelVIP(other); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("DelVIP of a missing VIP: %v, want ErrKeyNotExist", err)
	}
	if err := d.AddVIP(inet.Addr{}); err == nil {
		t.Error("AddVIP of the zero address succeeded")
	}
}

func TestDecapAttachVeth(t *testing.T) {
	h := enterTestNetns(t, "decap")
	ifindex := addVeth(t, h, "gbv0", "gbv1", 1)
	d, err := LoadDecap()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, mode := range []Mode{ModeNative, ModeGeneric} {
		if used, err := d.Attach(ifindex, mode); err != nil || used != mode {
			t.Fatalf("attach %v: used %v, %v", mode, used, err)
		}
		if xdpAttachMode(t, h, "gbv0") == 0 {
			t.Errorf("attach %v: netlink reports no program", mode)
		}
		if err := d.Detach(ifindex); err != nil {
			t.Fatal(err)
		}
		if got := xdpAttachMode(t, h, "gbv0"); got != 0 {
			t.Errorf("detach %v: netlink still reports attach mode %d", mode, got)
		}
	}
}
