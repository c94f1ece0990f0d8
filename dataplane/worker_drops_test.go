package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TestFullNATPortsExhausted fills every local port a (single) worker owns
// on the service's one local address toward the real server, then sends
// one more SYN: it is dropped as lport_exhausted, no connection is made,
// and once one connection goes its port is used again.
func TestFullNATPortsExhausted(t *testing.T) {
	l := newLab(t, lvs.FwdFullNAT, false)
	w := l.w
	span := 65536 - lportMin // every port this worker of one owns
	frame := l.request(1, lvs.TCPSyn, 0).bytes(t)
	used := map[uint16]bool{}
	now := int64(1)
	for i := 0; i < span; i++ {
		// Distinct clients: vary the source port.
		b := w.umem.Bytes(put(w, 0, frame).Addr, uint32(len(frame)))
		binary.BigEndian.PutUint16(b[34:], uint16(i)+1)
		d := xsk.Desc{Addr: w.umem.FrameAddr(0) + w.umem.RxDataOffset(), Len: uint32(len(frame))}
		now++
		if out, ok := w.process(&d, 0, now, l.st, true); !ok || out != 1 {
			t.Fatalf("SYN %d dropped: %v", i, dropSummary(w))
		}
		lport := binary.BigEndian.Uint16(b[34:])
		if used[lport] || lport < lportMin {
			t.Fatalf("SYN %d got local port %d, used before or below %d", i, lport, lportMin)
		}
		used[lport] = true
	}
	if n := w.ctr.NewConns.Load(); n != uint64(span) {
		t.Fatalf("%d connections, want %d", n, span)
	}
	other := l.request(40000, lvs.TCPSyn, 0)
	other.src = netip.MustParseAddr("198.18.0.2") // a client with no connection yet
	l.mustDrop(t, 1, other, 0, now+1, DropPortExhausted)
	if n := w.ctr.NewConns.Load(); n != uint64(span) || w.ct.Len() != span {
		t.Errorf("after exhaustion: %d new connections, %d in the table; want %d", n, w.ct.Len(), span)
	}
	// One connection ends: its port is free again.
	var victim *conntrack.Conn
	w.ct.Walk(func(c *conntrack.Conn) bool {
		if c.LPort == lportMin+100 {
			victim = c
		}
		return victim == nil
	})
	if victim == nil {
		t.Fatal("no connection with local port 1124")
	}
	w.ct.Delete(victim)
	w.lportNext[inet.AddrFromNetip(l.locl)] = 90 // the next try is near it, as a real wrap-around would be
	v := l.mustForward(t, 2, other, 0, 1, now+2)
	if v.tcp.SrcPort != lportMin+100 {
		t.Errorf("new connection got local port %d, want the freed %d", v.tcp.SrcPort, lportMin+100)
	}
}

// TestFullNATNoLocalAddress: a full-NAT service without local addresses
// has no port to give.
func TestFullNATNoLocalAddress(t *testing.T) {
	l := newLab(t, lvs.FwdFullNAT, false)
	l.st.services[0].LocalAddrs = nil
	l.mustDrop(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, DropPortExhausted)
	if l.w.ct.Len() != 0 {
		t.Errorf("%d connections, want 0", l.w.ct.Len())
	}
}

// TestFullNATPortTries: the ports a worker tries for one new connection
// are bounded (lportTries per local address); past them the next local
// address is tried.
func TestFullNATPortTries(t *testing.T) {
	l := newLab(t, lvs.FwdFullNAT, false)
	w := l.w
	second := netip.MustParseAddr("198.18.1.251")
	svc := l.st.services[0]
	svc.LocalAddrs = append(svc.LocalAddrs, inet.AddrFromNetip(second))
	dst := l.st.dests[0]
	// Occupy lportTries ports from where each address starts on the first
	// (a worker picks a random start; these start at lportMin).
	first := svc.LocalAddrs[0]
	w.lportNext[first], w.lportNext[svc.LocalAddrs[1]] = 0, 0
	for k := 0; k < lportTries; k++ {
		c := conntrack.Conn{Orig: conntrack.Tuple{Src: inet.AddrFromNetip(l.client), Dst: inet.AddrFromNetip(l.vip), SrcPort: uint16(1000 + k), DstPort: 80, Proto: 6},
			Reply: conntrack.Tuple{Src: dst.Addr, Dst: first, SrcPort: dst.Port, DstPort: uint16(lportMin + k), Proto: 6}, Fwd: lvs.FwdFullNAT}
		if _, err := w.ct.Insert(&c, 1); err != nil {
			t.Fatal(err)
		}
	}
	v := l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 2)
	if v.src(0) != second || v.tcp.SrcPort != lportMin {
		t.Errorf("new connection from %s:%d, want %s:%d (the first address's %d tries used)", v.src(0), v.tcp.SrcPort, second, lportMin, lportTries)
	}
	if next := w.lportNext[first]; next != lportTries {
		t.Errorf("first address resumes at %d, want %d", next, lportTries)
	}
}

