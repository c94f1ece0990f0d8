package dataplane

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/lvs"
)

var (
	routerC  = netip.MustParseAddr("198.18.0.7") // a router on the client side
	routerR  = netip.MustParseAddr("198.18.1.7") // a router on the real-server side
	routerC6 = netip.MustParseAddr("2001:db8::7")
	routerR6 = netip.MustParseAddr("2001:db8:1::7")
)

// icmpLab opens a connection from the client's port 40000 and returns the
// lab, the full-NAT local port (else 40000) and the two routers.
func icmpLab(t *testing.T, fwd lvs.Fwd, v6 bool) (l *spLab, lport uint16, rc, rr netip.Addr) {
	t.Helper()
	l = newLab(t, fwd, v6)
	v := l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	lport = 40000
	if fwd == lvs.FwdFullNAT {
		lport = uint16(v.tcp.SrcPort)
	}
	rc, rr = routerC, routerR
	if v6 {
		rc, rr = routerC6, routerR6
	}
	return l, lport, rc, rr
}

// checkQuote checks an ICMP error's quoted packet: its addresses and
// ports, and for IPv4 its header checksum (the worker rewrites it).
func checkQuote(t *testing.T, v view, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) {
	t.Helper()
	qs, qd, qsp, qdp := quoted(t, v.quote)
	if qs != src || qd != dst || qsp != sport || qdp != dport {
		t.Errorf("quote %s:%d -> %s:%d, want %s:%d -> %s:%d", qs, qsp, qd, qdp, src, sport, dst, dport)
	}
	if v.quote[0]>>4 == 4 {
		ihl := int(v.quote[0]&0xf) * 4
		if ones(sum16(v.quote[:ihl], 0)) != 0xffff {
			t.Errorf("quoted IPv4 header checksum wrong")
		}
	}
}

// TestICMPTowardRealServer: an ICMP error about a reply the director sent
// to the client (VIP:80 -> client) goes to the real server, translated so
// that the server recognises its own packet: NAT rewrites the outer
// destination and the quote's source; full-NAT also the outer source and
// the quote's destination (the local address and port).
func TestICMPTowardRealServer(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				l, lport, rc, _ := icmpLab(t, fwd, v6)
				reply := pk{src: l.vip, dst: l.client, sport: 80, dport: 40000, flags: lvs.TCPAck, payload: 600}
				frame := icmpError(t, clientMAC, dirMAC0, rc, l.vip, reply.ip(t))
				out, ok, b := l.run(t, 1, frame, 0, 2)
				if !ok || out != 1 {
					t.Fatalf("out=%d ok=%v, want interface 1; drops %v", out, ok, dropSummary(l.w))
				}
				v := inspect(t, b)
				if v.eth.SrcMAC.String() != dirMAC1.String() || v.eth.DstMAC.String() != realMAC.String() {
					t.Errorf("MACs %s -> %s, want %s -> %s", v.eth.SrcMAC, v.eth.DstMAC, dirMAC1, realMAC)
				}
				wantSrc, qDst, qDport := rc, l.client, uint16(40000)
				if fwd == lvs.FwdFullNAT {
					wantSrc, qDst, qDport = l.locl, l.locl, lport
				}
				if v.src(0) != wantSrc || v.dst(0) != l.real || v.ttls[0] != 63 {
					t.Errorf("ICMP %s -> %s ttl %d, want %s -> %s ttl 63", v.src(0), v.dst(0), v.ttls[0], wantSrc, l.real)
				}
				checkQuote(t, v, l.real, 8080, qDst, qDport)
				if n := l.w.ctr.ICMP.Load(); n != 1 {
					t.Errorf("icmp counter %d, want 1", n)
				}
				if n := l.w.ctr.Inbound.Load(); n != 2 {
					t.Errorf("inbound %d, want 2 (the SYN and the ICMP error)", n)
				}
			})
		}
	}
}

