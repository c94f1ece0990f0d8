package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
)

// The fast-path tests are differential: the workers forward with package
// packet, so the program must produce, byte for byte, the frame that
// package's rewrites produce from the same input.

// Ports of the test connections. Real servers listen on rport*; the
// director's full-NAT local address uses lport.
const (
	cport  = 40000
	lport  = 5001
	vport4 = 80   // vip4/tcp
	vport6 = 443  // vip6/tcp
	vportU = 53   // vip4/udp, vip6/udp
	rport4 = 8080 // real4/tcp
	rport6 = 8443 // real6/tcp
	rportU = 5353 // real4/udp, real6/udp (added by newFastSteering)
)

// otherIfindex is an egress interface other than the one BPF_PROG_TEST_RUN
// reports as ingress (lo): the program must redirect to it. bpf_redirect
// does not check that it exists.
const otherIfindex = 4242

const (
	xdpRedirect = 4
)

var (
	nextHopMAC = [6]byte{0x02, 0, 0, 0, 0xaa, 0x01}
	egressMAC  = [6]byte{0x02, 0, 0, 0, 0xbb, 0x02}
)

// TCP flags for fpkt.flags.
const (
	tcpFIN = 1 << iota
	tcpSYN
	tcpRST
	tcpPSH
	tcpACK
)

// fpkt describes a packet of an established flow. Unlike pkt (which always
// sends SYNs) it sets TCP flags and the IP fields the fast path reads.
type fpkt struct {
	vlans        []uint16
	src, dst     string
	proto        layers.IPProtocol
	sport, dport uint16
	flags        uint8 // TCP flags; 0 means a bare ACK
	payload      []byte

	ttl       uint8 // TTL or hop limit; 0 means 64
	tos       uint8 // IPv4 TOS or IPv6 traffic class
	dontFrag  bool
	moreFrags bool // IPv4 MF: a first fragment
	v4Options []layers.IPv4Option
	v6Ext     []uint8 // extension headers, as pkt.v6Ext
	noUDPSum  bool    // IPv4 UDP without a checksum (0)

	// TCP sequence and acknowledgement numbers and window; 0 means 1000,
	// 2000 and 512.
	seq, ack uint32
	win      uint16
	tcpOpts  []layers.TCPOption
}

// tcpFields returns p's TCP sequence number, acknowledgement number and
// window with the defaults filled in.
func (p fpkt) tcpFields() (seq, ack uint32, win uint16) {
	seq, ack, win = p.seq, p.ack, p.win
	if seq == 0 {
		seq = 1000
	}
	if ack == 0 {
		ack = 2000
	}
	if win == 0 {
		win = 512
	}
	return seq, ack, win
}

