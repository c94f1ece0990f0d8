package pktgen

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/internal/testutil"
)

func requireRoot(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t, "loads BPF programs (CAP_BPF, CAP_NET_ADMIN)")
}

var (
	testSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	testDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

func testConfig(src string, proto Proto, size int, dsts ...string) Config {
	cfg := Config{
		Ifindex:   1,
		SrcMAC:    testSrcMAC,
		DstMAC:    testDstMAC,
		Src:       netip.MustParseAddr(src),
		Proto:     proto,
		FrameSize: size,
	}
	for _, d := range dsts {
		cfg.Dsts = append(cfg.Dsts, netip.MustParseAddrPort(d))
	}
	return cfg
}

func newGenerator(t testing.TB, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// runOnce runs the program once (not in live-frames mode) over in and
// returns its verdict and the frame it left.
func runOnce(t testing.TB, g *Generator, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := ebpf.RunOptions{Data: in, DataOut: out, Repeat: 1}
	ret, err := g.Program().Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return ret, opts.DataOut
}

// wantFrame is what one generated frame should carry.
type wantFrame struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq          uint32 // IPv4 id (low 16 bits) and TCP sequence number
}

// checkFrame decodes frame with gopacket, checks every field against cfg
// and want, and checks lengths and checksums by serializing the decoded
// layers again with gopacket computing them: the bytes must not change.
func checkFrame(t *testing.T, cfg Config, frame []byte, want wantFrame) {
	t.Helper()
	if len(frame) != cfg.FrameSize {
		t.Fatalf("frame is %d bytes, want %d", len(frame), cfg.FrameSize)
	}
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil || !bytes.Equal(eth.SrcMAC, cfg.SrcMAC) || !bytes.Equal(eth.DstMAC, cfg.DstMAC) {
		t.Fatalf("ethernet header %+v: want %v -> %v", eth, cfg.SrcMAC, cfg.DstMAC)
	}
	var net gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		if got := netip.AddrFrom4([4]byte(ip.SrcIP.To4())); got != want.src {
			t.Errorf("source %v, want %v", got, want.src)
		}
		if got := netip.AddrFrom4([4]byte(ip.DstIP.To4())); got != want.dst {
			t.Errorf("destination %v, want %v", got, want.dst)
		}
		if ip.TTL != 64 || ip.Flags != layers.IPv4DontFragment || ip.FragOffset != 0 || ip.IHL != 5 || ip.TOS != 0 {
			t.Errorf("ipv4 header: ttl %d flags %v frag %d ihl %d tos %d", ip.TTL, ip.Flags, ip.FragOffset, ip.IHL, ip.TOS)
		}
		if ip.Id != uint16(want.seq) {
			t.Errorf("ipv4 id %d, want %d", ip.Id, uint16(want.seq))
		}
		if int(ip.Length) != cfg.FrameSize-14 {
			t.Errorf("ipv4 total length %d, want %d", ip.Length, cfg.FrameSize-14)
		}
		net, netLayer = ip, ip
	} else if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		if got := netip.AddrFrom16([16]byte(ip6.SrcIP)); got != want.src {
			t.Errorf("source %v, want %v", got, want.src)
		}
		if got := netip.AddrFrom16([16]byte(ip6.DstIP)); got != want.dst {
			t.Errorf("destination %v, want %v", got, want.dst)
		}
		if ip6.HopLimit != 64 || ip6.TrafficClass != 0 || ip6.FlowLabel != 0 {
			t.Errorf("ipv6 header: hop limit %d class %d label %d", ip6.HopLimit, ip6.TrafficClass, ip6.FlowLabel)
		}
		if int(ip6.Length) != cfg.FrameSize-54 {
			t.Errorf("ipv6 payload length %d, want %d", ip6.Length, cfg.FrameSize-54)
		}
		net, netLayer = ip6, ip6
	} else {
		t.Fatalf("no IP layer in %v", p)
	}

	var l4 gopacket.SerializableLayer
	var payload []byte
	switch cfg.Proto {
	case UDP:
		udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("no UDP layer in %v", p)
		}
		if uint16(udp.SrcPort) != want.sport || uint16(udp.DstPort) != want.dport {
			t.Errorf("udp ports %d -> %d, want %d -> %d", udp.SrcPort, udp.DstPort, want.sport, want.dport)
		}
		if udp.Checksum == 0 {
			t.Errorf("udp checksum 0: the frame must carry one")
		}
		udp.SetNetworkLayerForChecksum(netLayer)
		l4, payload = udp, udp.Payload
	case TCPSyn:
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("no TCP layer in %v", p)
		}
		if uint16(tcp.SrcPort) != want.sport || uint16(tcp.DstPort) != want.dport {
			t.Errorf("tcp ports %d -> %d, want %d -> %d", tcp.SrcPort, tcp.DstPort, want.sport, want.dport)
		}
		if !tcp.SYN || tcp.ACK || tcp.RST || tcp.FIN || tcp.PSH || tcp.URG || tcp.ECE || tcp.CWR || tcp.NS {
			t.Errorf("tcp flags: want SYN alone: %+v", tcp)
		}
		if tcp.Seq != want.seq || tcp.Ack != 0 || tcp.DataOffset != 6 || tcp.Window != 64240 || tcp.Urgent != 0 {
			t.Errorf("tcp header: seq %d (want %d) ack %d offset %d window %d urgent %d", tcp.Seq, want.seq, tcp.Ack, tcp.DataOffset, tcp.Window, tcp.Urgent)
		}
		if len(tcp.Options) != 1 || tcp.Options[0].OptionType != layers.TCPOptionKindMSS ||
			!bytes.Equal(tcp.Options[0].OptionData, []byte{0x05, 0xb4}) {
			t.Errorf("tcp options %v: want MSS 1460", tcp.Options)
		}
		tcp.SetNetworkLayerForChecksum(netLayer)
		l4, payload = tcp, tcp.Payload
	}
	if len(payload) != cfg.FrameSize-cfg.HeaderLen() {
		t.Errorf("payload %d bytes, want %d", len(payload), cfg.FrameSize-cfg.HeaderLen())
	}
	if !bytes.Equal(payload, make([]byte, len(payload))) {
		t.Errorf("payload is not zero: % x", payload)
	}

	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, net, l4, gopacket.Payload(payload)); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), frame) {
		t.Errorf("lengths or checksums are wrong:\n got % x\nwant % x", frame, buf.Bytes())
	}
}

