package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/lvs"
)

// The PROXY header and TOA through the worker (proxyproto.go): frames in,
// frames out, decoded and checked by gopacket (decodeOut), the header's
// bytes written out by hand here.

// wantV2 is the PROXY v2 header for client:cport -> vip:80, written out
// by hand from the specification.
func wantV2(client, vip netip.Addr, cport uint16) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	if client.Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
	}
	b = append(b, client.AsSlice()...)
	b = append(b, vip.AsSlice()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, cport), 80)
}

// wantV1 is the PROXY v1 header for client:cport -> vip:80.
func wantV1(client, vip netip.Addr, cport uint16) []byte {
	fam := "TCP4"
	if !client.Is4() {
		fam = "TCP6"
	}
	return []byte(fmt.Sprintf("PROXY %s %s %s %d 80\r\n", fam, client, vip, cport))
}

// ppConn drives a full-NAT connection through a lab worker: the client's
// side on interface 0, the real server's on 1.
type ppConn struct {
	t      *testing.T
	l      *spLab
	now    int64
	slot   int
	client seg // a client segment's addresses
	server seg // a real server segment's addresses (set once the SYN went out)
}

func newPPConn(t *testing.T, l *spLab, cport uint16) *ppConn {
	return &ppConn{t: t, l: l, now: int64(time.Second),
		client: seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: cport, dport: 80, win: 1000}}
}

// in sends s from the client and returns what reaches the real server.
func (c *ppConn) in(s seg) got {
	c.t.Helper()
	c.slot = (c.slot + 1) % freeSlot
	out, ok, frame := c.l.run(c.t, c.slot, s.bytes(c.t), 0, c.now)
	if !ok || out != 1 {
		c.t.Fatalf("client segment seq %d: out=%d ok=%v drops %v", s.seq, out, ok, dropSummary(c.l.w))
	}
	return decodeOut(c.t, frame)
}

// back sends s from the real server and returns what reaches the client.
func (c *ppConn) back(s seg) got {
	c.t.Helper()
	c.slot = (c.slot + 1) % freeSlot
	out, ok, frame := c.l.run(c.t, c.slot, s.bytes(c.t), 1, c.now)
	if !ok || out != 0 {
		c.t.Fatalf("server segment seq %d: out=%d ok=%v drops %v", s.seq, out, ok, dropSummary(c.l.w))
	}
	return decodeOut(c.t, frame)
}

// queued returns the frames the worker queued itself on interface i
// since the last call, decoded.
func (c *ppConn) queued(i int) []got {
	c.t.Helper()
	w := c.l.w
	var out []got
	for _, d := range w.tx[i] {
		out = append(out, decodeOut(c.t, w.umem.Bytes(d.Addr, d.Len)))
	}
	w.tx[i] = w.tx[i][:0]
	return out
}

// handshake runs SYN, SYN-ACK (with synackOpts) and returns the SYN the
// real server got and the SYN-ACK the client got; the server's addresses
// are learned from the SYN.
func (c *ppConn) handshake(isn, sisn uint32, synackOpts []layers.TCPOption) (syn, synack got) {
	c.t.Helper()
	s := c.client
	s.seq, s.syn = isn, true
	syn = c.in(s)
	c.server = seg{srcMAC: realMAC, dstMAC: dirMAC1, src: c.l.real, dst: syn.src, sport: 8080, dport: uint16(syn.tcp.SrcPort), win: 2000}
	r := c.server
	r.seq, r.ack, r.syn, r.ackf, r.opts = sisn, isn+1, true, true, synackOpts
	synack = c.back(r)
	return syn, synack
}

func (c *ppConn) fromClient(seq, ack uint32, payload []byte) seg {
	s := c.client
	s.seq, s.ack, s.ackf, s.payload = seq, ack, true, payload
	s.psh = len(payload) > 0
	return s
}

func (c *ppConn) fromServer(seq, ack uint32, payload []byte, opts ...layers.TCPOption) seg {
	s := c.server
	s.seq, s.ack, s.ackf, s.payload, s.opts = seq, ack, true, payload, opts
	return s
}

func ppLab(t *testing.T, v6 bool, v lvs.ProxyProtocol, toa bool) *spLab {
	l := newLab(t, lvs.FwdFullNAT, v6)
	svc := l.st.services[0]
	svc.SynProxy, svc.ProxyProtocol, svc.TOA = SynProxyOff, v, toa
	return l
}