func (p fpkt) frame(t testing.TB) []byte {
	t.Helper()
	src, dst := mustAddr(t, p.src), mustAddr(t, p.dst)
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	var (
		ip        gopacket.SerializableLayer
		network   gopacket.NetworkLayer
		etherType layers.EthernetType
	)
	if src.Is4() {
		var flags layers.IPv4Flag
		if p.dontFrag {
			flags |= layers.IPv4DontFragment
		}
		if p.moreFrags {
			flags |= layers.IPv4MoreFragments
		}
		v4 := &layers.IPv4{
			Version: 4, TOS: p.tos, Id: 0x1234, Flags: flags, TTL: ttl, Protocol: p.proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Options: p.v4Options,
		}
		ip, network, etherType = v4, v4, layers.EthernetTypeIPv4
	} else {
		v6 := &layers.IPv6{
			Version: 6, TrafficClass: p.tos, FlowLabel: 0x54321, HopLimit: ttl, NextHeader: p.proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		if len(p.v6Ext) > 0 {
			v6.NextHeader = layers.IPProtocol(p.v6Ext[0])
		}
		ip, network, etherType = v6, v6, layers.EthernetTypeIPv6
	}

	var l4 []byte
	switch p.proto {
	case tcp:
		flags := p.flags
		if flags == 0 {
			flags = tcpACK
		}
		seq, ack, win := p.tcpFields()
		seg := &layers.TCP{
			SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: seq, Ack: ack, Window: win,
			FIN: flags&tcpFIN != 0, SYN: flags&tcpSYN != 0, RST: flags&tcpRST != 0,
			PSH: flags&tcpPSH != 0, ACK: flags&tcpACK != 0, Options: p.tcpOpts,
		}
		_ = seg.SetNetworkLayerForChecksum(network)
		l4 = serialize(t, seg, gopacket.Payload(p.payload))
	case udp:
		dgram := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = dgram.SetNetworkLayerForChecksum(network)
		l4 = serialize(t, dgram, gopacket.Payload(p.payload))
		if p.noUDPSum {
			l4[6], l4[7] = 0, 0
		}
	case sctp:
		l4 = serialize(t, &layers.SCTP{SrcPort: layers.SCTPPort(p.sport), DstPort: layers.SCTPPort(p.dport), VerificationTag: 1},
			gopacket.Payload(p.payload))
	default:
		t.Fatalf("fpkt: protocol %v", p.proto)
	}
	ext := pkt{v6Ext: p.v6Ext}.ipv6ExtBytes(uint8(p.proto))
	return ethFrame(t, p.vlans, etherType, serialize(t, ip, gopacket.Payload(append(ext, l4...))))
}

// flow is the flow key of p: its tuple as received.
func (p fpkt) flow(t testing.TB) Flow {
	t.Helper()
	return Flow{
		Src: inet.AddrFromNetip(mustAddr(t, p.src)), Dst: inet.AddrFromNetip(mustAddr(t, p.dst)),
		SrcPort: p.sport, DstPort: p.dport, Proto: uint8(p.proto),
	}
}

// flowSpec describes a FlowAction with readable addresses.
type flowSpec struct {
	op           FlowOp
	src, dst     string // new addresses, or the outer ones for FlowEncap; "" for none
	sport, dport uint16
	reply        bool
	tx           bool // egress is the ingress interface (lo): a redirect all the same
	maxL3Len     int
	idle         time.Duration // the entry's idle timeout (default a minute); Seen is a second ago
	// Sequence translation of a SYN-proxied connection.
	seqAdd, ackAdd uint32
	winShift       int8
}

// action builds the FlowAction of fs for the packet frame. The outer IPv6
// flow label is the one packet.Encap derives from the inner packet, as the
// workers would install it.
func (fs flowSpec) action(t testing.TB, frame []byte, destID uint32) FlowAction {
	t.Helper()
	a := FlowAction{
		Op: fs.op, SrcPort: fs.sport, DstPort: fs.dport, DstMAC: nextHopMAC, SrcMAC: egressMAC,
		Ifindex: otherIfindex, DestID: destID, Reply: fs.reply, MaxL3Len: fs.maxL3Len,
		// Seen a second ago, so that a forwarded packet visibly moves
		// LastSeen (it is rewritten at most every ~67 ms).
		Seen: MonotonicNow() - int64(time.Second), IdleTimeout: fs.idle,
		SeqAdd: fs.seqAdd, AckAdd: fs.ackAdd, WinShift: fs.winShift,
	}
	if fs.idle == 0 {
		a.IdleTimeout = time.Minute
	}
	if fs.src != "" {
		a.Src = inet.AddrFromNetip(mustAddr(t, fs.src))
	}
	if fs.dst != "" {
		a.Dst = inet.AddrFromNetip(mustAddr(t, fs.dst))
	}
	if fs.tx {
		a.Ifindex = loIndex(t)
	}
	var p packet.Parsed
	if err := packet.Parse(frame, &p); err == nil {
		a.FlowLabel = packet.FlowLabel(&p)
	}
	return a
}

func loIndex(t testing.TB) int {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return lo.Index
}

// newFastSteering is newTestSteering with UDP real servers and the fast
// path on.
func newFastSteering(t testing.TB) *Steering {
	t.Helper()
	s := newTestSteering(t)
	for _, e := range []Endpoint{endpoint(t, real4, rportU, udp), endpoint(t, real6, rportU, udp)} {
		if err := s.AddReal(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	return s
}

// runOut runs the program once on frame and returns its action, the frame
// it left and what it added to the counters.
func runOut(t *testing.T, s *Steering, frame []byte) (uint32, []byte, Counters) {
	t.Helper()
	before, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Room for an outer IPv6 header.
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	action, err := s.Program().Run(&opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return action, opts.DataOut, subCounters(after, before)
}

func destCounters(t *testing.T, s *Steering, id uint32) DestCounters {
	t.Helper()
	c, err := s.FastDestCounters(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// oracle rewrites a copy of frame as the workers do for a flow with action
// a (dataplane/worker.go, toRealServer and toClient).
func oracle(t *testing.T, frame []byte, a *FlowAction) []byte {
	t.Helper()
	out := bytes.Clone(frame)
	var p packet.Parsed
	if err := packet.Parse(out, &p); err != nil {
		t.Fatalf("oracle: parse: %v", err)
	}
	if !packet.DecTTL(out, &p) {
		t.Fatal("oracle: TTL expired")
	}
	// A SYN-proxied connection (dataplane/synproxy.go): the translation
	// goes first, before an encapsulation would move the segment.
	packet.AdjustTCP(out, &p, a.SeqAdd, a.AckAdd, a.WinShift)
	switch a.Op {
	case FlowSetDst:
		packet.DNAT(out, &p, a.Dst, a.DstPort)
	case FlowSetSrc:
		packet.SNAT(out, &p, a.Src, a.SrcPort)
	case FlowFullNAT:
		packet.FullNAT(out, &p, a.Src, a.SrcPort, a.Dst, a.DstPort)
	case FlowForward:
	case FlowEncap:
		// The workers encapsulate in the UMEM chunk, in the headroom
		// before the frame.
		const headroom = 256
		chunk := make([]byte, headroom+len(out))
		copy(chunk[headroom:], out)
		off, n, err := packet.Encap(chunk, headroom, len(out), &p, a.Src, a.Dst, 0)
		if err != nil {
			t.Fatalf("oracle: encap: %v", err)
		}
		out = chunk[off : off+n]
	default:
		t.Fatalf("oracle: op %d", a.Op)
	}
	packet.SetMACs(out, a.DstMAC, a.SrcMAC)
	return out
}

// onesSum is the folded one's-complement sum of b after initial; a
// correct checksum makes the covered data sum to 0xffff.
func onesSum(b []byte, initial uint32) uint16 {
	s := initial
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// decoded is what verifyDecodes found in the innermost IP packet.
type decoded struct {
	src, dst     inet.Addr
	sport, dport uint16
	ttl          uint8
	l4Sum        uint16 // the transport checksum field
	seq, ack     uint32 // TCP
	win          uint16 // TCP
}

// verifyDecodes decodes frame with gopacket and checks, independently of
// both implementations, every IPv4 header checksum and the transport
// checksum of the innermost IP packet (an IPv4 UDP checksum of 0 means
// none).
func verifyDecodes(t *testing.T, frame []byte) decoded {
	t.Helper()
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var (
		d      decoded
		pseudo uint32
		seen   bool
	)
	for _, l := range pk.Layers() {
		switch l := l.(type) {
		case *gopacket.DecodeFailure:
			// Past the transport header gopacket guesses from the port
			// (DNS on 53); the test payload is no such thing.
			if !seen {
				t.Fatalf("output does not decode: %v", l.Error())
			}
		case *layers.IPv4:
			if sum := onesSum(l.Contents, 0); sum != 0xffff {
				t.Errorf("IPv4 header %v -> %v: checksum %#04x does not verify (sum %#04x)", l.SrcIP, l.DstIP, l.Checksum, sum)
			}
			d.src, d.dst, d.ttl = inet.AddrFromSlice4(l.SrcIP.To4()), inet.AddrFromSlice4(l.DstIP.To4()), l.TTL
			pseudo = uint32(onesSum(slices.Concat(l.SrcIP.To4(), l.DstIP.To4()), uint32(l.Protocol)+uint32(len(l.Payload))))
		case *layers.IPv6:
			d.src, d.dst, d.ttl = inet.AddrFromSlice16(l.SrcIP), inet.AddrFromSlice16(l.DstIP), l.HopLimit
			pseudo = uint32(onesSum(slices.Concat(l.SrcIP.To16(), l.DstIP.To16()), uint32(l.NextHeader)+uint32(len(l.Payload))))
		case *layers.TCP:
			seen = true
			d.sport, d.dport, d.l4Sum = uint16(l.SrcPort), uint16(l.DstPort), l.Checksum
			d.seq, d.ack, d.win = l.Seq, l.Ack, l.Window
			if sum := onesSum(slices.Concat(l.Contents, l.Payload), pseudo); sum != 0xffff {
				t.Errorf("TCP checksum %#04x does not verify (sum %#04x)", l.Checksum, sum)
			}
		case *layers.UDP:
			seen = true
			d.sport, d.dport, d.l4Sum = uint16(l.SrcPort), uint16(l.DstPort), l.Checksum
			if l.Checksum == 0 && d.src.Is4() {
				break
			}
			if sum := onesSum(slices.Concat(l.Contents, l.Payload), pseudo); sum != 0xffff {
				t.Errorf("UDP checksum %#04x does not verify (sum %#04x)", l.Checksum, sum)
			}
		}
	}
	if !seen {
		t.Fatalf("output has no transport layer: %v", pk)
	}
	return d
}

// diffBytes describes where got and want differ.
func diffBytes(got, want []byte) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "length %d, want %d; ", len(got), len(want))
	}
	n := 0
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			if n++; n > 16 {
				b.WriteString("...")
				break
			}
			fmt.Fprintf(&b, "[%d] %#02x want %#02x; ", i, got[i], want[i])
		}
	}
	fmt.Fprintf(&b, "\n got  %x\n want %x", got, want)
	return b.String()
}

// outerIPv4 is where the outer IPv4 header of an encapsulated frame is.
const outerIPv4 = packet.EthHeaderLen

// zeroOuterID clears the outer IPv4 identification, which the program
// draws at random, and the header checksum that covers it.
func zeroOuterID(frame []byte) []byte {
	f := bytes.Clone(frame)
	if len(f) >= outerIPv4+packet.IPv4HeaderLen {
		clear(f[outerIPv4+4 : outerIPv4+6])
		clear(f[outerIPv4+10 : outerIPv4+12])
	}
	return f
}

// tuneUDPSum returns p with its first two payload bytes chosen so that the
// UDP checksum computed after the rewrite of spec is 0, which UDP sends as
// 0xffff: the edge where an incremental update must not write 0.
func tuneUDPSum(t *testing.T, p fpkt, spec flowSpec) fpkt {
	t.Helper()
	p.payload = bytes.Clone(p.payload)
	p.payload[0], p.payload[1] = 0, 0
	frame := p.frame(t)
	a := spec.action(t, frame, 0)
	out := oracle(t, frame, &a)
	var q packet.Parsed
	if err := packet.Parse(out, &q); err != nil {
		t.Fatal(err)
	}
	// Adding the checksum c to a payload word adds c to the sum, which then
	// becomes ~c + c = 0xffff: a computed checksum of 0.
	c := binary.BigEndian.Uint16(out[q.L4Off+6:])
	binary.BigEndian.PutUint16(p.payload, c)
	return p
}

type fastCase struct {
	name string
	pkt  fpkt
	spec flowSpec
	// tuneSum makes the rewritten UDP checksum 0xffff (see tuneUDPSum).
	tuneSum bool
	// wantLen is the output length when it matters to the case.
	wantLen int
}

// matrixCases are the forwarding modes for each family and protocol.
func matrixCases() []fastCase {
	type fam struct {
		name                   string
		client, vip, real, lip string
		vportTCP, rportTCP     uint16
	}
	var cases []fastCase
	for _, f := range []fam{
		{"4", client4, vip4, real4, director4, vport4, rport4},
		{"6", client6, vip6, real6, director6, vport6, rport6},
	} {
		for _, proto := range []layers.IPProtocol{tcp, udp} {
			vport, rport := f.vportTCP, f.rportTCP
			var flags uint8
			if proto == udp {
				vport, rport = vportU, rportU
			} else {
				flags = tcpPSH | tcpACK
			}
			// An odd payload length: the checksums' trailing byte.
			req := fpkt{src: f.client, dst: f.vip, proto: proto, sport: cport, dport: vport, flags: flags, payload: payloadOf(37)}
			natReply := fpkt{src: f.real, dst: f.client, proto: proto, sport: rport, dport: cport, flags: flags, payload: payloadOf(37)}
			fnatReply := fpkt{src: f.real, dst: f.lip, proto: proto, sport: rport, dport: lport, flags: flags, payload: payloadOf(37)}
			suffix := strings.ToLower(proto.String()) + f.name
			cases = append(cases,
				fastCase{name: "nat in " + suffix, pkt: req,
					spec: flowSpec{op: FlowSetDst, dst: f.real, dport: rport}},
				fastCase{name: "nat out " + suffix, pkt: natReply,
					spec: flowSpec{op: FlowSetSrc, src: f.vip, sport: vport, reply: true, tx: true}},
				fastCase{name: "full-nat in " + suffix, pkt: req,
					spec: flowSpec{op: FlowFullNAT, src: f.lip, sport: lport, dst: f.real, dport: rport}},
				fastCase{name: "full-nat out " + suffix, pkt: fnatReply,
					spec: flowSpec{op: FlowFullNAT, src: f.vip, sport: vport, dst: f.client, dport: cport, reply: true, tx: true}},
				fastCase{name: "dr " + suffix, pkt: req, spec: flowSpec{op: FlowForward}},
				fastCase{name: "tun " + suffix, pkt: req, spec: flowSpec{op: FlowEncap, src: f.lip, dst: f.real}},
			)
		}
	}
	return cases
}

var ipv4Options = []layers.IPv4Option{
	{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}},   // router alert
	{OptionType: 7, OptionLength: 11, OptionData: make([]byte, 9)}, // record route
	{OptionType: 1}, // NOP
}

var (
	dnat4   = flowSpec{op: FlowSetDst, dst: real4, dport: rport4}
	dnat4U  = flowSpec{op: FlowSetDst, dst: real4, dport: rportU}
	dnat6   = flowSpec{op: FlowSetDst, dst: real6, dport: rport6}
	snat4   = flowSpec{op: FlowSetSrc, src: vip4, sport: vport4, reply: true, tx: true}
	snat4U  = flowSpec{op: FlowSetSrc, src: vip4, sport: vportU, reply: true, tx: true}
	snat6   = flowSpec{op: FlowSetSrc, src: vip6, sport: vport6, reply: true, tx: true}
	tun4    = flowSpec{op: FlowEncap, src: director4, dst: real4}
	tun6    = flowSpec{op: FlowEncap, src: director6, dst: real6}
	ack4    = fpkt{src: client4, dst: vip4, proto: tcp, sport: cport, dport: vport4}
	ack6    = fpkt{src: client6, dst: vip6, proto: tcp, sport: cport, dport: vport6}
	udp4    = fpkt{src: client4, dst: vip4, proto: udp, sport: cport, dport: vportU, payload: payloadOf(37)}
	udp6    = fpkt{src: client6, dst: vip6, proto: udp, sport: cport, dport: vportU, payload: payloadOf(37)}
	reply4  = fpkt{src: real4, dst: client4, proto: tcp, sport: rport4, dport: cport}
	reply4U = fpkt{src: real4, dst: client4, proto: udp, sport: rportU, dport: cport, payload: payloadOf(37)}
	reply6  = fpkt{src: real6, dst: client6, proto: tcp, sport: rport6, dport: cport}
)

// with returns p changed by f (the table's shorthand for variants).
func (p fpkt) with(f func(*fpkt)) fpkt {
	f(&p)
	return p
}

func extraCases() []fastCase {
	const (
		ipv4TCP = packet.EthHeaderLen + packet.IPv4HeaderLen + packet.TCPHeaderLen
		ipv4UDP = packet.IPv4HeaderLen + packet.UDPHeaderLen
	)
	fnatOut6U := fpkt{src: real6, dst: director6, proto: udp, sport: rportU, dport: lport, payload: payloadOf(37)}
	return []fastCase{
		// Ethernet padding stays with an in-place rewrite, as in the workers.
		{name: "nat in tcp4 ack padded", pkt: ack4, spec: dnat4, wantLen: 60},
		{name: "nat out tcp4 ack padded", pkt: reply4, spec: snat4, wantLen: 60},
		// ... and goes with encapsulation: it is not part of the packet.
		{name: "tun tcp4 ack padded", pkt: ack4, spec: tun4, wantLen: ipv4TCP + packet.IPv4HeaderLen},
		{name: "tun udp4 padded", pkt: udp4.with(func(p *fpkt) { p.payload = payloadOf(3) }), spec: tun4,
			wantLen: packet.EthHeaderLen + 2*packet.IPv4HeaderLen + packet.UDPHeaderLen + 3},

		{name: "nat in udp4 no checksum", pkt: udp4.with(func(p *fpkt) { p.noUDPSum = true }), spec: dnat4U},
		{name: "nat out udp4 no checksum", pkt: reply4U.with(func(p *fpkt) { p.noUDPSum = true }), spec: snat4U},
		{name: "full-nat in udp4 no checksum", pkt: udp4.with(func(p *fpkt) { p.noUDPSum = true }),
			spec: flowSpec{op: FlowFullNAT, src: director4, sport: lport, dst: real4, dport: rportU}},
		{name: "nat in udp4 checksum becomes 0xffff", pkt: udp4, spec: dnat4U, tuneSum: true},
		{name: "full-nat out udp6 checksum becomes 0xffff", pkt: fnatOut6U, tuneSum: true,
			spec: flowSpec{op: FlowFullNAT, src: vip6, sport: vportU, dst: client6, dport: cport, reply: true, tx: true}},

		{name: "nat in tcp4 ip options", pkt: ack4.with(func(p *fpkt) { p.v4Options = ipv4Options }), spec: dnat4},
		{name: "nat out tcp4 ip options", pkt: reply4.with(func(p *fpkt) { p.v4Options = ipv4Options }), spec: snat4},
		{name: "full-nat in udp4 ip options", pkt: udp4.with(func(p *fpkt) { p.v4Options = ipv4Options }),
			spec: flowSpec{op: FlowFullNAT, src: director4, sport: lport, dst: real4, dport: rportU}},
		{name: "tun tcp4 ip options", pkt: ack4.with(func(p *fpkt) { p.v4Options = ipv4Options }), spec: tun4},
		{name: "dr tcp4 ip options", pkt: ack4.with(func(p *fpkt) { p.v4Options = ipv4Options }), spec: flowSpec{op: FlowForward}},

		// RFC 6040: DSCP copied, CE becomes ECT(0); DF copied.
		{name: "tun tcp4 ecn ce dont fragment", pkt: ack4.with(func(p *fpkt) { p.tos, p.dontFrag = 0xb3, true }), spec: tun4},
		{name: "tun tcp4 ect1", pkt: ack4.with(func(p *fpkt) { p.tos = 0x21 }), spec: tun4},
		{name: "tun udp6 ecn ce", pkt: udp6.with(func(p *fpkt) { p.tos = 0xb3 }), spec: tun6},
		{name: "tun udp4 max l3 len is packet length", pkt: udp4,
			spec: flowSpec{op: FlowEncap, src: director4, dst: real4, maxL3Len: ipv4UDP + 37}},
		{name: "tun tcp6 max l3 len is packet length", pkt: ack6,
			spec: flowSpec{op: FlowEncap, src: director6, dst: real6, maxL3Len: packet.IPv6HeaderLen + packet.TCPHeaderLen}},

		{name: "nat in tcp4 ttl 2", pkt: ack4.with(func(p *fpkt) { p.ttl = 2 }), spec: dnat4},
		{name: "nat out tcp6 hop limit 2", pkt: reply6.with(func(p *fpkt) { p.ttl = 2 }), spec: snat6},
		// The egress interface, not the direction, picks TX or redirect.
		{name: "dr tcp6 tx", pkt: ack6, spec: flowSpec{op: FlowForward, tx: true}},
		{name: "nat out tcp4 redirect", pkt: reply4, spec: flowSpec{op: FlowSetSrc, src: vip4, sport: vport4, reply: true}},
		{name: "nat in tcp6 ack", pkt: ack6, spec: dnat6},
	}
}

// TestFastPathForwards compares the program's rewrite of established-flow
// packets with the workers' (package packet).
func TestFastPathForwards(t *testing.T) {
	s := newFastSteering(t)
	for i, c := range slices.Concat(matrixCases(), extraCases(), seqAdjCases()) {
		t.Run(c.name, func(t *testing.T) {
			if c.tuneSum {
				c.pkt = tuneUDPSum(t, c.pkt, c.spec)
			}
			in := c.pkt.frame(t)
			f := c.pkt.flow(t)
			a := c.spec.action(t, in, uint32(i+1))
			if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.DeleteFlow(nil, f); err != nil {
					t.Error(err)
				}
			})
			if seen, ok := s.FlowLastSeen(nil, f); !ok || seen != a.Seen {
				t.Errorf("FlowLastSeen before any packet = %d, %v; want the installed %d", seen, ok, a.Seen)
			}
			statsBefore := destCounters(t, s, a.DestID)

			action, out, delta := runOut(t, s, in)

			want := oracle(t, in, &a)
			wantAction := uint32(xdpRedirect)
			if action != wantAction {
				t.Errorf("action %d, want %d", action, wantAction)
			}
			if delta != (Counters{FastForwarded: 1}) {
				t.Errorf("counters moved by %+v, want one fast-forwarded packet", delta)
			}
			encap4 := c.spec.op == FlowEncap && c.pkt.flow(t).Src.Is4()
			if encap4 {
				if len(out) < outerIPv4+packet.IPv4HeaderLen {
					t.Fatalf("output of %d bytes has no outer IPv4 header", len(out))
				}
				if sum := onesSum(out[outerIPv4:outerIPv4+packet.IPv4HeaderLen], 0); sum != 0xffff {
					t.Errorf("outer IPv4 header checksum does not verify (sum %#04x)", sum)
				}
				out, want = zeroOuterID(out), zeroOuterID(want)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from the workers' rewrite: %s", diffBytes(out, want))
			}
			if c.wantLen != 0 && len(out) != c.wantLen {
				t.Errorf("output of %d bytes, want %d (input %d)", len(out), c.wantLen, len(in))
			}
			if encap4 {
				// out has its identification cleared; the outer header
				// checksum was checked above.
				out = zeroOuterIDKeepSum(t, out)
			}
			c.checkDecoded(t, verifyDecodes(t, out))

			if seen, ok := s.FlowLastSeen(nil, f); !ok || seen <= a.Seen {
				t.Errorf("FlowLastSeen after a forwarded packet = %d, %v; want later than %d", seen, ok, a.Seen)
			}
			stats := destCounters(t, s, a.DestID)
			wantStats := statsBefore
			if c.spec.reply {
				wantStats.OutPkts++
				wantStats.OutBytes += uint64(len(in))
			} else {
				wantStats.InPkts++
				wantStats.InBytes += uint64(len(in))
			}
			if stats != wantStats {
				t.Errorf("FastDestCounters(%d) = %+v, want %+v", a.DestID, stats, wantStats)
			}
		})
	}
}