func TestFrames(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name  string
		cfg   Config
		dport uint16
	}{
		{"udp4-min", testConfig("198.18.0.1", UDP, 60, "198.18.1.1:53"), 53},
		{"udp4-odd", testConfig("198.18.0.1", UDP, 101, "198.18.1.1:53"), 53},
		{"udp4-1514", testConfig("198.18.0.1", UDP, 1514, "198.18.1.1:53"), 53},
		{"udp4-max", testConfig("198.18.0.1", UDP, MaxFrameSize, "198.18.1.1:53"), 53},
		{"syn4-min", testConfig("198.18.0.1", TCPSyn, 60, "198.18.1.1:80"), 80},
		{"syn4-512", testConfig("198.18.0.1", TCPSyn, 512, "198.18.1.1:80"), 80},
		{"udp6-min", testConfig("2001:db8::1", UDP, 62, "[2001:db8:1::1]:53"), 53},
		{"udp6-1514", testConfig("2001:db8::1", UDP, 1514, "[2001:db8:1::1]:53"), 53},
		{"syn6-min", testConfig("2001:db8::1", TCPSyn, 78, "[2001:db8:1::1]:80"), 80},
		{"syn6-999", testConfig("2001:db8::1", TCPSyn, 999, "[2001:db8:1::1]:80"), 80},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGenerator(t, c.cfg)
			ret, frame := runOnce(t, g, make([]byte, c.cfg.FrameSize))
			if ret != 3 { // XDP_TX
				t.Fatalf("verdict %d, want XDP_TX", ret)
			}
			checkFrame(t, c.cfg, frame, wantFrame{
				src: c.cfg.Src, dst: c.cfg.Dsts[0].Addr(),
				sport: DefaultSrcPortMin, dport: c.dport, seq: 0,
			})
		})
	}
}

