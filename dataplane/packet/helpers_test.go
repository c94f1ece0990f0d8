package packet

import (
	"encoding/binary"
	"fmt"
	"github.com/govs/govs/lvs"
	"hash/crc32"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
)

// Test builders and oracles. Frames are built with gopacket, which computes
// every checksum itself, and checked with refChecksum below, which shares no
// code with csum.go.

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// spec describes a test frame.
type spec struct {
	vlans        int
	src, dst     string
	proto        lvs.Proto
	sport, dport uint16
	tcpFlags     lvs.TCPFlags // SYN=0x02, ACK=0x10, ...
	payload      []byte
	ipOptions    bool   // IPv4: 4 bytes of options (NOP NOP NOP EOL)
	hopByHop     bool   // IPv6: an empty hop-by-hop header
	dstOpts      bool   // IPv6: an empty destination options header
	ipID         uint16 // IPv4 identification
	df           bool
	icmpType     uint8
	icmpCode     uint8
	icmpRest     uint32 // ICMP bytes 4..7 (MTU, pointer, id/seq)
	zeroUDPCsum  bool   // write UDP checksum 0 (IPv4 only is legal)
	trailer      int    // Ethernet padding after the IP packet
	sctpVerifTag uint32
}

func addr(s string) inet.Addr { return inet.AddrFromNetip(netip.MustParseAddr(s)) }

func ipOf(s string) net.IP { return net.IP(netip.MustParseAddr(s).AsSlice()) }

// build serialises s with gopacket, checksums computed by gopacket.
func build(tb testing.TB, s spec) []byte {
	tb.Helper()
	b, err := buildErr(s)
	if err != nil {
		tb.Fatalf("build %+v: %v", s, err)
	}
	return b
}