// zeroOuterIDKeepSum is zeroOuterID with the outer header checksum
// recomputed, so that the zeroed frame still decodes as valid.
func zeroOuterIDKeepSum(t *testing.T, frame []byte) []byte {
	t.Helper()
	f := zeroOuterID(frame)
	h := f[outerIPv4 : outerIPv4+packet.IPv4HeaderLen]
	binary.BigEndian.PutUint16(h[10:], ^onesSum(h, 0))
	return f
}

// checkDecoded checks the innermost packet's tuple and TTL against what
// the flow's action says, independently of package packet.
func (c fastCase) checkDecoded(t *testing.T, d decoded) {
	t.Helper()
	f := c.pkt.flow(t)
	want := decoded{src: f.Src, dst: f.Dst, sport: f.SrcPort, dport: f.DstPort, ttl: 63, l4Sum: d.l4Sum}
	if c.pkt.ttl != 0 {
		want.ttl = c.pkt.ttl - 1
	}
	if c.spec.op&FlowSetSrc != 0 {
		want.src, want.sport = inet.AddrFromNetip(mustAddr(t, c.spec.src)), c.spec.sport
	}
	if c.spec.op&FlowSetDst != 0 {
		want.dst, want.dport = inet.AddrFromNetip(mustAddr(t, c.spec.dst)), c.spec.dport
	}
	if c.pkt.proto == tcp {
		// The translation worked out here from the flow's numbers, not
		// with package packet.
		seq, ack, win := c.pkt.tcpFields()
		want.seq, want.ack, want.win = seq+c.spec.seqAdd, ack, rescaleWindow(win, c.spec.winShift)
		if c.pkt.flags == 0 || c.pkt.flags&tcpACK != 0 {
			want.ack += c.spec.ackAdd
		}
	}
	if d != want {
		t.Errorf("decoded %+v, want %+v", d, want)
	}
	if c.pkt.noUDPSum && d.l4Sum != 0 {
		t.Errorf("UDP checksum %#04x, want 0: a packet without one must stay without", d.l4Sum)
	}
	if c.tuneSum && d.l4Sum != 0xffff {
		t.Errorf("UDP checksum %#04x, want 0xffff", d.l4Sum)
	}
}

