package bpf

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/internal/testutil"
)

// requireRoot skips tests that load BPF programs or create namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t, "loads BPF programs (CAP_BPF, CAP_NET_ADMIN)")
}

var (
	testSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	testDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// IPv6 extension header kinds for pkt.v6Ext.
const (
	extHopByHop = uint8(layers.IPProtocolIPv6HopByHop)
	extRouting  = uint8(layers.IPProtocolIPv6Routing)
	extFragment = uint8(layers.IPProtocolIPv6Fragment)
	extDstOpts  = uint8(layers.IPProtocolIPv6Destination)
	extAH       = uint8(layers.IPProtocolAH)
)

// pkt describes a test packet; frame builds it with gopacket.
type pkt struct {
	vlans        []uint16 // VLAN ids, outermost first; with two, the outer is an 802.1ad S-tag
	src, dst     string   // IPv4 or IPv6 literals of one family
	proto        layers.IPProtocol
	sport, dport uint16
	payload      []byte

	v4Options  []layers.IPv4Option
	v4Flags    layers.IPv4Flag
	fragOffset uint16 // in 8-byte units, IPv4 or (with extFragment) IPv6
	moreFrags  bool   // IPv6 fragment header M flag

	v6Ext []uint8 // extension headers, in order, between IPv6 and transport header

	icmpType, icmpCode uint8
	embedded           *pkt // the packet an ICMP error is about
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return a
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipv6ExtBytes builds minimal extension headers chained to last.
func (p pkt) ipv6ExtBytes(last uint8) []byte {
	var out []byte
	for i, kind := range p.v6Ext {
		next := last
		if i+1 < len(p.v6Ext) {
			next = p.v6Ext[i+1]
		}
		switch kind {
		case extFragment:
			h := make([]byte, 8)
			h[0] = next
			off := p.fragOffset << 3
			if p.moreFrags {
				off |= 1
			}
			binary.BigEndian.PutUint16(h[2:], off)
			binary.BigEndian.PutUint32(h[4:], 0x1234)
			out = append(out, h...)
		case extAH:
			// Length 1: (1+2)*4 = 12 bytes, SPI and sequence number, no ICV.
			h := make([]byte, 12)
			h[0], h[1] = next, 1
			out = append(out, h...)
		case extRouting:
			// Type 4 (segment routing), segments left 0, 16 bytes.
			h := make([]byte, 16)
			h[0], h[1], h[2] = next, 1, 4
			out = append(out, h...)
		default:
			// Hop-by-hop or destination options: a PadN filling 8 bytes.
			h := []byte{next, 0, 1, 4, 0, 0, 0, 0}
			out = append(out, h...)
		}
	}
	return out
}

// ip builds the IP packet (no Ethernet) and returns it with the offset of
// its transport header.
func (p pkt) ip(t testing.TB) ([]byte, int) {
	t.Helper()
	src, dst := mustAddr(t, p.src), mustAddr(t, p.dst)
	var network gopacket.NetworkLayer
	var v4 *layers.IPv4
	var v6 *layers.IPv6
	if src.Is4() {
		v4 = &layers.IPv4{
			Version: 4, TTL: 64, Protocol: p.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
			Options: p.v4Options, Flags: p.v4Flags, FragOffset: p.fragOffset, Id: 7,
		}
		network = v4
	} else {
		v6 = &layers.IPv6{
			Version: 6, HopLimit: 64, NextHeader: p.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		if len(p.v6Ext) > 0 {
			v6.NextHeader = layers.IPProtocol(p.v6Ext[0])
		}
		network = v6
	}

	var l4 []byte
	nonFirstFragment := v4 != nil && p.fragOffset != 0 ||
		v6 != nil && p.fragOffset != 0 && containsExt(p.v6Ext, extFragment)
	switch {
	case nonFirstFragment:
		l4 = p.payload
	case p.proto == layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 1, SYN: true, Window: 1024}
		_ = tcp.SetNetworkLayerForChecksum(network)
		l4 = serialize(t, tcp, gopacket.Payload(p.payload))
	case p.proto == layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = udp.SetNetworkLayerForChecksum(network)
		l4 = serialize(t, udp, gopacket.Payload(p.payload))
	case p.proto == layers.IPProtocolSCTP:
		sctp := &layers.SCTP{SrcPort: layers.SCTPPort(p.sport), DstPort: layers.SCTPPort(p.dport), VerificationTag: 1}
		l4 = serialize(t, sctp, gopacket.Payload(p.payload))
	case p.proto == layers.IPProtocolICMPv4:
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, p.icmpCode)}
		l4 = serialize(t, icmp, gopacket.Payload(append(p.embeddedBytes(t), p.payload...)))
	case p.proto == layers.IPProtocolICMPv6:
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(p.icmpType, p.icmpCode)}
		_ = icmp.SetNetworkLayerForChecksum(network)
		body := append([]byte{0, 0, 0, 0}, p.embeddedBytes(t)...) // unused / MTU / pointer
		l4 = serialize(t, icmp, gopacket.Payload(append(body, p.payload...)))
	default:
		l4 = p.payload
	}

	if v4 != nil {
		b := serialize(t, v4, gopacket.Payload(l4))
		return b, len(b) - len(l4)
	}
	ext := p.ipv6ExtBytes(uint8(p.proto))
	b := serialize(t, v6, gopacket.Payload(append(ext, l4...)))
	return b, len(b) - len(l4)
}

