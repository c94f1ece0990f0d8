package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

var (
	clientIP6 = netip.MustParseAddr("2001:db8::1")
	vipIP6    = netip.MustParseAddr("2001:db8::100")
	realIP6   = netip.MustParseAddr("2001:db8:1::1")
	localIP6  = netip.MustParseAddr("2001:db8:1::250")
)

// spLab is a test worker whose one service (port 80 -> real server port
// 8080) is of family 4 or 6 and answers handshakes with SYN cookies.
type spLab struct {
	w                       *worker
	st                      *snapshot
	client, vip, real, locl netip.Addr
	fwd                     lvs.Fwd
}

func newSPLab(t testing.TB, fwd lvs.Fwd, v6 bool) *spLab {
	t.Helper()
	w := testWorker(t, fwd)
	w.synKey = packet.SynCookieKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	// Frames the worker queues itself (held segments) land in w.tx; a
	// socket that is never used stands for the real-server side's.
	w.socks[1] = &xsk.Socket{}
	w.tx = make([][]xsk.Desc, 2)
	l := &spLab{w: w, client: clientIP, vip: vipIP, real: realIP, locl: localIP, fwd: fwd}
	if v6 {
		l.client, l.vip, l.real, l.locl = clientIP6, vipIP6, realIP6, localIP6
		d := w.d
		d.res.table.Store(&map[inet.Addr]NextHop{
			inet.AddrFromNetip(realIP6): {Iface: 1, SrcMAC: [6]byte(dirMAC1), DstMAC: [6]byte(realMAC), MTU: 1500},
		})
		s, _ := sched.New("rr", 0)
		dst := &Dest{Dest: sched.NewDest(inet.AddrFromNetip(realIP6), 8080, 1), Proto: 6, Fwd: fwd, stats: newDestStats(1)}
		svc := &Service{Name: "web6", VIP: inet.AddrFromNetip(vipIP6), Port: 80, Proto: 6, Fwd: fwd, Sched: s, Dests: []*Dest{dst}}
		if fwd == lvs.FwdFullNAT {
			svc.LocalAddrs = []inet.Addr{inet.AddrFromNetip(localIP6)}
		}
		s.Update([]*sched.Dest{dst.Dest})
		d.state.Store(&snapshot{
			byKey:    map[serviceKey]*Service{{svc.VIP, 80, 6}: svc},
			services: []*Service{svc},
			dests:    []*Dest{dst},
		})
	}
	l.st = w.d.state.Load()
	return l
}

// seg is a TCP segment to build with gopacket.
type seg struct {
	srcMAC, dstMAC      net.HardwareAddr
	src, dst            netip.Addr
	sport, dport        uint16
	seq, ack            uint32
	syn, ackf, rst, psh bool
	fin                 bool
	win                 uint16
	opts                []layers.TCPOption
	payload             []byte
}

func (s seg) bytes(t testing.TB) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: s.seq, Ack: s.ack,
		SYN: s.syn, ACK: s.ackf, RST: s.rst, PSH: s.psh, FIN: s.fin, Window: s.win, Options: s.opts}
	eth := &layers.Ethernet{SrcMAC: s.srcMAC, DstMAC: s.dstMAC}
	var ip gopacket.SerializableLayer
	if s.src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Id: 777, Protocol: layers.IPProtocolTCP, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
		tcp.SetNetworkLayerForChecksum(v4)
		ip = v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
		tcp.SetNetworkLayerForChecksum(v6)
		ip = v6
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// got is a frame the worker produced, decoded by gopacket.
type got struct {
	eth      *layers.Ethernet
	src, dst netip.Addr
	ttl      uint8
	tcp      *layers.TCP
}

// decodeOut decodes frame and checks, with gopacket as the oracle, that its
// lengths and checksums are right: serialised again with lengths and
// checksums computed by gopacket, it must be the same bytes.
func decodeOut(t *testing.T, frame []byte) got {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var g got
	g.eth, _ = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	g.tcp, _ = pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	var ipl gopacket.SerializableLayer
	if v4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		g.src, _ = netip.AddrFromSlice(v4.SrcIP)
		g.dst, _ = netip.AddrFromSlice(v4.DstIP)
		g.ttl = v4.TTL
		g.tcp.SetNetworkLayerForChecksum(v4)
		ipl = v4
	} else if v6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		g.src, _ = netip.AddrFromSlice(v6.SrcIP)
		g.dst, _ = netip.AddrFromSlice(v6.DstIP)
		g.ttl = v6.HopLimit
		g.tcp.SetNetworkLayerForChecksum(v6)
		ipl = v6
	}
	if g.eth == nil || ipl == nil || g.tcp == nil {
		t.Fatalf("output does not decode as Ethernet/IP/TCP: %v", pkt)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		g.eth, ipl, g.tcp, gopacket.Payload(g.tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	if want := buf.Bytes(); len(want) < len(frame) || !bytes.Equal(want[:len(frame)], frame) {
		t.Fatalf("frame is not what gopacket makes of it (lengths or checksums):\n got  %x\n want %x", frame, want)
	}
	return g
}

// run puts frame into slot i and processes it as received on inIface.
func (l *spLab) run(t *testing.T, i int, frame []byte, inIface int, now int64) (int, bool, []byte) {
	t.Helper()
	desc := put(l.w, i, frame)
	out, ok := l.w.process(&desc, inIface, now, l.st, true)
	return out, ok, l.w.umem.Bytes(desc.Addr, desc.Len)
}

func (l *spLab) cookie(now int64, isn uint32, sport uint16, o packet.SynOptions) uint32 {
	period := packet.SynCookiePeriod(uint64(now + monoOffset))
	return packet.SynCookie(&l.w.synKey, inet.AddrFromNetip(l.client), inet.AddrFromNetip(l.vip), sport, 80, isn, period, o)
}

func optionsOf(tcp *layers.TCP) []layers.TCPOption {
	var out []layers.TCPOption
	for _, o := range tcp.Options {
		if o.OptionType != layers.TCPOptionKindEndList {
			out = append(out, layers.TCPOption{OptionType: o.OptionType, OptionLength: o.OptionLength, OptionData: o.OptionData})
		}
	}
	return out
}

func sameOptions(a, b []layers.TCPOption) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].OptionType != b[i].OptionType || a[i].OptionLength != b[i].OptionLength || !bytes.Equal(a[i].OptionData, b[i].OptionData) {
			return false
		}
	}
	return true
}

