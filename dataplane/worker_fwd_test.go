package dataplane

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/lvs"
)

// TestForwardingRewrites runs a connection of every forwarding method, IPv4
// and IPv6, through the worker: the client's SYN and a data segment toward
// the real server, and for NAT and full-NAT the server's SYN-ACK and data
// back toward the client. Each frame out is decoded by gopacket and checked
// field by field (MACs, addresses, ports, TTL, tunnel header, payload,
// checksums), with the counters.
func TestForwardingRewrites(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT, lvs.FwdDR, lvs.FwdTun} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				l := newLab(t, fwd, v6)
				w := l.w
				const cport = 40000
				dst := l.st.dests[0]

				// 1. The SYN.
				syn := l.request(cport, lvs.TCPSyn, 0)
				v := l.mustForward(t, 0, syn, 0, 1, 1)
				lport := checkRequest(t, l, v, syn, fwd)
				if c := w.ctr.NewConns.Load(); c != 1 {
					t.Errorf("new_conns %d, want 1", c)
				}
				// 2. Data from the client on the same connection.
				data := l.request(cport, lvs.TCPAck, 333)
				v = l.mustForward(t, 1, data, 0, 1, 2)
				if got := checkRequest(t, l, v, data, fwd); got != lport {
					t.Errorf("local port changed from %d to %d within a connection", lport, got)
				}
				if c := w.ctr.NewConns.Load(); c != 1 {
					t.Errorf("new_conns %d after a segment of a known connection, want 1", c)
				}
				if c := w.ctr.Inbound.Load(); c != 2 {
					t.Errorf("inbound %d, want 2", c)
				}
				s := dst.stats.total()
				if s.Conns != 1 || s.InPkts != 2 || s.InBytes != uint64(len(syn.bytes(t))+len(data.bytes(t))) {
					t.Errorf("real server stats %+v, want 1 conn, 2 packets in, %d bytes in", s, len(syn.bytes(t))+len(data.bytes(t)))
				}

				if fwd == lvs.FwdDR || fwd == lvs.FwdTun {
					// Replies bypass the director: a packet from the
					// real server to the client is nobody's.
					l.mustDrop(t, 2, l.fromReal(l.client, cport, lvs.TCPSyn|lvs.TCPAck, 0), 1, 3, DropNoService)
					return
				}
				// 3. The SYN-ACK and data back.
				replyTo, replyPort := l.client, uint16(cport)
				if fwd == lvs.FwdFullNAT {
					replyTo, replyPort = l.locl, lport
				}
				for i, r := range []pk{l.fromReal(replyTo, replyPort, lvs.TCPSyn|lvs.TCPAck, 0), l.fromReal(replyTo, replyPort, lvs.TCPAck, 1000)} {
					v = l.mustForward(t, 2+i, r, 1, 0, int64(3+i))
					checkReply(t, l, v, r, cport)
				}
				if c := w.ctr.Outbound.Load(); c != 2 {
					t.Errorf("outbound %d, want 2", c)
				}
				if s := dst.stats.total(); s.OutPkts != 2 {
					t.Errorf("real server out packets %d, want 2", s.OutPkts)
				}
				cs := conns(w)
				if len(cs) != 1 || cs[0].State != conntrack.StateEstablished {
					t.Errorf("connections %v, want one ESTABLISHED", cs)
				}
			})
		}
	}
}

// checkRequest checks a request p as forwarded to the real server by
// method fwd, and returns the full-NAT local port (else the client port).
func checkRequest(t *testing.T, l *spLab, v view, p pk, fwd lvs.Fwd) uint16 {
	t.Helper()
	if v.eth.SrcMAC.String() != dirMAC1.String() || v.eth.DstMAC.String() != realMAC.String() {
		t.Errorf("MACs %s -> %s, want %s -> %s", v.eth.SrcMAC, v.eth.DstMAC, dirMAC1, realMAC)
	}
	inner := 0
	if fwd == lvs.FwdTun {
		if len(v.ips) != 2 {
			t.Fatalf("tunnel: %d IP headers, want 2", len(v.ips))
		}
		inner = 1
		wantSrc, wantProto := dir1IP, layers.IPProtocolIPv4
		if l.client.Is6() {
			wantSrc, wantProto = dir1IP6, layers.IPProtocolIPv6
		}
		if v.src(0) != wantSrc || v.dst(0) != l.real || v.ttls[0] != 64 {
			t.Errorf("outer header %s -> %s ttl %d, want %s -> %s ttl 64", v.src(0), v.dst(0), v.ttls[0], wantSrc, l.real)
		}
		switch o := v.ips[0].(type) {
		case *layers.IPv4:
			if o.Protocol != wantProto || o.Flags&layers.IPv4DontFragment == 0 {
				t.Errorf("outer IPv4 protocol %v flags %v, want %v with DF copied", o.Protocol, o.Flags, wantProto)
			}
		case *layers.IPv6:
			if o.NextHeader != wantProto {
				t.Errorf("outer IPv6 next header %v, want %v", o.NextHeader, wantProto)
			}
		}
	} else if len(v.ips) != 1 {
		t.Fatalf("%d IP headers, want 1", len(v.ips))
	}
	if v.ttls[inner] != 63 {
		t.Errorf("TTL %d, want 63", v.ttls[inner])
	}
	wantSrc, wantDst, wantSport, wantDport := p.src, p.dst, p.sport, p.dport
	switch fwd {
	case lvs.FwdNAT:
		wantDst, wantDport = l.real, 8080
	case lvs.FwdFullNAT:
		wantSrc, wantDst, wantDport = l.locl, l.real, 8080
		wantSport = uint16(v.tcp.SrcPort)
		if wantSport < lportMin {
			t.Errorf("local port %d below %d", wantSport, lportMin)
		}
	}
	if v.src(inner) != wantSrc || v.dst(inner) != wantDst || uint16(v.tcp.SrcPort) != wantSport || uint16(v.tcp.DstPort) != wantDport {
		t.Errorf("request %s:%d -> %s:%d, want %s:%d -> %s:%d", v.src(inner), v.tcp.SrcPort, v.dst(inner), v.tcp.DstPort,
			wantSrc, wantSport, wantDst, wantDport)
	}
	checkSegment(t, v, p)
	return wantSport
}