// TestTTLExpiry: a request or reply with TTL (hop limit) 1 is dropped and
// counted, not forwarded with TTL 0.
func TestTTLExpiry(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newLab(t, lvs.FwdNAT, v6)
		r := l.request(40000, lvs.TCPSyn, 0)
		r.ttl = 1
		l.mustDrop(t, 0, r, 0, 1, DropTTL)
		r.ttl = 2
		if v := l.mustForward(t, 1, r, 0, 1, 2); v.ttls[0] != 1 {
			t.Errorf("TTL 2 forwarded with %d, want 1", v.ttls[0])
		}
		back := l.fromReal(l.client, 40000, lvs.TCPSyn|lvs.TCPAck, 0)
		back.ttl = 1
		l.mustDrop(t, 2, back, 1, 3, DropTTL)
		if n := l.w.ctr.Inbound.Load() + l.w.ctr.Outbound.Load(); n != 1 {
			t.Errorf("%d packets forwarded, want 1", n)
		}
	}
}

// TestNoService: a SYN to a port or address without a service is dropped
// as no_service and creates nothing.
func TestNoService(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	p := l.request(40000, lvs.TCPSyn, 0)
	p.dport = 81
	l.mustDrop(t, 0, p, 0, 1, DropNoService)
	p = l.request(40000, lvs.TCPSyn, 0)
	p.dst = netip.MustParseAddr("198.18.0.101")
	l.mustDrop(t, 1, p, 0, 2, DropNoService)
	p = l.request(40000, lvs.TCPSyn, 0)
	p.udp = true // the service is TCP only
	l.mustDrop(t, 2, p, 0, 3, DropNoService)
	if l.w.ct.Len() != 0 || l.w.ctr.NewConns.Load() != 0 {
		t.Errorf("%d connections made", l.w.ct.Len())
	}
	// A service of port 0 (persistent, every port) matches any port.
	svc := l.st.services[0]
	l.st.byKey = map[serviceKey]*Service{{svc.VIP, 0, 6}: svc}
	p = l.request(40000, lvs.TCPSyn, 0)
	p.dport = 443
	if v := l.mustForward(t, 3, p, 0, 1, 4); v.tcp.DstPort != 8080 {
		t.Errorf("every-port service: to port %d", v.tcp.DstPort)
	}
}

// TestTableFull: a table full of connections past their handshake refuses
// a new one (table_full); a table holding a half-open connection evicts
// it instead.
func TestTableFull(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	w := l.w
	w.setTable(conntrack.New(conntrack.Config{Capacity: 3, OnState: w.d.countState}))
	now := int64(1)
	for port := uint16(1); port <= 3; port++ {
		l.mustForward(t, 0, l.request(port, lvs.TCPSyn, 0), 0, 1, now)
		l.mustForward(t, 1, l.request(port, lvs.TCPAck, 0), 0, 1, now+1)
		now += 2
	}
	l.mustDrop(t, 2, l.request(4, lvs.TCPSyn, 0), 0, now, DropTableFull)
	// Existing connections still pass.
	l.mustForward(t, 3, l.request(2, lvs.TCPAck, 10), 0, 1, now+1)

	// Half-open connections are given up for new ones.
	w.setTable(conntrack.New(conntrack.Config{Capacity: 2}))
	l.mustForward(t, 0, l.request(1, lvs.TCPSyn, 0), 0, 1, now+2)
	l.mustForward(t, 1, l.request(2, lvs.TCPSyn, 0), 0, 1, now+3)
	l.mustForward(t, 2, l.request(3, lvs.TCPSyn, 0), 0, 1, now+4)
	if s := w.ct.Stats(); s.EvictedHalfOpen != 1 {
		t.Errorf("evicted %d half-open connections, want 1", s.EvictedHalfOpen)
	}
	if n := w.ctr.Drops[DropTableFull].Load(); n != 1 {
		t.Errorf("table_full %d, want 1", n)
	}
}