func opt(kind layers.TCPOptionKind, data ...byte) layers.TCPOption {
	o := layers.TCPOption{OptionType: kind, OptionLength: uint8(len(data) + 2), OptionData: data}
	if kind == layers.TCPOptionKindNop {
		o.OptionLength = 1
	}
	return o
}

// TestSynProxyHandshake runs a proxied connection through the worker,
// frames in and frames out: the client's cookie ACK becomes the SYN to the
// real server, the server's SYN-ACK the ACK back to it, and data both ways
// is translated (sequence numbers, SACK blocks, window).
func TestSynProxyHandshake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fwd      lvs.Fwd
		v6       bool
		o        packet.SynOptions
		serverWS int // -1: none
	}{
		{"nat4", lvs.FwdNAT, false, packet.SynOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}, 9},
		{"fullnat4", lvs.FwdFullNAT, false, packet.SynOptions{MSS: 1440, WScale: 10, HasWScale: true, SACK: true}, 5},
		{"nat6", lvs.FwdNAT, true, packet.SynOptions{MSS: 1220, SACK: true}, 7},
		{"fullnat6", lvs.FwdFullNAT, true, packet.SynOptions{MSS: 1440, WScale: 2, HasWScale: true}, -1},
		{"nat4 bare", lvs.FwdNAT, false, packet.SynOptions{MSS: 536}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newSPLab(t, tc.fwd, tc.v6)
			w := l.w
			now := int64(time.Second)
			const isn, sisn = uint32(0xfffffff0), uint32(0x12345678) // the client's wraps
			const cport = 40000
			cookie := l.cookie(now, isn, cport, tc.o)
			client := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: cport, dport: 80}

			// 1. The handshake ACK becomes the SYN to the real server.
			ack := client
			ack.seq, ack.ack, ack.ackf, ack.win = isn+1, cookie+1, true, 502
			out, ok, frame := l.run(t, 0, ack.bytes(t), 0, now)
			if !ok || out != 1 {
				t.Fatalf("cookie ACK: out=%d ok=%v drops %v rejected %d", out, ok, dropSummary(w), w.ctr.SynCookiesRejected.Load())
			}
			g := decodeOut(t, frame)
			wantSrc, lport := l.client, uint16(cport)
			if tc.fwd == lvs.FwdFullNAT {
				wantSrc, lport = l.locl, uint16(g.tcp.SrcPort)
			}
			if g.eth.SrcMAC.String() != dirMAC1.String() || g.eth.DstMAC.String() != realMAC.String() ||
				g.src != wantSrc || g.dst != l.real || uint16(g.tcp.SrcPort) != lport || g.tcp.DstPort != 8080 {
				t.Errorf("SYN %s %s:%d -> %s %s:%d, want %s %s -> %s %s:8080", g.eth.SrcMAC, g.src, g.tcp.SrcPort,
					g.eth.DstMAC, g.dst, g.tcp.DstPort, dirMAC1, wantSrc, realMAC, l.real)
			}
			if !g.tcp.SYN || g.tcp.ACK || g.tcp.RST || g.tcp.FIN || g.tcp.PSH || g.tcp.Seq != isn || g.tcp.Ack != 0 || len(g.tcp.Payload) != 0 {
				t.Errorf("SYN: flags/seq/ack wrong: %+v", g.tcp)
			}
			if g.ttl != 63 {
				t.Errorf("SYN ttl %d, want 63", g.ttl)
			}
			wantOpts := []layers.TCPOption{opt(layers.TCPOptionKindMSS, byte(tc.o.MSS>>8), byte(tc.o.MSS))}
			if tc.o.HasWScale {
				wantOpts = append(wantOpts, opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindWindowScale, tc.o.WScale))
			}
			if tc.o.SACK {
				wantOpts = append(wantOpts, opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindSACKPermitted))
			}
			if gotOpts := optionsOf(g.tcp); !sameOptions(gotOpts, wantOpts) {
				t.Errorf("SYN options %v, want %v", gotOpts, wantOpts)
			}
			wantWin := uint16(502)
			if tc.o.HasWScale {
				wantWin = uint16(min(502<<tc.o.WScale, 0xffff))
			}
			if g.tcp.Window != wantWin {
				t.Errorf("SYN window %d, want %d", g.tcp.Window, wantWin)
			}
			if w.ctr.SynCookiesAccepted.Load() != 1 || w.ct.Len() != 1 {
				t.Fatalf("accepted %d, connections %d, want 1 and 1", w.ctr.SynCookiesAccepted.Load(), w.ct.Len())
			}

			// 2. While the server's handshake is pending, the client's
			// first data segment is held, a pure ACK dropped.
			data := client
			data.seq, data.ack, data.ackf, data.psh, data.win, data.payload = isn+1, cookie+1, true, true, 502, []byte("GET /")
			if out, ok, _ := l.run(t, 1, data.bytes(t), 0, now+1); !ok || out != outKept || w.nheld != 1 {
				t.Fatalf("data while pending: out=%d ok=%v held %d, want held", out, ok, w.nheld)
			}
			if _, ok, _ := l.run(t, 6, ack.bytes(t), 0, now+1); ok || w.ctr.SynProxyDropped.Load() != 1 {
				t.Fatalf("ACK again while pending: ok=%v, dropped %d, want dropped", ok, w.ctr.SynProxyDropped.Load())
			}
			more := data
			more.seq, more.payload = isn+6, []byte(" HTTP")
			if out, ok, _ := l.run(t, 7, more.bytes(t), 0, now+1); !ok || out != outKept || w.nheld != 2 {
				t.Fatalf("second data segment while pending: out=%d ok=%v held %d, want held", out, ok, w.nheld)
			}
			if _, ok, _ := l.run(t, 8, data.bytes(t), 0, now+1); ok || w.nheld != 2 || w.ctr.SynProxyDropped.Load() != 2 {
				t.Fatalf("retransmission while pending: ok=%v held %d dropped %d, want dropped", ok, w.nheld, w.ctr.SynProxyDropped.Load())
			}

			// 3. The server's SYN-ACK becomes the ACK back to it.
			server := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: wantSrc, sport: 8080, dport: lport}
			synack := server
			synack.seq, synack.ack, synack.syn, synack.ackf, synack.win = sisn, isn+1, true, true, 65160
			synack.opts = []layers.TCPOption{opt(layers.TCPOptionKindMSS, 0x05, 0x78), opt(layers.TCPOptionKindSACKPermitted)}
			if tc.serverWS >= 0 {
				synack.opts = append(synack.opts, opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindWindowScale, byte(tc.serverWS)))
			}
			// The held request answers it, translated; no bare ACK.
			if _, ok, _ := l.run(t, 2, synack.bytes(t), 1, now+2); ok {
				t.Fatalf("SYN-ACK with a held request: a bare ACK was sent too")
			}
			if len(w.tx[1]) != 2 || w.nheld != 0 {
				t.Fatalf("after the SYN-ACK: %d frames queued toward the real server, %d held; want 2 and 0 (drops %v)", len(w.tx[1]), w.nheld, dropSummary(w))
			}
			for k, want := range []string{"GET /", " HTTP"} {
				g = decodeOut(t, w.umem.Bytes(w.tx[1][k].Addr, w.tx[1][k].Len))
				wantSeq := isn + 1 + uint32(5*k)
				if g.src != wantSrc || g.dst != l.real || g.tcp.DstPort != 8080 || g.tcp.Seq != wantSeq || g.tcp.Ack != sisn+1 || string(g.tcp.Payload) != want {
					t.Errorf("held segment %d %s -> %s:%d seq %d ack %d %q, want %s -> %s:8080 seq %d ack %d %q", k, g.src, g.dst, g.tcp.DstPort,
						g.tcp.Seq, g.tcp.Ack, g.tcp.Payload, wantSrc, l.real, wantSeq, sisn+1, want)
				}
			}
			w.tx[1] = w.tx[1][:0]
			// The SYN-ACK again (the request was lost): the bare ACK.
			out, ok, frame = l.run(t, 2, synack.bytes(t), 1, now+2)
			if !ok || out != 1 {
				t.Fatalf("SYN-ACK: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			g = decodeOut(t, frame)
			if g.eth.SrcMAC.String() != dirMAC1.String() || g.eth.DstMAC.String() != realMAC.String() ||
				g.src != wantSrc || g.dst != l.real || uint16(g.tcp.SrcPort) != lport || g.tcp.DstPort != 8080 {
				t.Errorf("ACK %s %s:%d -> %s %s:%d, want %s %s:%d -> %s %s:8080", g.eth.SrcMAC, g.src, g.tcp.SrcPort,
					g.eth.DstMAC, g.dst, g.tcp.DstPort, dirMAC1, wantSrc, lport, realMAC, l.real)
			}
			if g.tcp.SYN || !g.tcp.ACK || g.tcp.RST || g.tcp.Seq != isn+1 || g.tcp.Ack != sisn+1 || g.tcp.Window != 502 ||
				len(g.tcp.Options) != 0 || len(g.tcp.Payload) != 0 || g.ttl != 64 {
				t.Errorf("ACK to the server: %+v ttl %d; want seq %d ack %d win 502, no options, ttl 64", g.tcp, g.ttl, isn+1, sisn+1)
			}
			var c *conntrack.Conn
			w.ct.Walk(func(x *conntrack.Conn) bool { c = x; return false })
			cp := w.path(c)
			if c.State != conntrack.StateEstablished || cp.flags&flagSynPending != 0 || cp.flags&flagSynProxy == 0 {
				t.Fatalf("connection %s flags %#x, want ESTABLISHED, proxied, not pending", c.State, cp.flags)
			}
			wantShift := int8(0)
			if tc.o.HasWScale {
				wantShift = int8(max(tc.serverWS, 0)) - packet.SynProxyWScale
			}
			if cp.seqDelta != sisn-cookie || cp.winShift != wantShift {
				t.Errorf("seqDelta %d winShift %d, want %d %d", cp.seqDelta, cp.winShift, sisn-cookie, wantShift)
			}

			// 4. Data from the client: ack and SACK blocks move to the
			// server's sequence space.
			data.opts = []layers.TCPOption{opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindNop),
				opt(layers.TCPOptionKindSACK, be32(cookie+100, cookie+200)...)}
			out, ok, frame = l.run(t, 3, data.bytes(t), 0, now+3)
			if !ok || out != 1 {
				t.Fatalf("client data: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			g = decodeOut(t, frame)
			if g.dst != l.real || g.tcp.Seq != isn+1 || g.tcp.Ack != sisn+1 || string(g.tcp.Payload) != "GET /" || g.tcp.Window != 502 {
				t.Errorf("client data to the server: %s seq %d ack %d %q win %d, want seq %d ack %d", g.dst, g.tcp.Seq, g.tcp.Ack, g.tcp.Payload, g.tcp.Window, isn+1, sisn+1)
			}
			if sack := optionsOf(g.tcp)[2]; !bytes.Equal(sack.OptionData, be32(sisn+100, sisn+200)) {
				t.Errorf("SACK block %x, want %x", sack.OptionData, be32(sisn+100, sisn+200))
			}

			// 5. Data from the server: seq moves to the cookie's space,
			// the window is rescaled.
			reply := server
			reply.seq, reply.ack, reply.ackf, reply.psh, reply.win, reply.payload = sisn+1, isn+6, true, true, 100, []byte("200 OK")
			out, ok, frame = l.run(t, 4, reply.bytes(t), 1, now+4)
			if !ok || out != 0 {
				t.Fatalf("server data: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			g = decodeOut(t, frame)
			win := uint32(100)
			if wantShift > 0 {
				win <<= wantShift
			} else {
				win >>= -wantShift
			}
			if g.src != l.vip || g.dst != l.client || g.tcp.SrcPort != 80 || g.tcp.DstPort != cport ||
				g.tcp.Seq != cookie+1 || g.tcp.Ack != isn+6 || uint32(g.tcp.Window) != win || g.eth.DstMAC.String() != clientMAC.String() {
				t.Errorf("server data to the client: %s:%d -> %s:%d seq %d ack %d win %d, want %s:80 -> %s:%d seq %d ack %d win %d",
					g.src, g.tcp.SrcPort, g.dst, g.tcp.DstPort, g.tcp.Seq, g.tcp.Ack, g.tcp.Window, l.vip, l.client, cport, cookie+1, isn+6, win)
			}

			// 6. The server's SYN-ACK again (our ACK was lost): the ACK
			// again, nothing to the client.
			out, ok, frame = l.run(t, 5, synack.bytes(t), 1, now+5)
			if !ok || out != 1 {
				t.Fatalf("SYN-ACK again: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			if g = decodeOut(t, frame); g.dst != l.real || !g.tcp.ACK || g.tcp.SYN || g.tcp.Seq != isn+1 || g.tcp.Ack != sisn+1 {
				t.Errorf("answer to the SYN-ACK again: %s %+v", g.dst, g.tcp)
			}
			if w.ctr.SynCookiesRejected.Load() != 0 {
				t.Errorf("rejected %d cookies, want 0", w.ctr.SynCookiesRejected.Load())
			}
		})
	}
}

func be32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// TestSynProxyRejectsAndRecovers covers the other ways of a proxied
// handshake: a wrong cookie, a lost SYN sent again on the client's
// retransmission, the real server refusing, an RST from the client, and a
// real server that is not NAT.
func TestSynProxyRejectsAndRecovers(t *testing.T) {
	l := newSPLab(t, lvs.FwdNAT, false)
	w := l.w
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460, WScale: 7, HasWScale: true}
	const isn = 1000
	client := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: 40000, dport: 80, ackf: true, win: 100}
	cookie := l.cookie(now, isn, 40000, o)

	bad := client
	bad.seq, bad.ack = isn+1, cookie+2
	if _, ok, _ := l.run(t, 0, bad.bytes(t), 0, now); ok || w.ctr.SynCookiesRejected.Load() != 1 || w.ct.Len() != 0 {
		t.Fatalf("wrong cookie: ok=%v rejected %d conns %d", ok, w.ctr.SynCookiesRejected.Load(), w.ct.Len())
	}
	if w.ctr.Drops[DropNoConn].Load() != 0 {
		t.Errorf("a wrong cookie counted as no_conn too")
	}
	// The same cookie a little later (another port) is still fine; a
	// cookie two periods old is not.
	old := client
	old.sport = 40001
	period := packet.SynCookiePeriod(uint64(now+monoOffset)) - 2 // two cookie periods earlier
	old.seq, old.ack = isn+1, packet.SynCookie(&w.synKey, inet.AddrFromNetip(l.client), inet.AddrFromNetip(l.vip), 40001, 80, isn, period, o)+1
	if _, ok, _ := l.run(t, 0, old.bytes(t), 0, now); ok || w.ctr.SynCookiesRejected.Load() != 2 {
		t.Fatalf("expired cookie: ok=%v rejected %d", ok, w.ctr.SynCookiesRejected.Load())
	}

	// The SYN to the real server is lost (its next hop is unknown): the
	// client's retransmission, later, sends it again.
	table := w.d.res.table.Load()
	w.d.res.table.Store(&map[inet.Addr]NextHop{})
	good := client
	good.seq, good.ack = isn+1, cookie+1
	if _, ok, _ := l.run(t, 0, good.bytes(t), 0, now); ok || w.ct.Len() != 1 || w.ctr.Drops[DropNeighMiss].Load() != 1 {
		t.Fatalf("SYN without next hop: ok=%v conns %d drops %v", ok, w.ct.Len(), dropSummary(w))
	}
	w.d.res.table.Store(table)
	if _, ok, _ := l.run(t, 1, good.bytes(t), 0, now+int64(time.Millisecond)); ok || w.ctr.SynProxyDropped.Load() != 1 {
		t.Fatalf("retransmission 1 ms later: ok=%v dropped %d, want dropped", ok, w.ctr.SynProxyDropped.Load())
	}
	out, ok, frame := l.run(t, 2, good.bytes(t), 0, now+int64(300*time.Millisecond))
	if !ok || out != 1 {
		t.Fatalf("retransmission 300 ms later: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	if g := decodeOut(t, frame); !g.tcp.SYN || g.tcp.Seq != isn || g.dst != l.real {
		t.Fatalf("retransmission did not become the SYN: %s %+v", g.dst, g.tcp)
	}

	// The real server refuses: the client gets the RST at the sequence
	// number it expects, and the connection is gone.
	rst := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: l.client, sport: 8080, dport: 40000, rst: true, ackf: true, ack: isn + 1}
	out, ok, frame = l.run(t, 3, rst.bytes(t), 1, now+int64(301*time.Millisecond))
	if !ok || out != 0 {
		t.Fatalf("server RST: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	if g := decodeOut(t, frame); !g.tcp.RST || g.tcp.Seq != cookie+1 || g.tcp.Ack != isn+1 || g.src != l.vip || g.tcp.SrcPort != 80 {
		t.Errorf("RST to the client: %s:%d %+v, want seq %d", g.src, g.tcp.SrcPort, g.tcp, cookie+1)
	}
	if w.ct.Len() != 0 {
		t.Errorf("%d connections after the server's RST, want 0", w.ct.Len())
	}
	if n := l.st.dests[0].ActiveConns() + l.st.dests[0].InactiveConns(); n != 0 {
		t.Errorf("real server counts %d connections after the RST, want 0", n)
	}

	// A client RST while pending removes the connection.
	if _, ok, _ := l.run(t, 0, good.bytes(t), 0, now+int64(time.Second)); !ok || w.ct.Len() != 1 {
		t.Fatalf("cookie ACK again: ok=%v conns %d", ok, w.ct.Len())
	}
	crst := client
	crst.ackf, crst.rst, crst.seq = false, true, isn+1
	if _, ok, _ := l.run(t, 1, crst.bytes(t), 0, now+int64(time.Second)+1); ok || w.ct.Len() != 0 {
		t.Fatalf("client RST while pending: ok=%v conns %d", ok, w.ct.Len())
	}

	// A held request whose real server never answers is recycled.
	if _, ok, _ := l.run(t, 0, good.bytes(t), 0, now+int64(time.Second)+2); !ok || w.ct.Len() != 1 {
		t.Fatalf("cookie ACK again: ok=%v conns %d", ok, w.ct.Len())
	}
	req := good
	req.payload = []byte("GET /")
	if out, ok, _ := l.run(t, 1, req.bytes(t), 0, now+int64(time.Second)+3); !ok || out != outKept || w.nheld != 1 {
		t.Fatalf("request while pending: out=%d ok=%v held %d", out, ok, w.nheld)
	}
	dropped, free := w.ctr.SynProxyDropped.Load(), len(w.free)
	w.expireHeld(now + int64(time.Second) + 3 + int64(synHeldFor))
	if w.nheld != 0 || len(w.free) != free+1 || w.ctr.SynProxyDropped.Load() != dropped+1 {
		t.Errorf("held request past its time: held %d, frames freed %d, dropped %d; want 0, 1, 1", w.nheld, len(w.free)-free, w.ctr.SynProxyDropped.Load()-dropped)
	}
	crst.seq = isn + 1
	l.run(t, 1, crst.bytes(t), 0, now+int64(time.Second)+4)

	// A DR real server cannot be proxied.
	l.st.dests[0].Fwd = lvs.FwdDR
	if _, ok, _ := l.run(t, 0, good.bytes(t), 0, now+int64(2*time.Second)); ok || w.ct.Len() != 0 || w.ctr.Drops[DropUnsupported].Load() != 1 {
		t.Fatalf("DR real server: ok=%v conns %d drops %v", ok, w.ct.Len(), dropSummary(w))
	}
	l.st.dests[0].Fwd = lvs.FwdNAT

	// syn_proxy: off: the ACK is no_conn, as before.
	l.st.services[0].SynProxy = SynProxyOff
	if _, ok, _ := l.run(t, 0, good.bytes(t), 0, now+int64(3*time.Second)); ok || w.ctr.Drops[DropNoConn].Load() != 1 {
		t.Fatalf("syn_proxy off: ok=%v drops %v", ok, dropSummary(w))
	}
}

// TestSynProxyPortReuse: a cookie ACK on the tuple of a connection in
// TIME_WAIT (the client reused its port; its SYN never reached a worker)
// opens a new proxied connection; the old connection's last ACK does not.
func TestSynProxyPortReuse(t *testing.T) {
	l := newSPLab(t, lvs.FwdNAT, false)
	w := l.w
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460}
	ack := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: 40000, dport: 80, ackf: true, seq: 6, ack: l.cookie(now, 5, 40000, o) + 1}
	if _, ok, _ := l.run(t, 0, ack.bytes(t), 0, now); !ok {
		t.Fatalf("cookie ACK dropped: %v", dropSummary(w))
	}
	synack := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: l.client, sport: 8080, dport: 40000, syn: true, ackf: true, seq: 77, ack: 6}
	if _, ok, _ := l.run(t, 1, synack.bytes(t), 1, now+1); !ok {
		t.Fatalf("SYN-ACK dropped: %v", dropSummary(w))
	}
	var c *conntrack.Conn
	w.ct.Walk(func(x *conntrack.Conn) bool { c = x; return false })
	w.ct.Restore(c, conntrack.StateTimeWait, now+int64(time.Minute))
	last := ack
	last.seq, last.ack = 1000, 2000 // the old connection's last ACK
	if out, ok, _ := l.run(t, 2, last.bytes(t), 0, now+2); !ok || out != 1 || w.ctr.SynCookiesAccepted.Load() != 1 {
		t.Fatalf("last ACK in TIME_WAIT: out=%d ok=%v accepted %d, want forwarded on the old connection", out, ok, w.ctr.SynCookiesAccepted.Load())
	}
	again := ack
	again.seq, again.ack = 9001, l.cookie(now, 9000, 40000, o)+1
	out, ok, frame := l.run(t, 3, again.bytes(t), 0, now+3)
	if !ok || out != 1 || w.ctr.SynCookiesAccepted.Load() != 2 || w.ct.Len() != 1 {
		t.Fatalf("cookie ACK on a TIME_WAIT tuple: out=%d ok=%v accepted %d conns %d", out, ok, w.ctr.SynCookiesAccepted.Load(), w.ct.Len())
	}
	if g := decodeOut(t, frame); !g.tcp.SYN || g.tcp.Seq != 9000 {
		t.Errorf("port reuse: %+v, want the SYN with seq 9000", g.tcp)
	}
}

