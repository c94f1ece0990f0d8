package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Shared helpers of the worker unit tests (worker_*_test.go). They build on
// testWorker (worker_test.go) and spLab, seg and decodeOut
// (synproxy_test.go): frames are built with gopacket, put into the
// worker's UMEM, run through process as the receive loop would, and what
// comes out is decoded by gopacket and its checksums recomputed here,
// independently of the packet package.

var (
	dir0IP  = netip.MustParseAddr("198.18.0.254") // interface d0's own address
	dir1IP  = netip.MustParseAddr("198.18.1.254") // interface d1's own address, the tunnel source
	dir0IP6 = netip.MustParseAddr("2001:db8::fe")
	dir1IP6 = netip.MustParseAddr("2001:db8:1::fe")
)

// freeSlot is the first UMEM frame slot handed to the worker as free
// (for the ICMP errors it originates); tests put their frames below it.
const freeSlot = 48

// newLab is newSPLab made ready for every forwarding method: both
// interfaces have a (never used) socket so that the worker may queue frames
// of its own on them, a few UMEM frames are free, both interfaces have
// addresses of both families, and the next hop toward the real server has
// a source address (the tunnel source) of its family.
func newLab(t testing.TB, fwd lvs.Fwd, v6 bool) *spLab {
	t.Helper()
	l := newSPLab(t, fwd, v6)
	w := l.w
	w.socks[0] = &xsk.Socket{}
	for i := w.umem.NumFrames() - 1; i >= freeSlot; i-- {
		w.free = append(w.free, w.umem.FrameAddr(i))
	}
	w.d.ifaces[0].Addr6 = inet.AddrFromNetip(dir0IP6)
	w.d.ifaces[1].Addr6 = inet.AddrFromNetip(dir1IP6)
	src := dir1IP
	if v6 {
		src = dir1IP6
	}
	w.d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(l.real): {Iface: 1, SrcMAC: [6]byte(dirMAC1), DstMAC: [6]byte(realMAC), MTU: 1500,
			Src: inet.AddrFromNetip(src)},
	})
	if fwd == lvs.FwdFullNAT {
		l.st.locals = map[inet.Addr]bool{inet.AddrFromNetip(l.locl): true}
	}
	return l
}

// pk is a TCP or UDP packet to build with gopacket; zero fields take
// defaults (TTL 64, DF set, the client's and director's MACs).
type pk struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	udp            bool
	flags          lvs.TCPFlags // TCP flags: lvs.TCPSyn, lvs.TCPAck, ...
	ttl            uint8
	noDF           bool
	payload        int // bytes of payload (a counting pattern)
	seq            uint32
	ack            uint32 // with the ACK flag; 0: 1
}

// request returns a packet from the lab's client to its VIP:80.
func (l *spLab) request(sport uint16, flags lvs.TCPFlags, payload int) pk {
	return pk{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: sport, dport: 80, flags: flags, payload: payload}
}

// fromReal returns a packet from the lab's real server (port 8080) to
// dst:dport, as it arrives on the real-server side.
func (l *spLab) fromReal(dst netip.Addr, dport uint16, flags lvs.TCPFlags, payload int) pk {
	return pk{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: dst, sport: 8080, dport: dport, flags: flags, payload: payload}
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// l4 returns the serialisable L4 layer of p and sets its checksum's network layer.
func (p pk) l4(ip gopacket.NetworkLayer) gopacket.SerializableLayer {
	if p.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(ip)
		return u
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: p.seq, Window: 1000,
		FIN: p.flags&lvs.TCPFin != 0, SYN: p.flags&lvs.TCPSyn != 0, RST: p.flags&lvs.TCPRst != 0, ACK: p.flags&lvs.TCPAck != 0}
	if tcp.ACK {
		tcp.Ack = max(p.ack, 1)
	}
	tcp.SetNetworkLayerForChecksum(ip)
	return tcp
}