// TestProxyHeaderWorker: the header goes in the client's handshake ACK,
// grown in place; the client's bytes follow it shifted by its length, the
// real server's acknowledgements (and SACK blocks) come back shifted down,
// one of part of the header as one of none; a retransmitted first segment
// brings the header again in a segment of its own; FIN and RST are shifted
// too; and an ICMP error about a request quotes the client's own sequence
// number.
func TestProxyHeaderWorker(t *testing.T) {
	for _, tc := range []struct {
		name string
		v6   bool
		v    lvs.ProxyProtocol
	}{
		{"v2 ipv4", false, lvs.ProxyV2},
		{"v2 ipv6", true, lvs.ProxyV2},
		{"v1 ipv4", false, lvs.ProxyV1},
		{"v1 ipv6", true, lvs.ProxyV1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ppLab(t, tc.v6, tc.v, false)
			const cport = 40001
			hdr := wantV2(l.client, l.vip, cport)
			if tc.v == lvs.ProxyV1 {
				hdr = wantV1(l.client, l.vip, cport)
			}
			L := uint32(len(hdr))
			c := newPPConn(t, l, cport)
			isn, sisn := uint32(0xfffffff8), uint32(7000) // the client's wraps within the header
			syn, synack := c.handshake(isn, sisn, nil)
			if syn.tcp.Seq != isn || len(syn.tcp.Payload) != 0 {
				t.Fatalf("SYN seq %d payload %d, want %d and none", syn.tcp.Seq, len(syn.tcp.Payload), isn)
			}
			if synack.tcp.Ack != isn+1 {
				t.Errorf("SYN-ACK ack %d, want %d", synack.tcp.Ack, isn+1)
			}

			// The handshake ACK carries the header.
			g := c.in(c.fromClient(isn+1, sisn+1, nil))
			if g.tcp.Seq != isn+1 || g.tcp.Ack != sisn+1 || !bytes.Equal(g.tcp.Payload, hdr) {
				t.Fatalf("handshake ACK: seq %d ack %d payload %q, want %d %d %q", g.tcp.Seq, g.tcp.Ack, g.tcp.Payload, isn+1, sisn+1, hdr)
			}
			// The first data segment follows it, alone.
			req := payloadOf(100)
			g = c.in(c.fromClient(isn+1, sisn+1, req))
			if g.tcp.Seq != isn+1+L || !bytes.Equal(g.tcp.Payload, req) {
				t.Errorf("request seq %d, want %d", g.tcp.Seq, isn+1+L)
			}
			if q := c.queued(1); len(q) != 0 {
				t.Errorf("first request brought %d frames of the worker's own, want none", len(q))
			}
			// An acknowledgement of part of the header is one of none.
			b := c.back(c.fromServer(sisn+1, isn+1+5, nil))
			if b.tcp.Ack != isn+1 {
				t.Errorf("partial header ack reaches the client as %d, want %d", b.tcp.Ack, isn+1)
			}
			// The request again: a retransmission, with the header first.
			g = c.in(c.fromClient(isn+1, sisn+1, req))
			q := c.queued(1)
			if len(q) != 1 {
				t.Fatalf("retransmission: %d frames of the worker's own, want the header", len(q))
			}
			h := q[0]
			if h.tcp.Seq != isn+1 || !bytes.Equal(h.tcp.Payload, hdr) || !h.tcp.ACK || !h.tcp.PSH || h.tcp.FIN ||
				h.dst != l.real || h.src != l.locl || uint16(h.tcp.DstPort) != 8080 || h.ttl != 63 {
				t.Errorf("header segment %s:%d -> %s:%d seq %d flags ack=%v psh=%v fin=%v ttl %d payload %q", h.src, h.tcp.SrcPort, h.dst, h.tcp.DstPort,
					h.tcp.Seq, h.tcp.ACK, h.tcp.PSH, h.tcp.FIN, h.ttl, h.tcp.Payload)
			}
			if g.tcp.Seq != isn+1+L {
				t.Errorf("retransmitted request seq %d, want %d", g.tcp.Seq, isn+1+L)
			}
			if got := l.w.ctr.ProxyHeaders.Load(); got != 2 {
				t.Errorf("ProxyHeaders = %d, want 2", got)
			}
			// The server acknowledges everything, with a SACK block of
			// later bytes: both come down by the header's length.
			sack := make([]byte, 8)
			binary.BigEndian.PutUint32(sack, isn+1+L+200)
			binary.BigEndian.PutUint32(sack[4:], isn+1+L+300)
			b = c.back(c.fromServer(sisn+1, isn+1+L+100, []byte("HTTP/1.0 200 OK\r\n"),
				opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindNop), opt(layers.TCPOptionKindSACK, sack...)))
			if b.tcp.Ack != isn+101 || b.tcp.Seq != sisn+1 {
				t.Errorf("reply seq %d ack %d, want %d %d", b.tcp.Seq, b.tcp.Ack, sisn+1, isn+101)
			}
			var edges []uint32
			for _, o := range b.tcp.Options {
				if o.OptionType == layers.TCPOptionKindSACK {
					edges = append(edges, binary.BigEndian.Uint32(o.OptionData), binary.BigEndian.Uint32(o.OptionData[4:]))
				}
			}
			if len(edges) != 2 || edges[0] != isn+201 || edges[1] != isn+301 {
				t.Errorf("SACK edges %v, want [%d %d]", edges, isn+201, isn+301)
			}
			cp := l.w.path(conns(l.w)[0])
			if cp.ppFlags&ppHeaderPending != 0 {
				t.Error("header still pending after the server acknowledged it")
			}
			// Now a segment at the first sequence number is nothing
			// special (a keep-alive probe, say): shifted, no header.
			g = c.in(c.fromClient(isn+1, sisn+18, nil))
			if g.tcp.Seq != isn+1+L || len(g.tcp.Payload) != 0 || len(c.queued(1)) != 0 {
				t.Errorf("after the header: seq %d payload %d", g.tcp.Seq, len(g.tcp.Payload))
			}
			// FIN, then RST, shifted.
			fs := c.fromClient(isn+101, sisn+18, nil)
			fs.fin = true
			g = c.in(fs)
			if !g.tcp.FIN || g.tcp.Seq != isn+101+L {
				t.Errorf("FIN seq %d, want %d", g.tcp.Seq, isn+101+L)
			}
			rs := c.client
			rs.seq, rs.rst = isn+102, true
			g = c.in(rs)
			if !g.tcp.RST || g.tcp.Seq != isn+102+L {
				t.Errorf("RST seq %d, want %d", g.tcp.Seq, isn+102+L)
			}
		})
	}
}