// TestSynProxyNotSynced: a sync master does not send proxied connections
// (connsync carries no sequence offset).
func TestSynProxyNotSynced(t *testing.T) {
	l := newSPLab(t, lvs.FwdNAT, false)
	w := l.w
	w.d.syncOn.Store(true)
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460}
	cookie := l.cookie(now, 5, 40000, o)
	ack := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: 40000, dport: 80, ackf: true, seq: 6, ack: cookie + 1}
	if _, ok, _ := l.run(t, 0, ack.bytes(t), 0, now); !ok {
		t.Fatalf("cookie ACK dropped: %v", dropSummary(w))
	}
	synack := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: l.client, sport: 8080, dport: 40000, syn: true, ackf: true, seq: 77, ack: 6}
	if _, ok, _ := l.run(t, 1, synack.bytes(t), 1, now+1); !ok {
		t.Fatalf("SYN-ACK dropped: %v", dropSummary(w))
	}
	data := ack
	data.payload = []byte("x")
	if _, ok, _ := l.run(t, 2, data.bytes(t), 0, now+2); !ok {
		t.Fatalf("data dropped: %v", dropSummary(w))
	}
	w.refreshSync(0, w.ct.Cap(), now+3, l.st)
	if len(w.syncBuf) != 0 {
		t.Errorf("sync master recorded %d entries of a proxied connection, want none", len(w.syncBuf))
	}
}