// synProxyDelta is a SYN-proxied connection's SeqDelta (real server ISN -
// cookie): a request's ack moves by it, a reply's seq by its negation.
const synProxyDelta uint32 = 0x9e3779b9

// minus is -d modulo 2^32, how a negative offset is passed.
func minus(d uint32) uint32 { return -d }

var (
	nopOpt        = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	sackOpts      = []layers.TCPOption{nopOpt, nopOpt, {OptionType: layers.TCPOptionKindSACK, OptionData: []byte{0, 0, 0x0b, 0xb8, 0, 0, 0x0f, 0xa0}}}
	timestampOpts = []layers.TCPOption{nopOpt, nopOpt, {OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}}}
)

// with returns fs changed by f.
func (fs flowSpec) with(f func(*flowSpec)) flowSpec {
	f(&fs)
	return fs
}

// rescaleWindow is the fast path's window translation written out plainly:
// doubled shift times (saturating at 0xffff), or halved -shift times.
func rescaleWindow(w uint16, shift int8) uint16 {
	v := uint32(w)
	for ; shift > 0; shift-- {
		if v *= 2; v > 0xffff {
			return 0xffff
		}
	}
	for ; shift < 0; shift++ {
		v /= 2
	}
	return uint16(v)
}

// seqAdjCases are flows of SYN-proxied connections (FLOW_SEQ_ADJ) in every
// mode that gets them: NAT and full-NAT, both directions, with and without
// a window shift, with wrap-around of the sequence space.
func seqAdjCases() []fastCase {
	type fam struct {
		name                   string
		client, vip, real, lip string
		vport, rport           uint16
	}
	var cases []fastCase
	for _, f := range []fam{
		{"4", client4, vip4, real4, director4, vport4, rport4},
		{"6", client6, vip6, real6, director6, vport6, rport6},
	} {
		req := fpkt{src: f.client, dst: f.vip, proto: tcp, sport: cport, dport: f.vport, flags: tcpPSH | tcpACK, payload: payloadOf(37)}
		natReply := fpkt{src: f.real, dst: f.client, proto: tcp, sport: f.rport, dport: cport, flags: tcpPSH | tcpACK, payload: payloadOf(37)}
		fnatReply := fpkt{src: f.real, dst: f.lip, proto: tcp, sport: f.rport, dport: lport, flags: tcpPSH | tcpACK, payload: payloadOf(37)}
		dnat := flowSpec{op: FlowSetDst, dst: f.real, dport: f.rport, ackAdd: synProxyDelta}
		snat := flowSpec{op: FlowSetSrc, src: f.vip, sport: f.vport, reply: true, tx: true, seqAdd: minus(synProxyDelta)}
		fnatIn := flowSpec{op: FlowFullNAT, src: f.lip, sport: lport, dst: f.real, dport: f.rport, ackAdd: synProxyDelta}
		fnatOut := flowSpec{op: FlowFullNAT, src: f.vip, sport: f.vport, dst: f.client, dport: cport, reply: true, tx: true, seqAdd: minus(synProxyDelta)}
		shift := func(n int8) func(*flowSpec) { return func(fs *flowSpec) { fs.winShift = n } }
		sfx := " tcp" + f.name
		cases = append(cases,
			fastCase{name: "seq-adj nat in" + sfx, pkt: req, spec: dnat},
			fastCase{name: "seq-adj nat in bare ack" + sfx, pkt: req.with(func(p *fpkt) { p.flags, p.payload = tcpACK, nil }), spec: dnat},
			fastCase{name: "seq-adj nat in ack wraps" + sfx, pkt: req.with(func(p *fpkt) { p.ack = 0xffffff00 }),
				spec: dnat.with(func(fs *flowSpec) { fs.ackAdd = 0x1000 })},
			// No ACK flag (the fast path takes such a segment): ack stays.
			fastCase{name: "seq-adj nat in push without ack" + sfx, pkt: req.with(func(p *fpkt) { p.flags = tcpPSH }), spec: dnat},
			fastCase{name: "seq-adj nat out" + sfx, pkt: natReply, spec: snat},
			fastCase{name: "seq-adj nat out window shift 3" + sfx, pkt: natReply, spec: snat.with(shift(3))},
			fastCase{name: "seq-adj nat out window shift -2" + sfx, pkt: natReply.with(func(p *fpkt) { p.win = 0xfffd }), spec: snat.with(shift(-2))},
			fastCase{name: "seq-adj nat out window saturates" + sfx, pkt: natReply.with(func(p *fpkt) { p.win = 0x4001 }), spec: snat.with(shift(2))},
			fastCase{name: "seq-adj nat out seq wraps" + sfx, pkt: natReply.with(func(p *fpkt) { p.seq = 0x10 }),
				spec: snat.with(func(fs *flowSpec) { fs.seqAdd = minus(0x20) })},
			fastCase{name: "seq-adj nat out window shift only" + sfx, pkt: natReply,
				spec: snat.with(func(fs *flowSpec) { fs.seqAdd, fs.winShift = 0, 1 })},
			fastCase{name: "seq-adj full-nat in" + sfx, pkt: req, spec: fnatIn},
			fastCase{name: "seq-adj full-nat in padded" + sfx, pkt: req.with(func(p *fpkt) { p.flags, p.payload = tcpACK, nil }), spec: fnatIn},
			fastCase{name: "seq-adj full-nat out" + sfx, pkt: fnatReply, spec: fnatOut},
			fastCase{name: "seq-adj full-nat out window shift 7" + sfx, pkt: fnatReply.with(func(p *fpkt) { p.win = 3 }), spec: fnatOut.with(shift(7))},
			fastCase{name: "seq-adj full-nat out window shift -7" + sfx, pkt: fnatReply, spec: fnatOut.with(shift(-7))},
			// DR and TUN never get a translation (their replies bypass the
			// director), but the program would apply it alike.
			fastCase{name: "seq-adj dr" + sfx, pkt: req, spec: flowSpec{op: FlowForward, ackAdd: synProxyDelta}},
			fastCase{name: "seq-adj tun" + sfx, pkt: req, spec: flowSpec{op: FlowEncap, src: f.lip, dst: f.real, ackAdd: synProxyDelta}},
			// The PROXY header's shift (full-NAT, proxy_protocol): the
			// client's seq up by the header's length, the server's ack
			// down, with Linux's timestamps-alone options, which the
			// program translates itself; combined with the SYN proxy's.
			fastCase{name: "proxy-shift full-nat in timestamps" + sfx, pkt: req.with(func(p *fpkt) { p.tcpOpts = timestampOpts }),
				spec: fnatIn.with(func(fs *flowSpec) { fs.seqAdd, fs.ackAdd = 28, 0 })},
			fastCase{name: "proxy-shift full-nat out timestamps" + sfx, pkt: fnatReply.with(func(p *fpkt) { p.tcpOpts = timestampOpts }),
				spec: fnatOut.with(func(fs *flowSpec) { fs.seqAdd, fs.ackAdd = 0, minus(28) })},
			fastCase{name: "proxy-shift and syn proxy full-nat in" + sfx, pkt: req,
				spec: fnatIn.with(func(fs *flowSpec) { fs.seqAdd = 107 })},
			fastCase{name: "proxy-shift and syn proxy full-nat out timestamps" + sfx, pkt: fnatReply.with(func(p *fpkt) { p.tcpOpts = timestampOpts }),
				spec: fnatOut.with(func(fs *flowSpec) { fs.ackAdd = minus(107) })},
			// Without translation, segments with options stay on the fast path.
			fastCase{name: "nat in sack without translation" + sfx, pkt: req.with(func(p *fpkt) { p.tcpOpts = sackOpts }),
				spec: flowSpec{op: FlowSetDst, dst: f.real, dport: f.rport}},
		)
	}
	return cases
}