// TestProxyHeaderFirstDataSegment: a client whose handshake ACK the
// director never saw (lost on the way) sends its request first: the header
// goes ahead of it in a segment of its own. A server that speaks first
// gets the header with the handshake ACK and nothing else of the client.
func TestProxyHeaderFirstDataSegment(t *testing.T) {
	l := ppLab(t, false, lvs.ProxyV2, false)
	const cport = 40002
	hdr := wantV2(l.client, l.vip, cport)
	c := newPPConn(t, l, cport)
	const isn, sisn = 1000, 5000
	c.handshake(isn, sisn, nil)
	req := payloadOf(300)
	g := c.in(c.fromClient(isn+1, sisn+1, req))
	q := c.queued(1)
	if len(q) != 1 || q[0].tcp.Seq != isn+1 || !bytes.Equal(q[0].tcp.Payload, hdr) {
		t.Fatalf("header segment ahead of the first request: %d frames", len(q))
	}
	if g.tcp.Seq != isn+1+uint32(len(hdr)) || !bytes.Equal(g.tcp.Payload, req) {
		t.Errorf("request seq %d, want %d", g.tcp.Seq, isn+1+uint32(len(hdr)))
	}

	// A server that speaks first: its banner acknowledges the header.
	c2 := newPPConn(t, l, cport+1)
	c2.handshake(isn, sisn, nil)
	g = c2.in(c2.fromClient(isn+1, sisn+1, nil))
	if !bytes.Equal(g.tcp.Payload, wantV2(l.client, l.vip, cport+1)) {
		t.Fatalf("handshake ACK payload %q", g.tcp.Payload)
	}
	b := c2.back(c2.fromServer(sisn+1, isn+1+uint32(len(hdr)), []byte("220 hello\r\n")))
	if b.tcp.Ack != isn+1 || string(b.tcp.Payload) != "220 hello\r\n" {
		t.Errorf("banner ack %d payload %q, want %d", b.tcp.Ack, b.tcp.Payload, isn+1)
	}
	g = c2.in(c2.fromClient(isn+1, sisn+12, nil)) // the client acknowledges the banner
	if g.tcp.Seq != isn+1+uint32(len(hdr)) || len(g.tcp.Payload) != 0 || g.tcp.Ack != sisn+12 {
		t.Errorf("client ACK of the banner: seq %d payload %d ack %d", g.tcp.Seq, len(g.tcp.Payload), g.tcp.Ack)
	}
}