// TestRewritesEverything: a recycled frame holds whatever the last
// receiver left; the program must produce the same bytes from garbage as
// from zeros.
func TestRewritesEverything(t *testing.T) {
	requireRoot(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range []Config{
		testConfig("198.18.0.1", UDP, 64, "198.18.1.1:53"),
		testConfig("198.18.0.1", UDP, 1500, "198.18.1.1:53"),
		testConfig("198.18.0.1", TCPSyn, 64, "198.18.1.1:80"),
		testConfig("2001:db8::1", UDP, 200, "[2001:db8:1::1]:53"),
		testConfig("2001:db8::1", TCPSyn, 90, "[2001:db8:1::1]:80"),
	} {
		g := newGenerator(t, cfg)
		_, clean := runOnce(t, g, make([]byte, cfg.FrameSize))
		for i := 0; i < 5; i++ {
			if err := g.reset(0); err != nil {
				t.Fatal(err)
			}
			dirty := make([]byte, cfg.FrameSize)
			for j := range dirty {
				dirty[j] = byte(rng.Uint32())
			}
			if i == 0 {
				for j := range dirty {
					dirty[j] = 0xff
				}
			}
			_, got := runOnce(t, g, dirty)
			if !bytes.Equal(got, clean) {
				t.Fatalf("%v %d bytes: frame written over garbage differs:\n got % x\nwant % x", cfg.Proto, cfg.FrameSize, got, clean)
			}
		}
	}
}

// TestFlows checks the flow → tuple mapping over two rounds of flows.
func TestFlows(t *testing.T) {
	requireRoot(t)
	for _, proto := range []Proto{UDP, TCPSyn} {
		for _, fam := range []struct{ src, d1, d2 string }{
			{"198.18.0.250", "198.18.1.1:1000", "198.18.1.2:2000"},
			{"2001:db8::fffe", "[2001:db8:1::1]:1000", "[2001:db8:1::2]:2000"},
		} {
			cfg := testConfig(fam.src, proto, 128, fam.d1, fam.d2)
			cfg.SrcCount, cfg.SrcPortMin, cfg.SrcPorts, cfg.Flows = 3, 5000, 2, 5
			g := newGenerator(t, cfg)
			for n := 0; n < 12; n++ {
				f := n % 5
				src := cfg.Src
				for i := 0; i < f%3; i++ {
					src = src.Next()
				}
				dst := cfg.Dsts[f%2]
				ret, frame := runOnce(t, g, make([]byte, cfg.FrameSize))
				if ret != 3 {
					t.Fatalf("frame %d: verdict %d", n, ret)
				}
				checkFrame(t, cfg, frame, wantFrame{
					src: src, dst: dst.Addr(), sport: uint16(5000 + (f/3)%2), dport: dst.Port(), seq: uint32(n),
				})
			}
			st, err := g.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != 12 {
				t.Errorf("sent counter %d, want 12", st.Sent)
			}
		}
	}
}

func TestLimitAndPacing(t *testing.T) {
	requireRoot(t)
	cfg := testConfig("198.18.0.1", UDP, 64, "198.18.1.1:53")
	g := newGenerator(t, cfg)
	frame := make([]byte, cfg.FrameSize)
	verdicts := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			ret, _ := runOnce(t, g, frame)
			b.WriteString(map[uint32]string{1: "D", 3: "T"}[ret])
		}
		return b.String()
	}

	if err := g.reset(5); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(8); got != "TTTTTDDD" {
		t.Errorf("with a budget of 5: verdicts %s", got)
	}
	// Three frames per (very long) slice.
	g.settings.PerSlice, g.settings.SliceNs = 3, 1<<60
	if err := g.reset(0); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(6); got != "TTTDDD" {
		t.Errorf("with 3 frames per slice: verdicts %s", got)
	}
	// The wrong frame length is refused, not written past.
	if ret, _ := runOnce(t, g, make([]byte, 63)); ret != 1 {
		t.Errorf("short frame: verdict %d, want XDP_DROP", ret)
	}
	st, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Sent: 8, OverLimit: 3, Paced: 3, BadFrame: 1}
	if st != want {
		t.Errorf("counters %+v, want %+v", st, want)
	}
}