// TestInstallFlowSeqAdj: the translation sets FLOW_SEQ_ADJ when any of its
// numbers is non-zero, and only TCP flows take it.
func TestInstallFlowSeqAdj(t *testing.T) {
	s := newFastSteering(t)
	for _, c := range []struct {
		name     string
		pkt      fpkt
		spec     flowSpec
		wantErr  bool
		wantFlag bool
	}{
		{name: "none", pkt: ack4, spec: dnat4},
		{name: "seq", pkt: reply4, spec: snat4.with(func(fs *flowSpec) { fs.seqAdd = 1 }), wantFlag: true},
		{name: "ack", pkt: ack4, spec: dnat4.with(func(fs *flowSpec) { fs.ackAdd = 1 }), wantFlag: true},
		{name: "window", pkt: reply6, spec: snat6.with(func(fs *flowSpec) { fs.winShift = -1 }), wantFlag: true},
		{name: "udp", pkt: udp4, spec: dnat4U.with(func(fs *flowSpec) { fs.ackAdd = 1 }), wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.pkt.frame(t)
			f := c.pkt.flow(t)
			a := c.spec.action(t, in, 1)
			err := s.InstallFlow(nil, f, &a, s.FlowGeneration())
			if c.wantErr {
				if err == nil {
					t.Fatal("InstallFlow accepted a translation of a UDP flow")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.DeleteFlow(nil, f) })
			var buf FlowBuf
			if err := s.lookupFlow(&buf, &f); err != nil {
				t.Fatal(err)
			}
			v := buf.val
			if got := v.Flags&flowSeqAdj != 0; got != c.wantFlag {
				t.Errorf("FLOW_SEQ_ADJ %v, want %v (flags %#x)", got, c.wantFlag, v.Flags)
			}
			if v.SeqAdd != a.SeqAdd || v.AckAdd != a.AckAdd || v.WinShift != a.WinShift {
				t.Errorf("entry %+v, want the action's translation %+v", v, a)
			}
		})
	}
}

