package dataplane

import (
	"fmt"
	"testing"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TestSloppy: a TCP segment other than a SYN of a connection the worker
// does not know (a flow another director started: ECMP moved it) starts a
// connection toward a DR or TUN real server when the service is sloppy (or
// its scheduler consistent: Service.Sloppy then), in the state the segment
// gives (ESTABLISHED for an ACK, CLOSE for a FIN), and its next segments
// are forwarded as the connection's. A RST starts nothing; without sloppy,
// and toward a NAT or full-NAT server, such segments are dropped as
// no_conn, as IPVS does.
func TestSloppy(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdDR, lvs.FwdTun, lvs.FwdNAT, lvs.FwdFullNAT} {
		for _, sloppy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sloppy=%v", fwd, sloppy), func(t *testing.T) {
				l := newLab(t, fwd, false)
				w := l.w
				l.st.services[0].Sloppy = sloppy
				// Else a NAT service's mid-flow ACK is a SYN proxy
				// handshake ACK with a wrong cookie (syncookies_rejected).
				l.st.services[0].SynProxy = SynProxyOff
				mid := l.request(40000, lvs.TCPAck, 100)
				if !sloppy || (fwd != lvs.FwdDR && fwd != lvs.FwdTun) {
					l.mustDrop(t, 0, mid, 0, 1, DropNoConn)
					if w.ct.Len() != 0 {
						t.Errorf("%d connections after a dropped mid-flow segment", w.ct.Len())
					}
					return
				}
				l.mustForward(t, 0, mid, 0, 1, 1)
				c, dir, ok := w.ct.Lookup(&conntrack.Tuple{Src: inet.AddrFromNetip(l.client), Dst: inet.AddrFromNetip(l.vip), SrcPort: 40000, DstPort: 80, Proto: 6}, 1)
				if !ok || dir != conntrack.DirOriginal || c.State != conntrack.StateEstablished {
					t.Fatalf("after a mid-flow ACK: found %v, state %v; want ESTABLISHED", ok, c)
				}
				if n := w.ctr.NewConns.Load(); n != 1 {
					t.Errorf("new_conns %d, want 1", n)
				}
				l.mustForward(t, 1, l.request(40000, lvs.TCPAck, 10), 0, 1, 2) // the same connection
				if n := w.ctr.NewConns.Load(); n != 1 {
					t.Errorf("new_conns %d after the connection's next segment, want 1", n)
				}
				// A RST of an unknown connection starts nothing.
				l.mustDrop(t, 2, l.request(40001, lvs.TCPRst|lvs.TCPAck, 0), 0, 3, DropNoConn)
				// A FIN does, closing (IPVS's sloppy_tcp schedules it too).
				l.mustForward(t, 3, l.request(40002, lvs.TCPFin|lvs.TCPAck, 0), 0, 1, 4)
				c, _, ok = w.ct.Lookup(&conntrack.Tuple{Src: inet.AddrFromNetip(l.client), Dst: inet.AddrFromNetip(l.vip), SrcPort: 40002, DstPort: 80, Proto: 6}, 4)
				if !ok || c.State != conntrack.StateClose {
					t.Errorf("after a mid-flow FIN: found %v, state %v; want CLOSE", ok, c)
				}
			})
		}
	}
}