// TestProxyHeaderNoFrame: without a free frame for the header segment, the
// request is dropped and counted; its retransmission gets through.
func TestProxyHeaderNoFrame(t *testing.T) {
	l := ppLab(t, false, lvs.ProxyV2, false)
	c := newPPConn(t, l, 40003)
	const isn, sisn = 1000, 5000
	c.handshake(isn, sisn, nil)
	free := l.w.free
	l.w.free = nil
	if out, ok, _ := l.run(t, 40, c.fromClient(isn+1, sisn+1, payloadOf(10)).bytes(t), 0, c.now); ok {
		t.Fatalf("request without a frame for the header forwarded to %d", out)
	}
	if n := l.w.ctr.Drops[DropNoFrame].Load(); n != 1 {
		t.Errorf("no_frame drops %d, want 1", n)
	}
	l.w.free = free
	c.in(c.fromClient(isn+1, sisn+1, payloadOf(10)))
	if len(c.queued(1)) != 1 {
		t.Error("the retransmission did not bring the header")
	}
}

// TestTOAWorker: the client's segments carry the TOA option until the
// real server sends a segment of its own; the MSS of its SYN-ACK reaches
// the client lowered by the option's length.
func TestTOAWorker(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			l := ppLab(t, v6, lvs.ProxyNone, true)
			const cport = 40004
			c := newPPConn(t, l, cport)
			const isn, sisn = 1000, 5000
			mss := opt(layers.TCPOptionKindMSS, 0x05, 0xb4) // 1460
			_, synack := c.handshake(isn, sisn, []layers.TCPOption{mss})
			wantLen, wantMSS := 8, 1452
			if v6 {
				wantLen, wantMSS = 20, 1440
			}
			gotMSS := -1
			for _, o := range synack.tcp.Options {
				if o.OptionType == layers.TCPOptionKindMSS {
					gotMSS = int(binary.BigEndian.Uint16(o.OptionData))
				}
			}
			if gotMSS != wantMSS {
				t.Errorf("client's SYN-ACK MSS %d, want %d", gotMSS, wantMSS)
			}
			wantOpt := binary.BigEndian.AppendUint16(nil, cport)
			wantOpt = append(wantOpt, l.client.AsSlice()...)
			checkTOA := func(g got, want bool) {
				t.Helper()
				found := false
				for _, o := range g.tcp.Options {
					if o.OptionType == 254 {
						found = true
						if int(o.OptionLength) != wantLen || !bytes.Equal(o.OptionData, wantOpt) {
							t.Errorf("TOA option len %d data %x, want %d %x", o.OptionLength, o.OptionData, wantLen, wantOpt)
						}
					}
				}
				if found != want {
					t.Errorf("TOA present %v, want %v", found, want)
				}
			}
			g := c.in(c.fromClient(isn+1, sisn+1, nil))
			checkTOA(g, true)
			if g.tcp.Seq != isn+1 {
				t.Errorf("TOA alone shifts nothing: seq %d", g.tcp.Seq)
			}
			req := payloadOf(200)
			g = c.in(c.fromClient(isn+1, sisn+1, req))
			checkTOA(g, true)
			if !bytes.Equal(g.tcp.Payload, req) {
				t.Error("payload changed")
			}
			c.back(c.fromServer(sisn+1, isn+201, nil))
			g = c.in(c.fromClient(isn+201, sisn+1, req))
			checkTOA(g, false)
			if n := l.w.ctr.TOAInserted.Load(); n != 2 {
				t.Errorf("TOAInserted = %d, want 2", n)
			}
		})
	}
}