// TestFlowMapsByFamily: IPv4 flows live in flows4 under their 16-byte key,
// the others in flows, and an IPv4 packet is looked up in flows4 alone.
func TestFlowMapsByFamily(t *testing.T) {
	s := newFastSteering(t)
	for _, c := range []struct {
		name string
		pkt  fpkt
		spec flowSpec
		v4   bool
	}{
		{"tcp4", ack4, dnat4, true},
		{"udp4", udp4, dnat4U, true},
		{"tcp6", ack6, dnat6, false},
		{"udp6", udp6, flowSpec{op: FlowSetDst, dst: real6, dport: rportU}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.pkt.frame(t)
			f := c.pkt.flow(t)
			a := c.spec.action(t, in, 1)
			if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
				t.Fatal(err)
			}
			var v steerFlowAction
			k, k4 := f.key(), f.key4()
			in4 := s.objs.Flows4.Lookup(&k4, &v) == nil
			in6 := s.objs.Flows.Lookup(&k, &v) == nil
			if in4 != c.v4 || in6 == c.v4 {
				t.Errorf("entry in flows4 %v, in flows %v; want it in flows4 %v", in4, in6, c.v4)
			}
			if n := s.FlowCount(); n != 1 {
				t.Errorf("FlowCount %d, want 1", n)
			}
			checkForwarded(t, s, in)
			if err := s.DeleteFlow(nil, f); err != nil {
				t.Fatal(err)
			}
			if s.objs.Flows4.Lookup(&k4, &v) == nil || s.objs.Flows.Lookup(&k, &v) == nil {
				t.Error("entry left after DeleteFlow")
			}
			if c.v4 {
				// An IPv4 entry under flows' IPv4-mapped key is not seen.
				installFlowBeforeFlows4(t, s, f, &a)
				checkSteered(t, s, in, wantVIP)
				if err := s.objs.Flows.Delete(&k); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestFastPathDeclines sends packets that match a flow entry but are the
// workers' to handle: the program must steer them as before, untouched.
func TestFastPathDeclines(t *testing.T) {
	s := newFastSteering(t)
	cases := []struct {
		name   string
		pkt    fpkt
		spec   flowSpec
		noFlow bool
		want   verdict
	}{
		{name: "tcp4 syn", pkt: ack4.with(func(p *fpkt) { p.flags = tcpSYN }), spec: dnat4, want: wantVIP},
		{name: "tcp4 fin", pkt: ack4.with(func(p *fpkt) { p.flags = tcpFIN | tcpACK }), spec: dnat4, want: wantVIP},
		{name: "tcp4 rst", pkt: ack4.with(func(p *fpkt) { p.flags = tcpRST }), spec: dnat4, want: wantVIP},
		{name: "tcp4 rst ack", pkt: ack4.with(func(p *fpkt) { p.flags = tcpRST | tcpACK }), spec: tun4, want: wantVIP},
		{name: "tcp6 syn", pkt: ack6.with(func(p *fpkt) { p.flags = tcpSYN }), spec: dnat6, want: wantVIP},
		{name: "tcp6 fin", pkt: ack6.with(func(p *fpkt) { p.flags = tcpFIN | tcpPSH | tcpACK }), spec: dnat6, want: wantVIP},
		{name: "tcp6 rst", pkt: ack6.with(func(p *fpkt) { p.flags = tcpRST }), spec: dnat6, want: wantVIP},
		{name: "reply tcp4 syn ack", pkt: reply4.with(func(p *fpkt) { p.flags = tcpSYN | tcpACK }), spec: snat4, want: wantReply},
		{name: "reply tcp4 fin", pkt: reply4.with(func(p *fpkt) { p.flags = tcpFIN | tcpACK }), spec: snat4, want: wantReply},
		{name: "reply tcp6 rst", pkt: reply6.with(func(p *fpkt) { p.flags = tcpRST }), spec: snat6, want: wantReply},

		// SCTP is a service's protocol the fast path does not rewrite.
		{name: "sctp4 with entry", pkt: fpkt{src: client4, dst: vip4, proto: sctp, sport: cport, dport: 5000, payload: payloadOf(16)},
			spec: flowSpec{op: FlowSetDst, dst: real4, dport: 5000}, want: wantVIP},

		{name: "no entry tcp4", pkt: ack4, noFlow: true, want: wantVIP},
		{name: "no entry udp6", pkt: udp6, noFlow: true, want: wantVIP},
		{name: "no entry reply tcp4", pkt: reply4, noFlow: true, want: wantReply},

		{name: "tcp4 802.1Q", pkt: ack4.with(func(p *fpkt) { p.vlans = []uint16{10} }), spec: dnat4, want: wantVIP},
		{name: "udp6 802.1ad", pkt: udp6.with(func(p *fpkt) { p.vlans = []uint16{100, 10} }), spec: tun6, want: wantVIP},
		{name: "reply tcp4 802.1Q", pkt: reply4.with(func(p *fpkt) { p.vlans = []uint16{7} }), spec: snat4, want: wantReply},
		{name: "udp4 first fragment", pkt: udp4.with(func(p *fpkt) { p.moreFrags = true }), spec: dnat4U, want: wantVIP},
		{name: "tcp4 ttl 1", pkt: ack4.with(func(p *fpkt) { p.ttl = 1 }), spec: dnat4, want: wantVIP},
		{name: "reply tcp4 ttl 1", pkt: reply4.with(func(p *fpkt) { p.ttl = 1 }), spec: snat4, want: wantReply},
		{name: "tcp6 hop limit 1", pkt: ack6.with(func(p *fpkt) { p.ttl = 1 }), spec: tun6, want: wantVIP},
		{name: "tcp6 destination options", pkt: ack6.with(func(p *fpkt) { p.v6Ext = []uint8{extDstOpts} }), spec: dnat6, want: wantVIP},
		{name: "udp6 hop-by-hop", pkt: udp6.with(func(p *fpkt) { p.v6Ext = []uint8{extHopByHop} }), spec: tun6, want: wantVIP},
		{name: "tcp6 atomic fragment header", pkt: ack6.with(func(p *fpkt) { p.v6Ext = []uint8{extFragment} }), spec: dnat6, want: wantVIP},

		// A translated connection's segments with TCP options: SACK blocks
		// are the workers' to translate (packet.AdjustTCP).
		{name: "seq-adj tcp4 sack", pkt: ack4.with(func(p *fpkt) { p.tcpOpts = sackOpts }), want: wantVIP,
			spec: dnat4.with(func(fs *flowSpec) { fs.ackAdd = synProxyDelta })},
		{name: "seq-adj tcp6 sack", pkt: ack6.with(func(p *fpkt) { p.tcpOpts = sackOpts }), want: wantVIP,
			spec: flowSpec{op: FlowFullNAT, src: director6, sport: lport, dst: real6, dport: rport6, ackAdd: synProxyDelta}},
		// Timestamps alone pass only in Linux's layout (NOP, NOP, TS):
		// other options of that length go to the workers.
		{name: "seq-adj reply tcp4 timestamps not after two nops", pkt: reply4.with(func(p *fpkt) {
			p.tcpOpts = []layers.TCPOption{timestampOpts[2], nopOpt, nopOpt}
		}), want: wantReply, spec: snat4.with(func(fs *flowSpec) { fs.seqAdd = minus(synProxyDelta) })},
		{name: "seq-adj reply tcp4 timestamps and sack", pkt: reply4.with(func(p *fpkt) { p.tcpOpts = append(append([]layers.TCPOption{}, timestampOpts...), sackOpts...) }),
			want: wantReply, spec: snat4.with(func(fs *flowSpec) { fs.seqAdd = minus(synProxyDelta) })},
		{name: "seq-adj reply tcp6 window shift only, nop", pkt: reply6.with(func(p *fpkt) { p.tcpOpts = []layers.TCPOption{nopOpt} }),
			want: wantReply, spec: snat6.with(func(fs *flowSpec) { fs.winShift = 2 })},
		{name: "seq-adj tcp4 syn", pkt: ack4.with(func(p *fpkt) { p.flags = tcpSYN }), want: wantVIP,
			spec: dnat4.with(func(fs *flowSpec) { fs.ackAdd = synProxyDelta })},
		{name: "udp4 idle past its timeout", pkt: udp4, want: wantVIP,
			spec: flowSpec{op: FlowSetDst, dst: real4, dport: 8080, idle: 500 * time.Millisecond}},
		{name: "tun udp4 max l3 len below packet", pkt: udp4, want: wantVIP,
			spec: flowSpec{op: FlowEncap, src: director4, dst: real4, maxL3Len: packet.IPv4HeaderLen + packet.UDPHeaderLen + 37 - 1}},
		{name: "tun tcp6 max l3 len below packet", pkt: ack6, want: wantVIP,
			spec: flowSpec{op: FlowEncap, src: director6, dst: real6, maxL3Len: packet.IPv6HeaderLen + packet.TCPHeaderLen - 1}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.pkt.frame(t)
			f := c.pkt.flow(t)
			a := c.spec.action(t, in, uint32(100+i))
			if !c.noFlow {
				if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.DeleteFlow(nil, f); err != nil {
						t.Error(err)
					}
				})
			}
			checkSteered(t, s, in, c.want)
			if !c.noFlow {
				if seen, ok := s.FlowLastSeen(nil, f); !ok || seen != a.Seen {
					t.Errorf("FlowLastSeen = %d, %v; want the installed %d: the entry was used", seen, ok, a.Seen)
				}
				if st := destCounters(t, s, a.DestID); st != (DestCounters{}) {
					t.Errorf("FastDestCounters(%d) = %+v, want zero", a.DestID, st)
				}
			}
		})
	}
}

