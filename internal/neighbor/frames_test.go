package neighbor

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var testMAC = [6]byte{0x02, 0, 0, 0, 0, 0x42}

// serialize builds a frame with gopacket, the oracle the hand-built frames
// are compared with byte for byte.
func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("198.18.0.100")
	got, etherType := Frame(testMAC, ip)
	if etherType != 0x0806 || len(got) != GratuitousARPLen {
		t.Fatalf("EtherType %#x, %d bytes", etherType, len(got))
	}
	want := serialize(t,
		&layers.Ethernet{SrcMAC: testMAC[:], DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: testMAC[:], SourceProtAddress: ip.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: ip.AsSlice(),
		})
	// gopacket pads the frame to Ethernet's 60-byte minimum; the kernel
	// does that for a packet socket, so the frame itself stops at 42.
	if len(want) < len(got) || !bytes.Equal(got, want[:len(got)]) || !bytes.Equal(want[len(got):], make([]byte, len(want)-len(got))) {
		t.Errorf("gratuitous ARP\n got % x\nwant % x", got, want)
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::100")
	got, etherType := Frame(testMAC, ip)
	if etherType != 0x86dd || len(got) != UnsolicitedNALen {
		t.Fatalf("EtherType %#x, %d bytes", etherType, len(got))
	}
	ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: ip.AsSlice(), DstIP: net.ParseIP("ff02::1")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	want := serialize(t,
		&layers.Ethernet{SrcMAC: testMAC[:], DstMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6},
		ip6, icmp,
		&layers.ICMPv6NeighborAdvertisement{Flags: 0x20, TargetAddress: ip.AsSlice(),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: testMAC[:]}}})
	if !bytes.Equal(got, want) {
		t.Errorf("neighbour advertisement\n got % x\nwant % x", got, want)
	}

	// Decoded, the frame says what a neighbour needs: override set, the
	// VIP as target, our MAC in the option.
	pkt := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	na, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok {
		t.Fatalf("no neighbour advertisement decoded: %v", pkt)
	}
	if !na.Override() || na.Solicited() || na.Router() || !na.TargetAddress.Equal(ip.AsSlice()) ||
		len(na.Options) != 1 || !bytes.Equal(na.Options[0].Data, testMAC[:]) {
		t.Errorf("decoded %+v", na)
	}
}

func TestHtons(t *testing.T) {
	if htons(0x0806) != 0x0608 {
		t.Errorf("htons(0x0806) = %#x", htons(0x0806))
	}
}

// TestAnnounceNotEthernet: an interface without a 6-byte address (a
// tunnel, lo's empty one) is refused before any socket is opened.
func TestAnnounceNotEthernet(t *testing.T) {
	if err := Announce(1, nil, netip.MustParseAddr("198.18.0.100")); err == nil {
		t.Error("announced on an interface without an Ethernet address")
	}
}