// checkReply checks a reply p as forwarded to the client.
func checkReply(t *testing.T, l *spLab, v view, p pk, cport uint16) {
	t.Helper()
	if v.eth.SrcMAC.String() != dirMAC0.String() || v.eth.DstMAC.String() != clientMAC.String() {
		t.Errorf("reply MACs %s -> %s, want %s -> %s", v.eth.SrcMAC, v.eth.DstMAC, dirMAC0, clientMAC)
	}
	if len(v.ips) != 1 || v.src(0) != l.vip || v.dst(0) != l.client || v.tcp.SrcPort != 80 || uint16(v.tcp.DstPort) != cport || v.ttls[0] != 63 {
		t.Errorf("reply %s:%d -> %s:%d ttl %d, want %s:80 -> %s:%d ttl 63", v.src(0), v.tcp.SrcPort, v.dst(0), v.tcp.DstPort, v.ttls[0],
			l.vip, l.client, cport)
	}
	checkSegment(t, v, p)
}

// checkSegment checks that the TCP flags and payload went through untouched.
func checkSegment(t *testing.T, v view, p pk) {
	t.Helper()
	if v.tcp == nil {
		t.Fatal("no TCP header")
	}
	if v.tcp.SYN != (p.flags&lvs.TCPSyn != 0) || v.tcp.ACK != (p.flags&lvs.TCPAck != 0) || v.tcp.FIN || v.tcp.RST {
		t.Errorf("TCP flags changed: %+v, sent %#x", v.tcp, p.flags)
	}
	if !bytes.Equal(v.tcp.Payload, payloadOf(p.payload)) {
		t.Errorf("payload changed (%d bytes, sent %d)", len(v.tcp.Payload), p.payload)
	}
}

// TestForwardingUDP: a UDP flow is one connection (state UDP), NAT both ways.
func TestForwardingUDP(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	svc := l.st.services[0]
	svc.Proto = 17
	l.st.byKey = map[serviceKey]*Service{{svc.VIP, 80, 17}: svc}
	q := l.request(5353, 0, 40)
	q.udp = true
	got, ok, frame := l.send(t, 0, q, 0, 1)
	if !ok || got != 1 {
		t.Fatalf("UDP request: out=%d ok=%v drops %v", got, ok, dropSummary(l.w))
	}
	v := inspect(t, frame)
	if v.udp == nil || v.dst(0) != l.real || v.udp.DstPort != 8080 || v.src(0) != l.client || !bytes.Equal(v.udp.Payload, payloadOf(40)) {
		t.Errorf("UDP request rewritten to %s -> %s:%v", v.src(0), v.dst(0), v.udp)
	}
	r := l.fromReal(l.client, 5353, 0, 60)
	r.udp = true
	got, ok, frame = l.send(t, 1, r, 1, 2)
	if !ok || got != 0 {
		t.Fatalf("UDP reply: out=%d ok=%v drops %v", got, ok, dropSummary(l.w))
	}
	v = inspect(t, frame)
	if v.udp == nil || v.src(0) != l.vip || v.udp.SrcPort != 80 || v.dst(0) != l.client {
		t.Errorf("UDP reply rewritten to %s:%v -> %s", v.src(0), v.udp, v.dst(0))
	}
	if cs := conns(l.w); len(cs) != 1 || cs[0].State != conntrack.StateUDP {
		t.Errorf("connections %v, want one in state UDP", cs)
	}
}