// TestSynProxyAllocs: the proxied handshake and the translated packets of
// a proxied connection allocate nothing.
func TestSynProxyAllocs(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT} {
		for _, v6 := range []bool{false, true} {
			t.Run(fwd.String()+map[bool]string{false: "4", true: "6"}[v6], func(t *testing.T) {
				l := newSPLab(t, fwd, v6)
				w := l.w
				now := int64(time.Second)
				o := packet.SynOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}
				const isn = 7
				port := uint16(30000)
				cookieACK := func(port uint16) []byte {
					s := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: port, dport: 80, ackf: true,
						seq: isn + 1, ack: l.cookie(now, isn, port, o) + 1, win: 100}
					return s.bytes(t)
				}
				// Frames prepared outside the measured function.
				acks := make([][]byte, 0, 300)
				for i := 0; i < 300; i++ {
					acks = append(acks, cookieACK(port+uint16(i)))
				}
				synack := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, sport: 8080, syn: true, ackf: true, seq: 99, ack: isn + 1,
					opts: []layers.TCPOption{opt(layers.TCPOptionKindMSS, 5, 0xb4), opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindWindowScale, 9)}}
				i := 0
				var d xsk.Desc
				allocs := testing.AllocsPerRun(200, func() {
					d = put(w, 0, acks[i])
					i++
					now++
					if _, ok := w.process(&d, 0, now, l.st, true); !ok {
						t.Fatalf("cookie ACK dropped: %v", dropSummary(w))
					}
				})
				if allocs != 0 {
					t.Errorf("cookie ACK to SYN: %.1f allocations per packet, want 0", allocs)
				}
				// The SYN-ACK of the last connection, then its data both ways.
				g := decodeOut(t, w.umem.Bytes(d.Addr, d.Len))
				synack.dst, synack.dport = g.src, uint16(g.tcp.SrcPort)
				sa := synack.bytes(t)
				allocs = testing.AllocsPerRun(1, func() {
					d = put(w, 1, sa)
					now++
					if _, ok := w.process(&d, 1, now, l.st, true); !ok {
						t.Fatalf("SYN-ACK dropped: %v", dropSummary(w))
					}
				})
				if allocs != 0 {
					t.Errorf("SYN-ACK to ACK: %.1f allocations per packet, want 0", allocs)
				}
				last := port + uint16(i-1)
				req := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: last, dport: 80, ackf: true, psh: true,
					seq: isn + 1, ack: l.cookie(now, isn, last, o) + 1, win: 100, payload: []byte("GET /"),
					opts: []layers.TCPOption{opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindSACK, be32(1, 2)...)}}
				rq := req.bytes(t)
				rep := synack
				rep.syn, rep.opts, rep.seq, rep.payload, rep.psh = false, nil, 100, []byte("200 OK"), true
				rp := rep.bytes(t)
				allocs = testing.AllocsPerRun(200, func() {
					d = put(w, 2, rq)
					now++
					if _, ok := w.process(&d, 0, now, l.st, true); !ok {
						t.Fatalf("request dropped: %v", dropSummary(w))
					}
					d = put(w, 3, rp)
					if _, ok := w.process(&d, 1, now, l.st, true); !ok {
						t.Fatalf("reply dropped: %v", dropSummary(w))
					}
				})
				if allocs != 0 {
					t.Errorf("proxied connection: %.1f allocations per packet pair, want 0", allocs)
				}
				if fwd != lvs.FwdNAT {
					return // the SYN-ACKs below need the local port known in advance
				}
				// Whole handshakes with a held request: ACK, request, SYN-ACK.
				type hs struct{ ack, req, synack []byte }
				var hss []hs
				for k := 0; k < 210; k++ {
					p := uint16(20000 + k)
					c := l.cookie(now, isn, p, o)
					a := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: p, dport: 80, ackf: true, seq: isn + 1, ack: c + 1, win: 100}
					r := a
					r.psh, r.payload = true, []byte("GET /")
					sa := synack
					sa.dst, sa.dport = l.client, p
					hss = append(hss, hs{a.bytes(t), r.bytes(t), sa.bytes(t)})
				}
				k := 0
				allocs = testing.AllocsPerRun(200, func() {
					h := hss[k]
					k++
					now++
					for j, f := range [][]byte{h.ack, h.req, h.synack} {
						d = put(w, 4+j, f)
						if _, ok := w.process(&d, []int{0, 0, 1}[j], now, l.st, true); !ok && j < 2 {
							t.Fatalf("handshake frame %d dropped: %v", j, dropSummary(w))
						}
					}
					if len(w.tx[1]) != 1 {
						t.Fatalf("held request not sent: %d queued", len(w.tx[1]))
					}
					w.tx[1] = w.tx[1][:0]
				})
				if allocs != 0 {
					t.Errorf("handshake with a held request: %.1f allocations, want 0", allocs)
				}
			})
		}
	}
}