// ipLayer returns p's IP header as gopacket builds it.
func (p pk) ipLayer() (gopacket.SerializableLayer, gopacket.NetworkLayer, layers.EthernetType) {
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	proto := layers.IPProtocolTCP
	if p.udp {
		proto = layers.IPProtocolUDP
	}
	if p.src.Is4() {
		v4 := &layers.IPv4{Version: 4, TTL: ttl, Id: 4242, Protocol: proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		if !p.noDF {
			v4.Flags = layers.IPv4DontFragment
		}
		return v4, v4, layers.EthernetTypeIPv4
	}
	v6 := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
	return v6, v6, layers.EthernetTypeIPv6
}

// ip returns p as an IP packet (no Ethernet header).
func (p pk) ip(t testing.TB) []byte {
	t.Helper()
	ipl, nl, _ := p.ipLayer()
	return serialize(t, ipl, p.l4(nl), gopacket.Payload(payloadOf(p.payload)))
}

// bytes returns p as an Ethernet frame.
func (p pk) bytes(t testing.TB) []byte {
	t.Helper()
	ipl, nl, et := p.ipLayer()
	eth := &layers.Ethernet{SrcMAC: p.srcMAC, DstMAC: p.dstMAC, EthernetType: et}
	return serialize(t, eth, ipl, p.l4(nl), gopacket.Payload(payloadOf(p.payload)))
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// icmpError returns an Ethernet frame carrying an ICMP (IPv4) or ICMPv6
// error from src to dst quoting the IP packet quote (cut to 548 bytes), of
// type "fragmentation needed" / "packet too big" with MTU 1400.
func icmpError(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, quote []byte) []byte {
	t.Helper()
	quote = quote[:min(len(quote), 548)]
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC}
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}
		return serialize(t, eth, ip, ic, gopacket.Payload(quote))
	}
	eth.EthernetType = layers.EthernetTypeIPv6
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	mtu := []byte{0, 0, 0x05, 0x78} // 1400
	return serialize(t, eth, ip, ic, gopacket.Payload(append(mtu, quote...)))
}

// view is a frame the worker produced, decoded by gopacket, with every
// checksum verified.
type view struct {
	eth   *layers.Ethernet
	ips   []gopacket.NetworkLayer // outermost first (two for a tunnel)
	ttls  []uint8
	tcp   *layers.TCP
	udp   *layers.UDP
	icmp4 *layers.ICMPv4
	icmp6 *layers.ICMPv6
	quote []byte // an ICMP error's quoted packet
}

func (v view) src(i int) netip.Addr {
	a, _ := netip.AddrFromSlice(v.ips[i].NetworkFlow().Src().Raw())
	return a
}

func (v view) dst(i int) netip.Addr {
	a, _ := netip.AddrFromSlice(v.ips[i].NetworkFlow().Dst().Raw())
	return a
}

// inspect decodes frame with gopacket and checks its lengths and every
// checksum (IPv4 headers, TCP, UDP, ICMP, ICMPv6) with sums computed here.
func inspect(t *testing.T, frame []byte) view {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("output does not decode: %v\n%x", el.Error(), frame)
	}
	var v view
	var src, dst []byte
	var proto uint8
	for _, l := range pkt.Layers() {
		switch x := l.(type) {
		case *layers.Ethernet:
			v.eth = x
		case *layers.IPv4:
			v.ips = append(v.ips, x)
			v.ttls = append(v.ttls, x.TTL)
			h := x.LayerContents()
			if ones(sum16(h, 0)) != 0xffff {
				t.Errorf("IPv4 header checksum wrong: %x", h)
			}
			if int(x.Length) != len(h)+len(x.LayerPayload()) {
				t.Errorf("IPv4 total length %d, packet has %d bytes", x.Length, len(h)+len(x.LayerPayload()))
			}
			src, dst, proto = x.SrcIP, x.DstIP, uint8(x.Protocol)
		case *layers.IPv6:
			v.ips = append(v.ips, x)
			v.ttls = append(v.ttls, x.HopLimit)
			if int(x.Length) != len(x.LayerPayload()) {
				t.Errorf("IPv6 payload length %d, packet has %d bytes", x.Length, len(x.LayerPayload()))
			}
			src, dst, proto = x.SrcIP, x.DstIP, uint8(x.NextHeader)
		case *layers.TCP:
			v.tcp = x
			checkL4Sum(t, "TCP", src, dst, proto, append(x.LayerContents(), x.LayerPayload()...))
		case *layers.UDP:
			v.udp = x
			checkL4Sum(t, "UDP", src, dst, proto, append(x.LayerContents(), x.LayerPayload()...))
		case *layers.ICMPv4:
			v.icmp4 = x
			v.quote = x.LayerPayload()
			if ones(sum16(append(x.LayerContents(), x.LayerPayload()...), 0)) != 0xffff {
				t.Errorf("ICMP checksum wrong")
			}
		case *layers.ICMPv6:
			v.icmp6 = x
			msg := append(x.LayerContents(), x.LayerPayload()...)
			checkL4Sum(t, "ICMPv6", src, dst, proto, msg)
			if len(msg) >= 8 {
				v.quote = msg[8:]
			}
		}
	}
	if v.eth == nil || len(v.ips) == 0 {
		t.Fatalf("output is not Ethernet/IP: %v", pkt)
	}
	return v
}

