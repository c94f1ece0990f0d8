package pktgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	rbVIP       = netip.MustParseAddrPort("198.18.0.100:9000")
	rbEgressMAC = net.HardwareAddr{0x02, 0, 0, 0, 0xee, 0x01}
)

func rbConfig() RefBalancerConfig {
	cfg := RefBalancerConfig{VIP: rbVIP, EgressIfindex: 1, EgressMAC: rbEgressMAC}
	for i := 0; i < 4; i++ {
		cfg.Reals = append(cfg.Reals, RefBalancerReal{
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}), 9100+uint16(i)),
			MAC:  net.HardwareAddr{0x02, 0, 0, 0, 0x01, byte(i + 1)},
		})
	}
	return cfg
}

// rbPick is refbalancer.c's pick: the multiplicative hash of the source
// address and port as the program reads them (network-order bytes loaded
// little-endian), modulo n.
func rbPick(src netip.Addr, sport uint16, n int) int {
	a := src.As4()
	p := uint32(htons(sport))
	h := (binary.LittleEndian.Uint32(a[:]) ^ (p<<16 | p)) * 0x9e3779b1
	h ^= h >> 16
	return int(h % uint32(n))
}

// rbFrame is one test frame's headers.
type rbFrame struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        layers.IPProtocol
	srcMAC       net.HardwareAddr
	dstMAC       net.HardwareAddr
	options      bool   // an IPv4 option (ihl 6)
	fragment     bool   // more fragments set
	payload      []byte // 18 bytes if nil
	noUDPCsum    bool   // UDP checksum 0 (none)
}

// bytes serializes f with gopacket, lengths and checksums computed.
func (f rbFrame) bytes(t *testing.T) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: f.srcMAC, DstMAC: f.dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: f.proto,
		SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice()}
	if f.options {
		ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	}
	if f.fragment {
		ip.Flags = layers.IPv4MoreFragments
	}
	payload := f.payload
	if payload == nil {
		payload = []byte("reference balancer")
	}
	var l4 gopacket.SerializableLayer
	switch f.proto {
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport), Seq: 1000, Ack: 2000,
			ACK: true, PSH: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	default:
		t.Fatalf("protocol %v", f.proto)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if f.proto == layers.IPProtocolUDP {
		l4off := 14 + int(b[14]&0x0f)*4
		csum := b[l4off+6 : l4off+8]
		switch {
		case f.noUDPCsum:
			csum[0], csum[1] = 0, 0
		case csum[0] == 0 && csum[1] == 0:
			csum[0], csum[1] = 0xff, 0xff // computed 0 is sent as all ones (RFC 768)
		}
	}
	return b
}

// rbRun runs b's program once over in and returns its verdict and frame.
func rbRun(t *testing.T, b *RefBalancer, in []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256), Repeat: 1}
	ret, err := b.Program().Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return ret, opts.DataOut
}