// TestSynProxyICMP: an ICMP error about a reply of a proxied connection
// reaches the real server quoting the sequence number it sent.
func TestSynProxyICMP(t *testing.T) {
	l := newSPLab(t, lvs.FwdNAT, false)
	w := l.w
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460}
	cookie := l.cookie(now, 5, 40000, o)
	const sisn = 0xfffffff0
	ack := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: 40000, dport: 80, ackf: true, seq: 6, ack: cookie + 1}
	if _, ok, _ := l.run(t, 0, ack.bytes(t), 0, now); !ok {
		t.Fatalf("cookie ACK dropped: %v", dropSummary(w))
	}
	synack := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: l.client, sport: 8080, dport: 40000, syn: true, ackf: true, seq: sisn, ack: 6}
	if _, ok, _ := l.run(t, 1, synack.bytes(t), 1, now+1); !ok {
		t.Fatalf("SYN-ACK dropped: %v", dropSummary(w))
	}
	// A router toward the client cannot pass the reply VIP:80 -> client
	// (seq cookie+1 as the client sees it) and says so.
	inner := &layers.IPv4{Version: 4, TTL: 60, Protocol: layers.IPProtocolTCP, SrcIP: l.vip.AsSlice(), DstIP: l.client.AsSlice(), Flags: layers.IPv4DontFragment}
	itcp := &layers.TCP{SrcPort: 80, DstPort: 40000, Seq: cookie + 1, Ack: 6, ACK: true, PSH: true, Window: 100}
	itcp.SetNetworkLayerForChecksum(inner)
	ib := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(ib, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, inner, itcp, gopacket.Payload(make([]byte, 1400))); err != nil {
		t.Fatal(err)
	}
	router := netip.MustParseAddr("198.18.0.254")
	eth := &layers.Ethernet{SrcMAC: clientMAC, DstMAC: dirMAC0, EthernetType: layers.EthernetTypeIPv4}
	outer := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: router.AsSlice(), DstIP: l.vip.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1300}
	ob := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(ob, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, outer, icmp, gopacket.Payload(ib.Bytes()[:548])); err != nil {
		t.Fatal(err)
	}
	out, ok, frame := l.run(t, 2, ob.Bytes(), 0, now+2)
	if !ok || out != 1 {
		t.Fatalf("ICMP error: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ic, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || ic == nil {
		t.Fatalf("output does not decode as IPv4/ICMP: %v", pkt)
	}
	msg := frame[14+int(ip.IHL)*4 : 14+int(ip.Length)]
	var sum uint32
	for i := 0; i+1 < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("ICMP checksum wrong (sum %#x)", sum)
	}
	q := gopacket.NewPacket(ic.Payload, layers.LayerTypeIPv4, gopacket.Default)
	qip, _ := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	qtcp, _ := q.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if qip == nil || qtcp == nil {
		t.Fatalf("quote does not decode as IPv4/TCP: %v", q)
	}
	if qip.SrcIP.String() != l.real.String() || qtcp.SrcPort != 8080 || qtcp.Seq != sisn+1 || ip.DstIP.String() != l.real.String() {
		t.Errorf("ICMP to %s quotes %s:%d seq %d, want to %s quoting %s:8080 seq %d", ip.DstIP, qip.SrcIP, qtcp.SrcPort, qtcp.Seq, l.real, l.real, uint32(sisn+1))
	}
}