func TestPacing(t *testing.T) {
	for _, c := range []struct{ rate, slice, per uint64 }{
		{0, 0, 0},
		{1, 1e9, 1},
		{3, 333333333, 1},
		{10000, 1e5, 1},
		{1e6, 1e5, 100},
		{14880952, 100060, 1489},
	} {
		slice, per := pacing(c.rate)
		if slice != c.slice || per != c.per {
			t.Errorf("pacing(%d) = %d ns, %d frames; want %d, %d", c.rate, slice, per, c.slice, c.per)
		}
		if c.rate > 0 {
			if got := float64(per) * 1e9 / float64(slice); got < float64(c.rate)*0.999 || got > float64(c.rate)*1.001 {
				t.Errorf("pacing(%d) gives %.0f frames/s", c.rate, got)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ok := testConfig("198.18.0.1", UDP, 64, "198.18.1.1:53")
	if _, err := ok.settings(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, c := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no mac", func(c *Config) { c.DstMAC = nil }, "MAC"},
		{"no source", func(c *Config) { c.Src = netip.Addr{} }, "no source"},
		{"no destination", func(c *Config) { c.Dsts = nil }, "destinations"},
		{"too many destinations", func(c *Config) {
			for i := 0; i < MaxDestinations; i++ {
				c.Dsts = append(c.Dsts, c.Dsts[0])
			}
		}, "destinations"},
		{"mixed families", func(c *Config) { c.Dsts[0] = netip.MustParseAddrPort("[2001:db8::1]:53") }, "families"},
		{"port 0", func(c *Config) { c.Dsts[0] = netip.MustParseAddrPort("198.18.1.1:0") }, "no port"},
		{"too small", func(c *Config) { c.FrameSize = 59 }, "frame size"},
		{"too small for syn6", func(c *Config) {
			*c = testConfig("2001:db8::1", TCPSyn, 77, "[2001:db8::2]:80")
		}, "frame size"},
		{"too large", func(c *Config) { c.FrameSize = MaxFrameSize + 1 }, "frame size"},
		{"too many flows", func(c *Config) { c.SrcCount, c.SrcPorts, c.Flows = 2, 3, 7 }, "flows"},
		{"ports past 65535", func(c *Config) { c.SrcPortMin, c.SrcPorts = 65000, 1000 }, "65535"},
		{"source overflow", func(c *Config) { c.Src, c.SrcCount = netip.MustParseAddr("255.255.255.250"), 10 }, "overflow"},
		{"bad proto", func(c *Config) { c.Proto = 7 }, "protocol"},
	} {
		cfg := ok
		cfg.Dsts = append([]netip.AddrPort(nil), ok.Dsts...)
		c.mutate(&cfg)
		_, err := cfg.settings()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error about %q", c.name, err, c.want)
		}
	}
}

func TestParseSrc(t *testing.T) {
	for _, c := range []struct {
		in    string
		first string
		n     uint32
	}{
		{"198.18.0.1", "198.18.0.1", 1},
		{"198.18.0.1-198.18.0.10", "198.18.0.1", 10},
		{"198.18.0.255-198.18.1.0", "198.18.0.255", 2},
		{"198.18.4.0/22", "198.18.4.0", 1024},
		{"198.18.4.7/32", "198.18.4.7", 1},
		{"2001:db8::1-2001:db8::100", "2001:db8::1", 256},
		{"2001:db8::/112", "2001:db8::", 65536},
		{"::ffff:198.18.0.1", "198.18.0.1", 1},
	} {
		first, n, err := ParseSrc(c.in)
		if err != nil || first != netip.MustParseAddr(c.first) || n != c.n {
			t.Errorf("ParseSrc(%q) = %v, %d, %v; want %s, %d", c.in, first, n, err, c.first, c.n)
		}
	}
	for _, bad := range []string{"", "x", "198.18.0.10-198.18.0.1", "198.18.0.1-2001:db8::1",
		"2001:db8::1-2001:db9::1", "0.0.0.0/0", "198.18.0.1-"} {
		if _, _, err := ParseSrc(bad); err == nil {
			t.Errorf("ParseSrc(%q) accepted", bad)
		}
	}
}

func TestCheckDestinations(t *testing.T) {
	good := []netip.AddrPort{
		netip.MustParseAddrPort("198.18.0.1:1"), netip.MustParseAddrPort("198.19.255.255:1"),
		netip.MustParseAddrPort("[2001:db8:ffff::1]:1"), netip.MustParseAddrPort("[::ffff:198.18.3.3]:1"),
	}
	if err := CheckDestinations(good); err != nil {
		t.Errorf("benchmark destinations refused: %v", err)
	}
	for _, bad := range []string{"198.20.0.1:1", "8.8.8.8:53", "[2001:db9::1]:1", "[::1]:1", "127.0.0.1:9"} {
		if err := CheckDestinations([]netip.AddrPort{netip.MustParseAddrPort(bad)}); err == nil {
			t.Errorf("destination %s accepted", bad)
		}
	}
}

// BenchmarkGenerate measures the program's cost per frame (not sending).
func BenchmarkGenerate(b *testing.B) {
	requireRoot(b)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"udp4-64", testConfig("198.18.0.1", UDP, 64, "198.18.1.1:53", "198.18.1.2:53")},
		{"udp4-1514", testConfig("198.18.0.1", UDP, 1514, "198.18.1.1:53")},
		{"syn6-78", testConfig("2001:db8::1", TCPSyn, 78, "[2001:db8:1::1]:80")},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.cfg.Flows, c.cfg.SrcCount = 1000, 10
			g := newGenerator(b, c.cfg)
			_, per, err := g.Program().Benchmark(make([]byte, c.cfg.FrameSize), max(b.N, 1), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/frame")
		})
	}
}