func loadTestRefBalancer(t *testing.T) *RefBalancer {
	t.Helper()
	requireRoot(t)
	b, err := LoadRefBalancer(rbConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRefBalancerRewrite runs frames to the VIP through the program and
// compares what it leaves, byte by byte, with the frame gopacket builds
// toward the real server the hash picks (checksums computed from scratch).
func TestRefBalancerRewrite(t *testing.T) {
	b := loadTestRefBalancer(t)
	cfg := rbConfig()
	client := netip.MustParseAddr("198.18.0.1")
	cases := []struct {
		name string
		f    rbFrame
	}{
		{"udp", rbFrame{proto: layers.IPProtocolUDP}},
		{"tcp", rbFrame{proto: layers.IPProtocolTCP}},
		{"udp ip options", rbFrame{proto: layers.IPProtocolUDP, options: true}},
		{"tcp ip options", rbFrame{proto: layers.IPProtocolTCP, options: true}},
		{"udp no checksum", rbFrame{proto: layers.IPProtocolUDP, noUDPCsum: true}},
	}
	seen := make(map[int]bool)
	for _, c := range cases {
		for _, src := range []netip.Addr{client, netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("203.0.113.250")} {
			for _, sport := range []uint16{1024, 1025, 1026, 1027, 40000, 65535} {
				t.Run(fmt.Sprintf("%s/%v:%d", c.name, src, sport), func(t *testing.T) {
					in := c.f
					in.src, in.sport, in.dst, in.dport = src, sport, rbVIP.Addr(), rbVIP.Port()
					in.srcMAC, in.dstMAC = testSrcMAC, testDstMAC
					i := rbPick(src, sport, len(cfg.Reals))
					seen[i] = true
					rs := cfg.Reals[i]
					want := in
					want.dst, want.dport = rs.Addr.Addr(), rs.Addr.Port()
					want.srcMAC, want.dstMAC = rbEgressMAC, rs.MAC
					ret, out := rbRun(t, b, in.bytes(t))
					if ret != 4 { // XDP_REDIRECT
						t.Fatalf("verdict %d, want XDP_REDIRECT (4)", ret)
					}
					if w := want.bytes(t); !bytes.Equal(out, w) {
						t.Fatalf("frame toward real server %d:\n got %x\nwant %x", i, out, w)
					}
				})
			}
		}
	}
	if len(seen) != len(cfg.Reals) {
		t.Errorf("the sources reached real servers %v, want all %d", seen, len(cfg.Reals))
	}
}

// TestRefBalancerUDPChecksumAllOnes: a UDP checksum that becomes 0 is
// written as 0xffff, 0 meaning none.
func TestRefBalancerUDPChecksumAllOnes(t *testing.T) {
	b := loadTestRefBalancer(t)
	cfg := rbConfig()
	src, sport := netip.MustParseAddr("198.18.0.1"), uint16(5000)
	rs := cfg.Reals[rbPick(src, sport, len(cfg.Reals))]
	want := rbFrame{proto: layers.IPProtocolUDP, src: src, sport: sport, dst: rs.Addr.Addr(), dport: rs.Addr.Port(),
		srcMAC: rbEgressMAC, dstMAC: rs.MAC, payload: make([]byte, 18)}
	// With the checksum C of a zero payload as its first word, the
	// payload's sum is the complement of the rest's: the checksum is 0.
	w := want.bytes(t)
	l4 := w[14+20:]
	copy(want.payload, l4[6:8])
	w = want.bytes(t)
	if l4 := w[14+20:]; l4[6] != 0xff || l4[7] != 0xff {
		t.Fatalf("test frame's UDP checksum is %x, want ffff", l4[6:8])
	}
	in := want
	in.dst, in.dport, in.srcMAC, in.dstMAC = rbVIP.Addr(), rbVIP.Port(), testSrcMAC, testDstMAC
	ret, out := rbRun(t, b, in.bytes(t))
	if ret != 4 {
		t.Fatalf("verdict %d, want XDP_REDIRECT (4)", ret)
	}
	if !bytes.Equal(out, w) {
		t.Fatalf("frame:\n got %x\nwant %x", out, w)
	}
}

// TestRefBalancerPass: what is not an unfragmented IPv4 UDP or TCP packet
// to the VIP and its port passes, untouched.
func TestRefBalancerPass(t *testing.T) {
	b := loadTestRefBalancer(t)
	base := rbFrame{proto: layers.IPProtocolUDP, src: netip.MustParseAddr("198.18.0.1"), sport: 1024,
		dst: rbVIP.Addr(), dport: rbVIP.Port(), srcMAC: testSrcMAC, dstMAC: testDstMAC}
	other := func(f func(*rbFrame)) rbFrame { c := base; f(&c); return c }
	frames := map[string][]byte{
		"other address": other(func(f *rbFrame) { f.dst = netip.MustParseAddr("198.18.0.101") }).bytes(t),
		"other port":    other(func(f *rbFrame) { f.dport = 9001 }).bytes(t),
		"tcp other port": other(func(f *rbFrame) {
			f.proto, f.dport = layers.IPProtocolTCP, 80
		}).bytes(t),
		"fragment": other(func(f *rbFrame) { f.fragment = true }).bytes(t),
	}
	// ICMP to the VIP: the protocol byte changed (checksums do not matter here).
	icmp := base.bytes(t)
	icmp[14+9] = byte(layers.IPProtocolICMPv4)
	frames["icmp"] = icmp
	// Truncated: the UDP header cut short.
	frames["truncated"] = base.bytes(t)[:14+20+6]
	// ARP.
	arp := base.bytes(t)[:42]
	binary.BigEndian.PutUint16(arp[12:], uint16(layers.EthernetTypeARP))
	frames["arp"] = arp
	for name, in := range frames {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(in)
			ret, out := rbRun(t, b, in)
			if ret != 2 { // XDP_PASS
				t.Fatalf("verdict %d, want XDP_PASS (2)", ret)
			}
			if !bytes.Equal(out, orig) {
				t.Fatalf("frame changed:\n got %x\nwant %x", out, orig)
			}
		})
	}
}

func TestRefBalancerConfig(t *testing.T) {
	bad := map[string]func(*RefBalancerConfig){
		"IPv6 VIP": func(c *RefBalancerConfig) { c.VIP = netip.MustParseAddrPort("[2001:db8::1]:80") },
		"no reals": func(c *RefBalancerConfig) { c.Reals = nil },
		"nine reals": func(c *RefBalancerConfig) {
			c.Reals = append(c.Reals, c.Reals...)
			c.Reals = append(c.Reals, c.Reals[0])
		},
		"no MAC":        func(c *RefBalancerConfig) { c.Reals[1].MAC = nil },
		"no egress":     func(c *RefBalancerConfig) { c.EgressIfindex = 0 },
		"no egress MAC": func(c *RefBalancerConfig) { c.EgressMAC = nil },
	}
	for name, f := range bad {
		cfg := rbConfig()
		f(&cfg)
		if _, _, err := cfg.settings(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, _, err := rbConfig().settings(); err != nil {
		t.Error(err)
	}
}