// embeddedBytes is what an ICMP error quotes: the IP header of the packet it
// is about and the first 8 bytes of its transport header.
func (p pkt) embeddedBytes(t testing.TB) []byte {
	if p.embedded == nil {
		return nil
	}
	b, l4 := p.embedded.ip(t)
	return b[:min(len(b), l4+8)]
}

func containsExt(exts []uint8, kind uint8) bool {
	for _, e := range exts {
		if e == kind {
			return true
		}
	}
	return false
}

// frame builds the Ethernet frame of p.
func (p pkt) frame(t testing.TB) []byte {
	t.Helper()
	ipBytes, _ := p.ip(t)
	etherType := layers.EthernetTypeIPv4
	if !mustAddr(t, p.src).Is4() {
		etherType = layers.EthernetTypeIPv6
	}
	return ethFrame(t, p.vlans, etherType, ipBytes)
}

// ethFrame wraps payload in Ethernet and VLAN headers. gopacket pads
// frames to the 60-byte Ethernet minimum.
func ethFrame(t testing.TB, vlans []uint16, etherType layers.EthernetType, payload []byte) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: testSrcMAC, DstMAC: testDstMAC, EthernetType: etherType}
	ls = append(ls, eth)
	for i, id := range vlans {
		if i == 0 {
			eth.EthernetType = layers.EthernetTypeDot1Q
			if len(vlans) > 1 {
				eth.EthernetType = layers.EthernetTypeQinQ
			}
		}
		tag := &layers.Dot1Q{VLANIdentifier: id, Type: etherType}
		if i+1 < len(vlans) {
			tag.Type = layers.EthernetTypeDot1Q
		}
		ls = append(ls, tag)
	}
	ls = append(ls, gopacket.Payload(payload))
	return serialize(t, ls...)
}

func arpFrame(t testing.TB) []byte {
	t.Helper()
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: testSrcMAC, SourceProtAddress: []byte{198, 18, 1, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{198, 18, 0, 10},
	}
	eth := &layers.Ethernet{SrcMAC: testSrcMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	return serialize(t, eth, arp)
}

func endpoint(t testing.TB, addr string, port uint16, proto layers.IPProtocol) Endpoint {
	t.Helper()
	return Endpoint{Addr: inet.AddrFromNetip(mustAddr(t, addr)), Port: port, Proto: uint8(proto)}
}

// payloadOf returns n bytes, enough to lift small frames over the 60-byte
// Ethernet minimum so that no padding hides a truncation.
func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}