func buildErr(s spec) ([]byte, error) {
	v6 := netip.MustParseAddr(s.src).Is6()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB}
	l3type := layers.EthernetTypeIPv4
	if v6 {
		l3type = layers.EthernetTypeIPv6
	}
	ls = append(ls, eth)
	switch s.vlans {
	case 0:
		eth.EthernetType = l3type
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: l3type})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 200, Type: l3type})
	}
	var netLayer gopacket.NetworkLayer
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(s.proto),
			SrcIP: ipOf(s.src), DstIP: ipOf(s.dst), FlowLabel: 0x12345, TrafficClass: 0x20}
		netLayer = ip
		ls = append(ls, ip)
		if s.hopByHop {
			ip.HopByHop = &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
			ip.HopByHop.NextHeader = layers.IPProtocol(s.proto)
			if s.dstOpts {
				ip.HopByHop.NextHeader = layers.IPProtocolIPv6Destination
			}
		} else if s.dstOpts {
			ip.NextHeader = layers.IPProtocolIPv6Destination
		}
		if s.dstOpts {
			d := &layers.IPv6Destination{}
			d.NextHeader = layers.IPProtocol(s.proto)
			d.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
			ls = append(ls, d)
		}
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(s.proto), Id: s.ipID,
			SrcIP: ipOf(s.src), DstIP: ipOf(s.dst), TOS: 0x10}
		if s.df {
			ip.Flags = layers.IPv4DontFragment
		}
		if s.ipOptions {
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		netLayer = ip
		ls = append(ls, ip)
	}
	switch s.proto {
	case lvs.ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport),
			Seq: 0x01020304, Ack: 0x0a0b0c0d, Window: 65000,
			FIN: s.tcpFlags&0x01 != 0, SYN: s.tcpFlags&0x02 != 0, RST: s.tcpFlags&0x04 != 0,
			PSH: s.tcpFlags&0x08 != 0, ACK: s.tcpFlags&0x10 != 0}
		if err := tcp.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		ls = append(ls, tcp)
	case lvs.ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		if err := udp.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		ls = append(ls, udp)
	case lvs.ProtoSCTP:
		ls = append(ls, &layers.SCTP{SrcPort: layers.SCTPPort(s.sport), DstPort: layers.SCTPPort(s.dport), VerificationTag: s.sctpVerifTag})
	case lvs.ProtoICMP:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.icmpType, s.icmpCode),
			Id: uint16(s.icmpRest >> 16), Seq: uint16(s.icmpRest)})
	case lvs.ProtoICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.icmpType, s.icmpCode)}
		if err := ic.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		// gopacket's ICMPv6 layer is 4 bytes; the rest of the 8-byte header is payload.
		var rest [4]byte
		binary.BigEndian.PutUint32(rest[:], s.icmpRest)
		ls = append(ls, ic, gopacket.Payload(rest[:]))
	}
	if s.proto == lvs.ProtoSCTP {
		ls = append(ls, gopacket.Payload(sctpDataChunk(s.payload)))
	} else if len(s.payload) > 0 {
		ls = append(ls, gopacket.Payload(s.payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, err
	}
	out := append([]byte(nil), buf.Bytes()...)
	if s.zeroUDPCsum {
		_ = zeroUDPChecksum(out)
	}
	for range s.trailer {
		out = append(out, 0xee)
	}
	return out, nil
}

// zeroUDPChecksum clears the UDP checksum of a frame (an IPv4 sender may
// omit it).
func zeroUDPChecksum(frame []byte) error {
	var p Parsed
	if err := Parse(frame, &p); err != nil {
		return err
	}
	if p.Proto != lvs.ProtoUDP {
		return fmt.Errorf("not udp")
	}
	frame[p.L4Off+6], frame[p.L4Off+7] = 0, 0
	return nil
}

// refSum is a deliberately plain RFC 1071 sum, independent of csum.go.
func refSum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func refFold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func refPseudo(src, dst []byte, proto lvs.Proto, n int) uint32 {
	s := refSum(src, 0)
	s = refSum(dst, s)
	return s + uint32(proto) + uint32(n>>16) + uint32(n&0xffff)
}

// verifyChecksums checks every checksum gopacket finds in frame: IPv4
// header, TCP, UDP (0 allowed for IPv4), ICMPv4, ICMPv6, SCTP CRC32c, in the
// outer packet only. It returns nil for frames it cannot decode as IP.
func verifyChecksums(frame []byte) error {
	// A tunnel: check the outer IPv4 header here and the inner packet on
	// its own (gopacket would pair the inner L4 with the outer addresses).
	var p Parsed
	if Parse(frame, &p) == nil && (p.Proto == lvs.ProtoIPIP || p.Proto == lvs.ProtoIPv6) && p.Frag == FragNone {
		if p.Family == 4 && refFold(refSum(frame[p.L3Off:p.L4Off], 0)) != 0xffff {
			return fmt.Errorf("outer ipv4 header checksum bad")
		}
		inner := make([]byte, 14, 14+p.L3Len)
		binary.BigEndian.PutUint16(inner[12:], map[lvs.Proto]uint16{lvs.ProtoIPIP: EtherTypeIPv4, lvs.ProtoIPv6: EtherTypeIPv6}[p.Proto])
		return verifyChecksums(append(inner, frame[p.L4Off:p.L3Off+p.L3Len]...))
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: false, NoCopy: true})
	var src, dst []byte
	var l4 []byte
	var proto lvs.Proto
	later := false
	if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		if refFold(refSum(ip4.Contents, 0)) != 0xffff {
			return fmt.Errorf("ipv4 header checksum bad")
		}
		src, dst = ip4.SrcIP.To4(), ip4.DstIP.To4()
		later = ip4.FragOffset != 0 || ip4.Flags&layers.IPv4MoreFragments != 0
		proto = lvs.Proto(ip4.Protocol)
		l4 = ip4.Payload
	} else if ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		src, dst = ip6.SrcIP.To16(), ip6.DstIP.To16()
		if pkt.Layer(layers.LayerTypeIPv6Fragment) != nil {
			later = true
		}
		// gopacket's layers alias frame (NoCopy): find where L4 starts, and
		// end it where the IPv6 payload length says.
		end := cap(frame) - cap(ip6.Contents) + 40 + int(ip6.Length)
		var l4Layer gopacket.Layer
		if tl := pkt.TransportLayer(); tl != nil {
			l4Layer, proto = tl, lvs.Proto(ip6LastNextHeader(pkt))
		} else if ic := pkt.Layer(layers.LayerTypeICMPv6); ic != nil {
			l4Layer, proto = ic, lvs.ProtoICMPv6
		} else {
			return nil
		}
		start := cap(frame) - cap(l4Layer.LayerContents())
		if start > end || end > len(frame) {
			return fmt.Errorf("ipv6 layout")
		}
		l4 = frame[start:end]
	} else {
		return nil
	}
	if later {
		return nil
	}
	switch proto {
	case lvs.ProtoTCP, lvs.ProtoUDP, lvs.ProtoICMPv6:
		if len(l4) < 8 {
			return nil
		}
		if proto == lvs.ProtoUDP && len(src) == 4 && l4[6] == 0 && l4[7] == 0 {
			return nil
		}
		if refFold(refSum(l4, refPseudo(src, dst, proto, len(l4)))) != 0xffff {
			return fmt.Errorf("proto %d checksum bad", proto)
		}
	case lvs.ProtoICMP:
		if refFold(refSum(l4, 0)) != 0xffff {
			return fmt.Errorf("icmp checksum bad")
		}
	case lvs.ProtoSCTP:
		if len(l4) < 12 {
			return nil
		}
		got := binary.LittleEndian.Uint32(l4[8:])
		c := append([]byte(nil), l4...)
		c[8], c[9], c[10], c[11] = 0, 0, 0, 0
		if want := crc32.Checksum(c, crc32.MakeTable(crc32.Castagnoli)); got != want {
			return fmt.Errorf("sctp crc %08x want %08x", got, want)
		}
	}
	return nil
}