// TestICMPTowardClient: an ICMP error about a request the director sent to
// the real server (NAT: client -> real; full-NAT: local -> real) goes to
// the client as if about its own packet to the VIP.
func TestICMPTowardClient(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				l, lport, _, rr := icmpLab(t, fwd, v6)
				src, sport := l.client, uint16(40000)
				if fwd == lvs.FwdFullNAT {
					src, sport = l.locl, lport
				}
				req := pk{src: src, dst: l.real, sport: sport, dport: 8080, flags: lvs.TCPAck, payload: 600}
				frame := icmpError(t, realMAC, dirMAC1, rr, src, req.ip(t))
				out, ok, b := l.run(t, 1, frame, 1, 2)
				if !ok || out != 0 {
					t.Fatalf("out=%d ok=%v, want interface 0; drops %v", out, ok, dropSummary(l.w))
				}
				v := inspect(t, b)
				if v.eth.SrcMAC.String() != dirMAC0.String() || v.eth.DstMAC.String() != clientMAC.String() {
					t.Errorf("MACs %s -> %s, want %s -> %s", v.eth.SrcMAC, v.eth.DstMAC, dirMAC0, clientMAC)
				}
				if v.src(0) != l.vip || v.dst(0) != l.client {
					t.Errorf("ICMP %s -> %s, want %s -> %s", v.src(0), v.dst(0), l.vip, l.client)
				}
				checkQuote(t, v, l.client, 40000, l.vip, 80)
				if n := l.w.ctr.ICMP.Load(); n != 1 {
					t.Errorf("icmp counter %d, want 1", n)
				}
				if n := l.w.ctr.Outbound.Load(); n != 1 {
					t.Errorf("outbound %d, want 1", n)
				}
			})
		}
	}
}

// TestICMPDirectRouting: with DR the client's ICMP error about the real
// server's direct reply goes to the server unchanged but for the MACs; with
// TUN it is encapsulated like any request.
func TestICMPDirectRouting(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdDR, lvs.FwdTun} {
		t.Run(fwd.String(), func(t *testing.T) {
			l, _, rc, _ := icmpLab(t, fwd, false)
			reply := pk{src: l.vip, dst: l.client, sport: 80, dport: 40000, flags: lvs.TCPAck, payload: 600}
			frame := icmpError(t, clientMAC, dirMAC0, rc, l.vip, reply.ip(t))
			out, ok, b := l.run(t, 1, frame, 0, 2)
			if !ok || out != 1 {
				t.Fatalf("out=%d ok=%v, want interface 1; drops %v", out, ok, dropSummary(l.w))
			}
			v := inspect(t, b)
			inner := 0
			if fwd == lvs.FwdTun {
				if len(v.ips) != 2 || v.dst(0) != l.real || v.src(0) != dir1IP {
					t.Fatalf("TUN: ICMP error not encapsulated toward %s: %d IP headers", l.real, len(v.ips))
				}
				inner = 1
				// gopacket decodes the inner IPv4 but not its ICMP: read the quote.
				ic := gopacket.NewPacket(v.ips[1].LayerPayload(), layers.LayerTypeICMPv4, gopacket.Default)
				if x, ok := ic.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
					v.quote = x.LayerPayload()
				}
			}
			if v.src(inner) != rc || v.dst(inner) != l.vip {
				t.Errorf("ICMP %s -> %s, want unchanged %s -> %s", v.src(inner), v.dst(inner), rc, l.vip)
			}
			checkQuote(t, v, l.vip, 80, l.client, 40000)
		})
	}
}

// TestICMPDrops: an ICMP error about no connection, and an ICMP message
// that is not an error, are dropped and counted.
func TestICMPDrops(t *testing.T) {
	l, _, rc, _ := icmpLab(t, lvs.FwdNAT, false)
	stranger := pk{src: l.vip, dst: l.client, sport: 80, dport: 40001, flags: lvs.TCPAck, payload: 10}
	frame := icmpError(t, clientMAC, dirMAC0, rc, l.vip, stranger.ip(t))
	if _, ok, _ := l.run(t, 1, frame, 0, 2); ok || l.w.ctr.Drops[DropNoConn].Load() != 1 {
		t.Errorf("ICMP error about no connection: ok=%v drops %v, want no_conn", ok, dropSummary(l.w))
	}
	echo := serialize(t, &layers.Ethernet{SrcMAC: clientMAC, DstMAC: dirMAC0, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: l.client.AsSlice(), DstIP: l.vip.AsSlice()},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1})
	if _, ok, _ := l.run(t, 2, echo, 0, 3); ok || l.w.ctr.Drops[DropUnsupported].Load() != 1 {
		t.Errorf("echo request to the VIP: ok=%v drops %v, want unsupported", ok, dropSummary(l.w))
	}
	if n := l.w.ctr.ICMP.Load(); n != 0 {
		t.Errorf("icmp counter %d, want 0", n)
	}
}