// checkL4Sum verifies an L4 checksum with the pseudo-header of src, dst.
func checkL4Sum(t *testing.T, what string, src, dst []byte, proto uint8, seg []byte) {
	t.Helper()
	var ph []byte
	ph = append(ph, src...)
	ph = append(ph, dst...)
	if len(src) == 4 {
		ph = append(ph, 0, proto, byte(len(seg)>>8), byte(len(seg)))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
		ph = append(ph, 0, 0, 0, proto)
	}
	if s := ones(sum16(seg, sum16(ph, 0))); s != 0xffff {
		t.Errorf("%s checksum wrong (sum %#x)", what, s)
	}
}

func sum16(b []byte, s uint64) uint64 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	return s
}

func ones(s uint64) uint64 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return s
}

// quoted decodes an ICMP error's quoted packet (IPv4 or IPv6 by version).
func quoted(t *testing.T, q []byte) (src, dst netip.Addr, sport, dport uint16) {
	t.Helper()
	if len(q) == 0 {
		t.Fatal("no quote")
	}
	first := layers.LayerTypeIPv4
	if q[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(q, first, gopacket.Default)
	nl := pkt.NetworkLayer()
	if nl == nil {
		t.Fatalf("quote does not decode: %x", q)
	}
	src, _ = netip.AddrFromSlice(nl.NetworkFlow().Src().Raw())
	dst, _ = netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
	if tl := pkt.TransportLayer(); tl != nil {
		f := tl.TransportFlow()
		sport = binary.BigEndian.Uint16(f.Src().Raw())
		dport = binary.BigEndian.Uint16(f.Dst().Raw())
	} else if len(q) >= 24 && first == layers.LayerTypeIPv4 { // a cut quote: ports from the raw bytes
		ihl := int(q[0]&0xf) * 4
		sport, dport = binary.BigEndian.Uint16(q[ihl:]), binary.BigEndian.Uint16(q[ihl+2:])
	} else if len(q) >= 44 {
		sport, dport = binary.BigEndian.Uint16(q[40:]), binary.BigEndian.Uint16(q[42:])
	}
	return src, dst, sport, dport
}

// send runs p through the lab's worker as received on inIface in frame
// slot i and returns process's verdict and the frame as it is now.
func (l *spLab) send(t *testing.T, i int, p pk, inIface int, now int64) (int, bool, []byte) {
	t.Helper()
	return l.run(t, i, p.bytes(t), inIface, now)
}

// mustForward is send that fails the test unless the frame leaves on iface out.
func (l *spLab) mustForward(t *testing.T, i int, p pk, inIface, out int, now int64) view {
	t.Helper()
	got, ok, frame := l.send(t, i, p, inIface, now)
	if !ok || got != out {
		t.Fatalf("%v:%d -> %v:%d: out=%d ok=%v, want interface %d; drops %v", p.src, p.sport, p.dst, p.dport, got, ok, out, dropSummary(l.w))
	}
	return inspect(t, frame)
}

// mustDrop is send that fails the test unless the frame is dropped and
// counted as reason (and as nothing else).
// establish opens a NAT connection from the lab's client port sport
// through the worker: the SYN, the real server's SYN-ACK and the client's
// ACK, at 1, 2 and 3 ns.
func (l *spLab) establish(t *testing.T, sport uint16) {
	t.Helper()
	l.mustForward(t, 0, l.request(sport, lvs.TCPSyn, 0), 0, 1, 1)
	l.mustForward(t, 1, l.fromReal(l.client, sport, lvs.TCPSyn|lvs.TCPAck, 0), 1, 0, 2)
	l.mustForward(t, 2, l.request(sport, lvs.TCPAck, 0), 0, 1, 3)
}

func (l *spLab) mustDrop(t *testing.T, i int, p pk, inIface int, now int64, reason DropReason) {
	t.Helper()
	before := dropSummary(l.w)
	got, ok, _ := l.send(t, i, p, inIface, now)
	if ok {
		t.Fatalf("%v:%d -> %v:%d forwarded to %d, want dropped as %s", p.src, p.sport, p.dst, p.dport, got, reason)
	}
	after := dropSummary(l.w)
	for name, n := range after {
		want := before[name]
		if name == reason.String() {
			want++
		}
		if n != want {
			t.Errorf("drop counter %s = %d, want %d (dropped as %s)", name, n, want, reason)
		}
	}
	if after[reason.String()] != before[reason.String()]+1 {
		t.Errorf("drop not counted as %s: %v", reason, after)
	}
}

// conns returns the worker's connections.
func conns(w *worker) []*conntrack.Conn {
	var out []*conntrack.Conn
	w.ct.Walk(func(c *conntrack.Conn) bool { out = append(out, c); return true })
	return out
}
