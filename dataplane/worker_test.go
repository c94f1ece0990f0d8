package dataplane

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

var (
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	dirMAC0   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd0}
	dirMAC1   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd1}
	realMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	clientIP  = netip.MustParseAddr("198.18.0.1")
	vipIP     = netip.MustParseAddr("198.18.0.100")
	realIP    = netip.MustParseAddr("198.18.1.1")
	localIP   = netip.MustParseAddr("198.18.1.250")
)

// testWorker is a worker without sockets: frames are placed in its UMEM by
// hand and process is called directly, as the receive loop does.
func testWorker(t testing.TB, fwd lvs.Fwd) *worker {
	t.Helper()
	d := &Director{log: slog.New(slog.NewTextHandler(io.Discard, nil)), opts: Options{RingSize: 64}}
	d.ifaces = []*Interface{
		{Name: "d0", Index: 10, MAC: [6]byte(dirMAC0), MTU: 1500, Queues: 1, Addr4: inet.AddrFromNetip(netip.MustParseAddr("198.18.0.254"))},
		{Name: "d1", Index: 11, MAC: [6]byte(dirMAC1), MTU: 1500, Queues: 1, Addr4: inet.AddrFromNetip(netip.MustParseAddr("198.18.1.254"))},
	}
	d.res = newResolver(d.log, d.ifaces)
	d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(realIP): {Iface: 1, SrcMAC: [6]byte(dirMAC1), DstMAC: [6]byte(realMAC), MTU: 1500,
			Src: inet.AddrFromNetip(netip.MustParseAddr("198.18.1.254"))},
	})
	umem, err := xsk.NewUMEM(64, frameSize)
	if err != nil {
		t.Skipf("no UMEM (mmap): %v", err)
	}
	t.Cleanup(func() { umem.Close() })
	w := &worker{d: d, umem: umem, socks: make([]*xsk.Socket, 2), lportNext: map[inet.Addr]int{},
		regionStart: 0, regionEnd: 64 * frameSize, syncBuf: make([]SyncRecord, 0, syncRing),
		syncOut: make(chan []SyncRecord, 4), syncFree: make(chan []SyncRecord, 4)}
	d.workers = []*worker{w}
	s, _ := sched.New("rr", 0)
	dst := &Dest{Dest: sched.NewDest(inet.AddrFromNetip(realIP), 8080, 1), Proto: 6, Fwd: fwd, stats: newDestStats(1)}
	svc := &Service{Name: "web", VIP: inet.AddrFromNetip(vipIP), Port: 80, Proto: 6, Fwd: fwd, Sched: s, Dests: []*Dest{dst}}
	if fwd == lvs.FwdFullNAT {
		svc.LocalAddrs = []inet.Addr{inet.AddrFromNetip(localIP)}
	}
	s.Update([]*sched.Dest{dst.Dest})
	d.state.Store(&snapshot{
		byKey:    map[serviceKey]*Service{{svc.VIP, 80, 6}: svc},
		services: []*Service{svc},
		dests:    []*Dest{dst},
	})
	w.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 16, Timeouts: conntrack.DefaultTimeouts(), OnState: d.countState}))
	return w
}

func tcpFrame(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, syn, ack bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: syn, ACK: ack, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// put copies frame into frame slot i of the worker's UMEM, at the offset the
// kernel uses, and returns its descriptor.
func put(w *worker, i int, frame []byte) xsk.Desc {
	addr := w.umem.FrameAddr(i) + w.umem.RxDataOffset()
	copy(w.umem.Bytes(addr, uint32(len(frame))), frame)
	return xsk.Desc{Addr: addr, Len: uint32(len(frame))}
}

func decode(t testing.TB, b []byte) (*layers.Ethernet, *layers.IPv4, *layers.TCP) {
	t.Helper()
	pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || ip == nil || tcp == nil {
		t.Fatalf("output does not decode as Ethernet/IPv4/TCP: %v", pkt)
	}
	return eth, ip, tcp
}

func TestProcessNATBothDirections(t *testing.T) {
	w := testWorker(t, lvs.FwdNAT)
	st := w.d.state.Load()
	desc := put(w, 0, tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40000, 80, true, false))
	out, ok := w.process(&desc, 0, 1, st, true)
	if !ok || out != 1 {
		t.Fatalf("SYN to the VIP: out=%d ok=%v, want interface 1 (real-server side); drops %v", out, ok, dropSummary(w))
	}
	eth, ip, tcp := decode(t, w.umem.Bytes(desc.Addr, desc.Len))
	if eth.DstMAC.String() != realMAC.String() || eth.SrcMAC.String() != dirMAC1.String() {
		t.Errorf("MACs %s -> %s, want %s -> %s", eth.SrcMAC, eth.DstMAC, dirMAC1, realMAC)
	}
	if ip.DstIP.String() != realIP.String() || tcp.DstPort != 8080 || ip.SrcIP.String() != clientIP.String() || ip.TTL != 63 {
		t.Errorf("rewritten to %s -> %s:%d ttl %d, want %s -> %s:8080 ttl 63", ip.SrcIP, ip.DstIP, tcp.DstPort, ip.TTL, clientIP, realIP)
	}
	// The real server's SYN-ACK comes back and leaves toward the client.
	desc = put(w, 1, tcpFrame(t, realMAC, dirMAC1, realIP, clientIP, 8080, 40000, true, true))
	out, ok = w.process(&desc, 1, 2, st, true)
	if !ok || out != 0 {
		t.Fatalf("reply: out=%d ok=%v, want interface 0", out, ok)
	}
	eth, ip, tcp = decode(t, w.umem.Bytes(desc.Addr, desc.Len))
	if ip.SrcIP.String() != vipIP.String() || tcp.SrcPort != 80 || eth.DstMAC.String() != clientMAC.String() || eth.SrcMAC.String() != dirMAC0.String() {
		t.Errorf("reply rewritten to %s:%d (%s -> %s), want from %s:80 to the client's MAC", ip.SrcIP, tcp.SrcPort, eth.SrcMAC, eth.DstMAC, vipIP)
	}
	if got := st.dests[0].InactiveConns() + st.dests[0].ActiveConns(); got != 1 {
		t.Errorf("destination counts %d connections, want 1", got)
	}
	// A non-SYN with no connection is dropped, as IPVS does: as a wrong
	// SYN cookie while the service may be SYN-proxied (synproxy.go), as
	// no_conn when it may not.
	desc = put(w, 2, tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40001, 80, false, true))
	if _, ok := w.process(&desc, 0, 3, st, true); ok || w.ctr.SynCookiesRejected.Load() != 1 {
		t.Errorf("ACK without a connection was not dropped as a wrong SYN cookie")
	}
	st.services[0].SynProxy = SynProxyOff
	desc = put(w, 2, tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40001, 80, false, true))
	if _, ok := w.process(&desc, 0, 4, st, true); ok || w.ctr.Drops[DropNoConn].Load() != 1 {
		t.Errorf("ACK without a connection was not dropped as no_conn (syn_proxy off)")
	}
}