// TestOtherDrops: the remaining reasons a frame is dropped, each counted
// as itself.
func TestOtherDrops(t *testing.T) {
	t.Run("malformed", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		b := l.request(40000, lvs.TCPSyn, 0).bytes(t)
		if _, ok, _ := l.run(t, 0, b[:30], 0, 1); ok || l.w.ctr.Drops[DropMalformed].Load() != 1 {
			t.Errorf("truncated frame: drops %v", dropSummary(l.w))
		}
	})
	t.Run("fragment", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		b := l.request(40000, lvs.TCPSyn, 40).bytes(t)
		b[14+6], b[14+7] = 0, 8 // fragment offset 64 bytes: a later fragment
		fixIPv4Sum(b[14:34])
		// Held for its first fragment (frag.go), then dropped after the timeout.
		if out, ok, _ := l.run(t, 0, b, 0, 1); !ok || out != outKept || l.w.ctr.FragHeld.Load() != 1 {
			t.Errorf("later fragment: out=%d ok=%v, drops %v", out, ok, dropSummary(l.w))
		}
		l.w.expireFrags(1 + fragHoldTimeout)
		if l.w.ctr.FragTimedOut.Load() != 1 {
			t.Errorf("later fragment not timed out")
		}
	})
	t.Run("unsupported protocol", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		b := serialize(t, &layers.Ethernet{SrcMAC: clientMAC, DstMAC: dirMAC0, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: l.client.AsSlice(), DstIP: l.vip.AsSlice()},
			gopacket.Payload(make([]byte, 20)))
		if _, ok, _ := l.run(t, 0, b, 0, 1); ok || l.w.ctr.Drops[DropUnsupported].Load() != 1 {
			t.Errorf("GRE: drops %v", dropSummary(l.w))
		}
	})
	t.Run("no conn", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		l.st.services[0].SynProxy = SynProxyOff
		l.mustDrop(t, 0, l.request(40000, lvs.TCPAck, 0), 0, 1, DropNoConn)
		l.mustDrop(t, 1, l.request(40000, lvs.TCPSyn|lvs.TCPAck, 0), 0, 2, DropNoConn)
		l.mustDrop(t, 2, l.request(40000, lvs.TCPSyn|lvs.TCPRst, 0), 0, 3, DropNoConn)
	})
	t.Run("no dest", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		l.st.services[0].Sched.Update(nil)
		l.mustDrop(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, DropNoDest)
	})
	t.Run("neighbour miss", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		l.w.d.res.table.Store(&map[inet.Addr]NextHop{})
		l.mustDrop(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, DropNeighMiss)
		select {
		case a := <-l.w.d.res.miss:
			if a != inet.AddrFromNetip(l.real) {
				t.Errorf("resolver asked for %s, want %s", a, l.real)
			}
		default:
			t.Error("the miss was not reported to the resolver")
		}
	})
	t.Run("no tx queue", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		w := l.w
		w.socks[1] = nil
		free := len(w.free)
		w.forward(put(w, 0, l.request(40000, lvs.TCPSyn, 0).bytes(t)), 0, 1, l.st, true)
		if n := w.ctr.Drops[DropNoTxQueue].Load(); n != 1 || len(w.free) != free+1 || len(w.tx[1]) != 0 {
			t.Errorf("no socket on the egress interface: no_tx_queue %d, free %d -> %d", n, free, len(w.free))
		}
		w.socks[1] = &xsk.Socket{}
		w.forward(put(w, 1, l.request(40001, lvs.TCPSyn, 0).bytes(t)), 0, 2, l.st, true)
		if len(w.tx[1]) != 1 {
			t.Errorf("forward did not queue the frame for TX")
		}
	})
	t.Run("synced reply before request", func(t *testing.T) {
		l := newLab(t, lvs.FwdNAT, false)
		l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
		l.w.path(conns(l.w)[0]).flags |= flagNoL2
		l.mustDrop(t, 1, l.fromReal(l.client, 40000, lvs.TCPSyn|lvs.TCPAck, 0), 1, 2, DropSyncNoL2)
		// The next request teaches the connection its client's L2 path.
		l.mustForward(t, 2, l.request(40000, lvs.TCPAck, 0), 0, 1, 3)
		l.mustForward(t, 3, l.fromReal(l.client, 40000, lvs.TCPAck, 0), 1, 0, 4)
	})
}

// TestPortReuse: a new SYN on a connection in TIME_WAIT replaces it at
// once (a new connection, scheduled again) instead of being dropped.
func TestPortReuse(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	w := l.w
	l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	c := conns(w)[0]
	w.ct.Restore(c, conntrack.StateTimeWait, 1e12)
	l.mustForward(t, 1, l.request(40000, lvs.TCPSyn, 0), 0, 1, 2)
	cs := conns(w)
	if len(cs) != 1 || cs[0].State != conntrack.StateSynRecv || w.ctr.NewConns.Load() != 2 {
		t.Errorf("after a SYN on TIME_WAIT: %d connections (state %v), %d new; want one new in SYN_RECV", len(cs), cs[0].State, w.ctr.NewConns.Load())
	}
}

func fixIPv4Sum(h []byte) {
	h[10], h[11] = 0, 0
	s := ^uint16(ones(sum16(h, 0)))
	binary.BigEndian.PutUint16(h[10:], s)
}