func ip6LastNextHeader(pkt gopacket.Packet) layers.IPProtocol {
	switch pkt.TransportLayer().LayerType() {
	case layers.LayerTypeTCP:
		return layers.IPProtocolTCP
	case layers.LayerTypeUDP:
		return layers.IPProtocolUDP
	case layers.LayerTypeSCTP:
		return layers.IPProtocolSCTP
	}
	return 0
}

func mustParse(tb testing.TB, frame []byte) Parsed {
	tb.Helper()
	var p Parsed
	if err := Parse(frame, &p); err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return p
}

func diff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x, want %#02x\ngot  %x\nwant %x", i, got[i], want[i], got, want)
		}
	}
	return ""
}

// icmpErrorSpec describes an ICMP error frame quoting an inner packet.
type icmpErrorSpec struct {
	v6                 bool
	vlans              int
	outerSrc, outerDst string // router -> original sender
	inner              spec   // the quoted packet (its Ethernet header is dropped)
	quoteLen           int    // bytes of the inner IP packet quoted; <= 0: all of it
	icmpType, icmpCode uint8
	rest               uint32
}

// buildICMPError builds an ICMP/ICMPv6 error frame with gopacket.
func buildICMPError(tb testing.TB, e icmpErrorSpec) []byte {
	tb.Helper()
	in := build(tb, e.inner)
	var ip Parsed
	if err := Parse(in, &ip); err != nil {
		tb.Fatalf("inner: %v", err)
	}
	q := in[ip.L3Off : ip.L3Off+ip.L3Len]
	if e.quoteLen > 0 && e.quoteLen < len(q) {
		q = q[:e.quoteLen]
	}
	proto := lvs.ProtoICMP
	if e.v6 {
		proto = lvs.ProtoICMPv6
	}
	return build(tb, spec{vlans: e.vlans, src: e.outerSrc, dst: e.outerDst, proto: proto,
		icmpType: e.icmpType, icmpCode: e.icmpCode, icmpRest: e.rest, payload: append([]byte(nil), q...)})
}

// icmpErrorFrame is a ready-made "fragmentation needed" / "packet too big"
// frame quoting a packet of innerProto, quoteLen bytes of it.
func icmpErrorFrame(tb testing.TB, v6 bool, innerProto lvs.Proto, quoteLen, vlans int) []byte {
	e := icmpErrorSpec{vlans: vlans, quoteLen: quoteLen, icmpType: 3, icmpCode: 4, rest: 1400,
		outerSrc: "198.18.9.9", outerDst: "198.18.0.1",
		inner: spec{src: "198.18.0.1", dst: "198.18.1.1", proto: innerProto, sport: 80, dport: 33000, tcpFlags: 0x18, payload: []byte("some data")}}
	if v6 {
		e.v6, e.icmpType, e.icmpCode = true, 2, 0
		e.outerSrc, e.outerDst = "2001:db8:9::9", "2001:db8::1"
		e.inner.src, e.inner.dst = "2001:db8::1", "2001:db8:1::1"
	}
	return buildICMPError(tb, e)
}

// sctpDataChunk wraps data in an SCTP DATA chunk (RFC 9260 section 3.3.1),
// padded to 4 bytes, so that gopacket decodes the packet.
func sctpDataChunk(data []byte) []byte {
	c := make([]byte, 16, 16+len(data)+3)
	c[0], c[1] = 0, 0x03
	binary.BigEndian.PutUint16(c[2:], uint16(16+len(data)))
	binary.BigEndian.PutUint32(c[4:], 77) // TSN
	c = append(c, data...)
	for len(c)%4 != 0 {
		c = append(c, 0)
	}
	return c
}

// inFamilies runs fn as subtests "name v4" and "name v6", with s's family
// set accordingly; IPv4 options have no IPv6 form, so such a segment runs
// as IPv4 only.
func inFamilies(t *testing.T, name string, s seg, fn func(t *testing.T, s seg)) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		if v6 && s.ipOptions {
			continue
		}
		fam := " v4"
		if v6 {
			fam = " v6"
		}
		s := s
		s.v6 = v6
		t.Run(name+fam, func(t *testing.T) { fn(t, s) })
	}
}