// checkSteered runs frame and expects it steered to the workers as the
// program did before the fast path: counted as v, dropped (no socket), not
// modified.
func checkSteered(t *testing.T, s *Steering, frame []byte, v verdict) {
	t.Helper()
	action, out, delta := runOut(t, s, frame)
	if want := actionOf(v); action != want {
		t.Errorf("action %d, want %d: steered, no socket registered", action, want)
	}
	if want := expected(v); delta != want {
		t.Errorf("counters moved by %+v, want %+v", delta, want)
	}
	if !bytes.Equal(out, frame) {
		t.Errorf("steered frame was modified: %s", diffBytes(out, frame))
	}
}

// checkForwarded runs frame and expects the fast path to forward it.
func checkForwarded(t *testing.T, s *Steering, frame []byte) {
	t.Helper()
	action, _, delta := runOut(t, s, frame)
	if action != xdpRedirect || delta != (Counters{FastForwarded: 1}) {
		t.Errorf("action %d, counters moved by %+v, want XDP_REDIRECT and one fast-forwarded packet", action, delta)
	}
}

// TestFastPathLifecycle walks one flow through the control plane's
// operations: switching the fast path off and on, invalidation, stale and
// fresh entries, deletion.
func TestFastPathLifecycle(t *testing.T) {
	s := newTestSteering(t)
	in := ack4.frame(t)
	f := ack4.flow(t)
	const destID = 7
	a := dnat4.action(t, in, destID)

	if s.FastPathEnabled() {
		t.Fatal("fast path on after load")
	}
	if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
		t.Fatal(err)
	}
	if n := s.FlowCount(); n != 1 {
		t.Errorf("FlowCount %d after one install, want 1", n)
	}
	t.Run("off after load", func(t *testing.T) { checkSteered(t, s, in, wantVIP) })

	if err := s.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	if !s.FastPathEnabled() {
		t.Fatal("FastPathEnabled false after SetFastPath(true)")
	}
	t.Run("on", func(t *testing.T) { checkForwarded(t, s, in) })
	t.Run("on again", func(t *testing.T) { checkForwarded(t, s, in) })
	if got := destCounters(t, s, destID); got != (DestCounters{InPkts: 2, InBytes: 2 * uint64(len(in))}) {
		t.Errorf("FastDestCounters after two packets: %+v", got)
	}
	// A reclaimed real server's id starts again from zero.
	if err := s.ResetFastDestCounters(destID); err != nil {
		t.Fatal(err)
	}
	if got := destCounters(t, s, destID); got != (DestCounters{}) {
		t.Errorf("FastDestCounters after the reset: %+v, want zero", got)
	}
	if err := s.ResetFastDestCounters(FastDests); err != nil {
		t.Errorf("ResetFastDestCounters of an id without counters: %v", err)
	}

	if err := s.SetFastPath(false); err != nil {
		t.Fatal(err)
	}
	t.Run("off", func(t *testing.T) { checkSteered(t, s, in, wantVIP) })
	if err := s.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	t.Run("on after off", func(t *testing.T) { checkForwarded(t, s, in) })

	oldGen := s.FlowGeneration()
	gen, err := s.InvalidateFlows()
	if err != nil {
		t.Fatal(err)
	}
	if gen == oldGen || s.FlowGeneration() != gen {
		t.Fatalf("InvalidateFlows: generation %d -> %d, FlowGeneration %d", oldGen, gen, s.FlowGeneration())
	}
	t.Run("stale after invalidation", func(t *testing.T) { checkSteered(t, s, in, wantVIP) })
	if err := s.InstallFlow(nil, f, &a, oldGen); err != nil {
		t.Fatal(err)
	}
	t.Run("reinstalled with old generation", func(t *testing.T) { checkSteered(t, s, in, wantVIP) })
	if err := s.InstallFlow(nil, f, &a, s.FlowGeneration()); err != nil {
		t.Fatal(err)
	}
	t.Run("reinstalled", func(t *testing.T) { checkForwarded(t, s, in) })

	// Switching on again keeps the generation: valid entries stay valid.
	if err := s.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	t.Run("switched on twice", func(t *testing.T) { checkForwarded(t, s, in) })

	if err := s.DeleteFlow(nil, f); err != nil {
		t.Fatal(err)
	}
	t.Run("deleted", func(t *testing.T) { checkSteered(t, s, in, wantVIP) })
	if _, ok := s.FlowLastSeen(nil, f); ok {
		t.Error("FlowLastSeen ok after DeleteFlow")
	}
	if err := s.DeleteFlow(nil, f); err != nil {
		t.Errorf("DeleteFlow of a missing flow: %v", err)
	}
	if n := s.FlowCount(); n != 0 {
		t.Errorf("FlowCount %d after delete, want 0", n)
	}

	bad := a
	bad.DestID = FastDests
	if err := s.InstallFlow(nil, f, &bad, s.FlowGeneration()); err == nil {
		t.Error("InstallFlow accepted a real server id without counters")
	}
	bad = a
	bad.Ifindex = 0
	if err := s.InstallFlow(nil, f, &bad, s.FlowGeneration()); err == nil {
		t.Error("InstallFlow accepted ifindex 0")
	}
}