// TestTOAMTU: a segment the option would push past the next hop's MTU
// goes without it.
func TestTOAMTU(t *testing.T) {
	l := ppLab(t, false, lvs.ProxyNone, true)
	c := newPPConn(t, l, 40005)
	const isn, sisn = 1000, 5000
	c.handshake(isn, sisn, nil)
	g := c.in(c.fromClient(isn+1, sisn+1, payloadOf(1500-40-4)))
	for _, o := range g.tcp.Options {
		if o.OptionType == 254 {
			t.Error("TOA pushed the segment past the MTU")
		}
	}
}

// TestProxyHeaderSynProxy: with the SYN proxy, the director's own ACK that
// completes the real server's handshake carries the header and TOA, and
// the request it held follows, shifted.
func TestProxyHeaderSynProxy(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			l := newLab(t, lvs.FwdFullNAT, v6)
			svc := l.st.services[0]
			svc.SynProxy, svc.ProxyProtocol, svc.TOA = SynProxyOn, lvs.ProxyV2, true
			w := l.w
			now := int64(time.Second)
			const cport = 40006
			const isn, sisn = uint32(3000), uint32(0x55555555)
			o := packet.SynOptions{MSS: 1460, SACK: true}
			cookie := l.cookie(now, isn, cport, o)
			client := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: l.client, dst: l.vip, sport: cport, dport: 80, win: 500}
			ack := client
			ack.seq, ack.ack, ack.ackf = isn+1, cookie+1, true
			out, ok, frame := l.run(t, 0, ack.bytes(t), 0, now)
			if !ok || out != 1 {
				t.Fatalf("cookie ACK: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			syn := decodeOut(t, frame)
			req := client
			req.seq, req.ack, req.ackf, req.psh, req.payload = isn+1, cookie+1, true, true, payloadOf(120)
			if out, ok, _ := l.run(t, 1, req.bytes(t), 0, now); !ok || out != outKept {
				t.Fatalf("request while pending: out=%d ok=%v, want held", out, ok)
			}
			sa := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: l.real, dst: syn.src, sport: 8080, dport: uint16(syn.tcp.SrcPort),
				seq: sisn, ack: isn + 1, syn: true, ackf: true, win: 3000}
			if out, ok, _ := l.run(t, 2, sa.bytes(t), 1, now); !ok || out != outKept {
				t.Fatalf("SYN-ACK: out=%d ok=%v drops %v", out, ok, dropSummary(w))
			}
			q := (&ppConn{t: t, l: l}).queued(1)
			if len(q) != 2 {
				t.Fatalf("after the SYN-ACK: %d frames to the real server, want the ACK and the request", len(q))
			}
			hdr := wantV2(l.client, l.vip, cport)
			a, r := q[0], q[1]
			if !a.tcp.ACK || a.tcp.SYN || a.tcp.Seq != isn+1 || a.tcp.Ack != sisn+1 || !bytes.Equal(a.tcp.Payload, hdr) {
				t.Errorf("ACK to the real server: seq %d ack %d payload %q", a.tcp.Seq, a.tcp.Ack, a.tcp.Payload)
			}
			hasTOA := false
			for _, op := range a.tcp.Options {
				hasTOA = hasTOA || op.OptionType == 254
			}
			if !hasTOA {
				t.Error("the ACK that completes the real server's handshake has no TOA")
			}
			if r.tcp.Seq != isn+1+uint32(len(hdr)) || r.tcp.Ack != sisn+1 || !bytes.Equal(r.tcp.Payload, payloadOf(120)) {
				t.Errorf("held request: seq %d ack %d, want %d %d", r.tcp.Seq, r.tcp.Ack, isn+1+uint32(len(hdr)), sisn+1)
			}
			if n := w.ctr.ProxyHeaders.Load(); n != 1 {
				t.Errorf("ProxyHeaders = %d, want 1 (the held request is not a retransmission)", n)
			}
		})
	}
}