func TestProcessFullNAT(t *testing.T) {
	w := testWorker(t, lvs.FwdFullNAT)
	st := w.d.state.Load()
	desc := put(w, 0, tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40000, 80, true, false))
	if out, ok := w.process(&desc, 0, 1, st, true); !ok || out != 1 {
		t.Fatalf("SYN: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	_, ip, tcp := decode(t, w.umem.Bytes(desc.Addr, desc.Len))
	if ip.SrcIP.String() != localIP.String() || ip.DstIP.String() != realIP.String() || tcp.DstPort != 8080 {
		t.Fatalf("full-NAT request %s:%d -> %s:%d, want from %s to %s:8080", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, localIP, realIP)
	}
	if int(tcp.SrcPort) < lportMin {
		t.Errorf("local port %d below %d", tcp.SrcPort, lportMin)
	}
	lport := uint16(tcp.SrcPort)
	desc = put(w, 1, tcpFrame(t, realMAC, dirMAC1, realIP, localIP, 8080, lport, true, true))
	if out, ok := w.process(&desc, 1, 2, st, true); !ok || out != 0 {
		t.Fatalf("reply: out=%d ok=%v drops %v", out, ok, dropSummary(w))
	}
	_, ip, tcp = decode(t, w.umem.Bytes(desc.Addr, desc.Len))
	if ip.SrcIP.String() != vipIP.String() || ip.DstIP.String() != clientIP.String() || tcp.SrcPort != 80 || tcp.DstPort != 40000 {
		t.Errorf("full-NAT reply %s:%d -> %s:%d, want %s:80 -> %s:40000", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, vipIP, clientIP)
	}
}

// TestProcessAllocs proves the whole per-packet path allocates nothing:
// packets of a known connection in both directions, and new connections
// (parse, lookup, schedule, insert, rewrite).
func TestProcessAllocs(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT, lvs.FwdDR, lvs.FwdTun, 100} {
		name := fwd.String()
		withSync := fwd == 100
		if withSync {
			// A sync master records every new connection and state change.
			name, fwd = "nat with sync", lvs.FwdNAT
		}
		t.Run(name, func(t *testing.T) {
			w := testWorker(t, fwd)
			w.d.syncOn.Store(withSync)
			st := w.d.state.Load()
			syn := tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40000, 80, true, false)
			ack := tcpFrame(t, clientMAC, dirMAC0, clientIP, vipIP, 40000, 80, false, true)
			desc := put(w, 0, syn)
			if _, ok := w.process(&desc, 0, 1, st, true); !ok {
				t.Fatalf("first SYN dropped: %v", dropSummary(w))
			}
			now := int64(2)
			allocs := testing.AllocsPerRun(200, func() {
				d := put(w, 1, ack)
				now++
				if _, ok := w.process(&d, 0, now, st, true); !ok {
					t.Fatalf("packet of an established connection dropped: %v", dropSummary(w))
				}
			})
			if allocs != 0 {
				t.Errorf("known connection, inbound: %.1f allocations per packet, want 0", allocs)
			}
			port := uint16(41000)
			allocs = testing.AllocsPerRun(200, func() {
				port++
				frame := w.umem.Bytes(put(w, 2, syn).Addr, uint32(len(syn)))
				frame[34], frame[35] = byte(port>>8), byte(port) // a new source port: a new connection
				d := xsk.Desc{Addr: w.umem.FrameAddr(2) + w.umem.RxDataOffset(), Len: uint32(len(syn))}
				now++
				if _, ok := w.process(&d, 0, now, st, true); !ok {
					t.Fatalf("new connection dropped: %v", dropSummary(w))
				}
				if len(w.syncBuf) > cap(w.syncBuf)/2 {
					w.syncBuf = w.syncBuf[:0] // as the loop's flush would
				}
			})
			if withSync && w.ctr.SyncDropped.Load() == 0 && len(w.syncBuf) == 0 {
				t.Errorf("sync master recorded nothing")
			}
			if allocs != 0 {
				t.Errorf("new connections: %.1f allocations per packet, want 0", allocs)
			}
		})
	}
}

// dropSummary lists the worker's non-zero drop counters.
func dropSummary(w *worker) map[string]uint64 {
	out := map[string]uint64{}
	for i := range w.ctr.Drops {
		if v := w.ctr.Drops[i].Load(); v != 0 {
			out[DropReason(i).String()] = v
		}
	}
	return out
}