// TestSynProxyServerTimeWait: a real server that still holds an old
// connection of the endpoints (TIME-WAIT: a reused full-NAT port, above
// all after a restart) answers the proxy's SYN with that connection's ACK.
// The worker answers it with a reset at its acknowledgement number, as a
// TCP in SYN-SENT does, so that the next SYN gets through; an acceptable
// ACK without SYN is ignored.
func TestSynProxyServerTimeWait(t *testing.T) {
	l := newSPLab(t, lvs.FwdNAT, false)
	w := l.w
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460, WScale: 7, HasWScale: true}
	const isn = 5000
	cookie := l.cookie(now, isn, 40000, o)
	ack := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: 40000, dport: 80, ackf: true, win: 100,
		seq: isn + 1, ack: cookie + 1}
	if out, ok, _ := l.run(t, 0, ack.bytes(t), 0, now); !ok || out != 1 {
		t.Fatalf("cookie ACK: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	old := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: l.client, sport: 8080, dport: 40000, ackf: true,
		seq: 777, ack: 123456}
	out, ok, frame := l.run(t, 1, old.bytes(t), 1, now+1)
	if !ok || out != 1 {
		t.Fatalf("old connection's ACK: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	g := decodeOut(t, frame)
	if !g.tcp.RST || g.tcp.ACK || g.tcp.Seq != 123456 || g.dst != l.real || g.tcp.DstPort != 8080 || g.src != l.client || g.tcp.SrcPort != 40000 {
		t.Errorf("answer to the old ACK: %s:%d -> %s:%d %+v, want RST seq 123456 to the real server", g.src, g.tcp.SrcPort, g.dst, g.tcp.DstPort, g.tcp)
	}
	if w.ctr.SynProxyResets.Load() != 1 || w.ct.Len() != 1 {
		t.Errorf("resets %d, conns %d: want 1 and the connection still pending", w.ctr.SynProxyResets.Load(), w.ct.Len())
	}
	acceptable := old
	acceptable.ack = isn + 1
	if _, ok, _ := l.run(t, 2, acceptable.bytes(t), 1, now+2); ok || w.ctr.Drops[DropUnsupported].Load() != 1 || w.ctr.SynProxyResets.Load() != 1 {
		t.Errorf("an acceptable ACK without SYN: ok=%v unsupported %d resets %d; want ignored", ok, w.ctr.Drops[DropUnsupported].Load(), w.ctr.SynProxyResets.Load())
	}
}