// FuzzProxyConn feeds arbitrary segments, either way, to a full-NAT
// connection with a PROXY v2 header and TOA, after a handshake whose
// client ACK may or may not have come: the worker never panics, and what it
// forwards (and the header segments it makes) decodes with every length and
// checksum right.
func FuzzProxyConn(f *testing.F) {
	f.Add(true, false, uint32(1001), uint32(5001), uint8(0x18), uint16(100), []byte{})
	f.Add(false, true, uint32(5001), uint32(1001+13), uint8(0x10), uint16(0), []byte{1, 1, 5, 10, 0, 0, 3, 0xf6, 0, 0, 4, 0})
	f.Add(true, true, uint32(1001), uint32(5001), uint8(0x11), uint16(0), []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add(false, false, uint32(5000), uint32(1001), uint8(0x12), uint16(0), []byte{2, 4, 5, 0xb4})
	f.Fuzz(func(t *testing.T, fromClient, handshakeAck bool, seq, ack uint32, flags uint8, payload uint16, opts []byte) {
		l := ppLab(t, false, lvs.ProxyV2, true)
		c := newPPConn(t, l, 40010)
		const isn, sisn = 1000, 5000
		c.handshake(isn, sisn, []layers.TCPOption{opt(layers.TCPOptionKindMSS, 0x05, 0xb4)})
		if handshakeAck {
			c.in(c.fromClient(isn+1, sisn+1, nil))
		}
		s := c.server
		in := 1
		if fromClient {
			s, in = c.client, 0
		}
		s.seq, s.ack = seq, ack
		s.fin, s.syn, s.rst, s.psh, s.ackf = flags&0x01 != 0, flags&0x02 != 0, flags&0x04 != 0, flags&0x08 != 0, flags&0x10 != 0
		if len(opts) > 40 {
			opts = opts[:40]
		}
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
		s.opts = []layers.TCPOption{{OptionType: layers.TCPOptionKind(0xfd), OptionLength: 2}}
		s.payload = payloadOf(int(payload % 1400))
		frame := s.bytes(t)
		// The options as raw bytes (gopacket would rewrite them).
		if len(opts) > 0 {
			frame = rawTCPOptions(t, frame, opts)
		}
		out, ok, res := l.run(t, 30, frame, in, c.now)
		if ok && out != outKept {
			checkSums4(t, res)
		}
		for _, q := range l.w.tx {
			for _, d := range q {
				checkSums4(t, l.w.umem.Bytes(d.Addr, d.Len))
			}
		}
	})
}

// rawTCPOptions returns the IPv4 frame with its TCP options (one 4-byte
// placeholder) replaced by opts (a multiple of 4 bytes), lengths and
// checksums made right.
func rawTCPOptions(t *testing.T, frame []byte, opts []byte) []byte {
	t.Helper()
	const l4 = 14 + 20
	out := append([]byte(nil), frame[:l4+20]...)
	out = append(out, opts...)
	out = append(out, frame[l4+24:14+int(binary.BigEndian.Uint16(frame[16:]))]...)
	out[l4+12] = byte((20+len(opts))/4) << 4
	binary.BigEndian.PutUint16(out[16:], uint16(len(out)-14))
	out[24], out[25] = 0, 0
	binary.BigEndian.PutUint16(out[24:], ^uint16(ones(sum16(out[14:34], 0))))
	out[l4+16], out[l4+17] = 0, 0
	ph := append(append([]byte(nil), out[26:34]...), 0, 6, byte((len(out)-l4)>>8), byte(len(out)-l4))
	binary.BigEndian.PutUint16(out[l4+16:], ^uint16(ones(sum16(out[l4:], sum16(ph, 0)))))
	return out
}

// checkSums4 checks an IPv4/TCP frame's lengths and checksums with sums of
// its own (gopacket refuses segments whose options are malformed, which the
// director passes on as they are).
func checkSums4(t *testing.T, f []byte) {
	t.Helper()
	if len(f) < 14+20+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		t.Fatalf("not an IPv4 frame: %x", f)
	}
	tot := int(binary.BigEndian.Uint16(f[16:]))
	if 14+tot > len(f) || tot < 40 {
		t.Fatalf("IPv4 total length %d, frame %d bytes", tot, len(f))
	}
	if ones(sum16(f[14:34], 0)) != 0xffff {
		t.Errorf("IPv4 header checksum wrong: %x", f[14:34])
	}
	if doff := int(f[34+12]>>4) * 4; doff < 20 || 34+doff > 14+tot {
		t.Errorf("TCP data offset %d in a %d-byte packet", doff, tot)
	}
	checkL4Sum(t, "TCP", f[26:30], f[30:34], 6, f[34:14+tot])
}
