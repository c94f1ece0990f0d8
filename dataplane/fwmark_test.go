package dataplane

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// markWorker turns testWorker's service into fwmark service 1 matching
// 198.18.0.96/30 tcp 80 and 8443, persistent, with two real servers of
// port 0 behind it.
func markWorker(t *testing.T, fwd lvs.Fwd) (*worker, *snapshot) {
	w := testWorker(t, fwd)
	old := w.d.state.Load()
	real2 := netip.MustParseAddr("198.18.1.2")
	tbl := *w.d.res.table.Load()
	tbl[inet.AddrFromNetip(real2)] = tbl[inet.AddrFromNetip(realIP)]
	w.d.res.table.Store(&tbl)
	s, _ := sched.New("rr", 0)
	var dests []*Dest
	for i, a := range []netip.Addr{realIP, real2} {
		d := &Dest{Dest: sched.NewDest(inet.AddrFromNetip(a), 0, 1), ID: uint32(i), Protos: []lvs.Proto{lvs.ProtoTCP}, Fwd: fwd, stats: newDestStats(1)}
		d.Dest.ID, d.Index = uint32(i), i
		dests = append(dests, d)
	}
	match := []MarkMatch{
		{Prefix: netip.MustParsePrefix("198.18.0.96/30"), Lo: 80, Hi: 80, Proto: 6},
		{Prefix: netip.MustParsePrefix("198.18.0.96/30"), Lo: 8443, Hi: 8443, Proto: 6},
	}
	svc := &Service{Name: "fw", FwMark: 1, Match: match, Fwd: fwd, Sched: s, Dests: dests,
		Persistence: 300e9, PersistBits: 32, SynProxy: SynProxyOff}
	if fwd == lvs.FwdFullNAT {
		svc.LocalAddrs = []inet.Addr{inet.AddrFromNetip(localIP)}
	}
	s.Update([]*sched.Dest{dests[0].Dest, dests[1].Dest})
	plain := old.services[0]
	plain.ID = 1
	st := &snapshot{
		byKey:    old.byKey, // the plain service 198.18.0.100:80, which wins
		byMark:   map[uint32]*Service{1: svc},
		services: []*Service{svc, plain},
		dests:    append(dests, old.dests[0]),
	}
	old.dests[0].ID, old.dests[0].Dest.ID = 2, 2
	st.addMarks(svc)
	w.d.state.Store(st)
	return w, st
}

func TestMarkLookup(t *testing.T) {
	_, st := markWorker(t, lvs.FwdNAT)
	a := func(s string) inet.Addr { return inet.AddrFromNetip(netip.MustParseAddr(s)) }
	cases := []struct {
		addr  string
		port  uint16
		proto lvs.Proto
		want  string
	}{
		{"198.18.0.97", 80, 6, "fw"},
		{"198.18.0.99", 8443, 6, "fw"},
		{"198.18.0.100", 80, 6, "web"}, // the plain service
		{"198.18.0.100", 8443, 6, ""},
		{"198.18.0.97", 81, 6, ""},
		{"198.18.0.97", 80, 17, ""},
		{"2001:db8::1", 80, 6, ""},
	}
	for _, c := range cases {
		got := ""
		if svc := st.lookup(a(c.addr), c.port, c.proto); svc != nil {
			got = svc.Name
		}
		if got != c.want {
			t.Errorf("lookup %s:%d/%d = %q, want %q", c.addr, c.port, c.proto, got, c.want)
		}
	}
	allocs := testing.AllocsPerRun(100, func() { st.lookup(a("198.18.0.97"), 8443, 6) })
	if allocs != 0 {
		t.Errorf("lookup allocates %.0f times", allocs)
	}
}

// TestMarkPersistenceAcrossPorts: a client's connections to both ports and
// two addresses of the mark land on one real server (the template is keyed
// by client and mark, port 0), while another client, scheduled rr, gets
// the other; the real server of port 0 gets the port the client asked for.
func TestMarkPersistenceAcrossPorts(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT} {
		t.Run(fwd.String(), func(t *testing.T) {
			w, st := markWorker(t, fwd)
			client2 := netip.MustParseAddr("198.18.0.2")
			var first string
			for i, c := range []struct {
				src   netip.Addr
				vip   string
				dport uint16
			}{
				{clientIP, "198.18.0.97", 80},
				{clientIP, "198.18.0.97", 8443},
				{clientIP, "198.18.0.98", 8443},
				{clientIP, "198.18.0.98", 80},
			} {
				desc := put(w, i, tcpFrame(t, clientMAC, dirMAC0, c.src, netip.MustParseAddr(c.vip), uint16(40000+i), c.dport, true, false))
				if _, ok := w.process(&desc, 0, int64(i+1), st, true); !ok {
					t.Fatalf("SYN %d to %s:%d dropped: %v", i, c.vip, c.dport, dropSummary(w))
				}
				_, ip, tcp := decode(t, w.umem.Bytes(desc.Addr, desc.Len))
				if tcp.DstPort != layersPort(c.dport) {
					t.Errorf("SYN %d: port %d, want %d kept (real server port 0)", i, tcp.DstPort, c.dport)
				}
				if first == "" {
					first = ip.DstIP.String()
				} else if ip.DstIP.String() != first {
					t.Errorf("SYN %d to %s:%d went to %s, want %s (persistence across the mark)", i, c.vip, c.dport, ip.DstIP, first)
				}
			}
			desc := put(w, 10, tcpFrame(t, clientMAC, dirMAC0, client2, netip.MustParseAddr("198.18.0.97"), 50000, 8443, true, false))
			if _, ok := w.process(&desc, 0, 20, st, true); !ok {
				t.Fatalf("other client's SYN dropped: %v", dropSummary(w))
			}
			if _, ip, _ := decode(t, w.umem.Bytes(desc.Addr, desc.Len)); ip.DstIP.String() == first {
				t.Errorf("other client also went to %s: rr should pick the other server", first)
			}
			if n := w.ct.TemplateLen(); n != 2 {
				t.Errorf("%d templates, want 2 (one per client, for the whole mark)", n)
			}
		})
	}
}

func layersPort(p uint16) layers.TCPPort { return layers.TCPPort(p) }
