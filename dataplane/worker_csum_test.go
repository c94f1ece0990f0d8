package dataplane

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/govs/govs/lvs"
)

// unfinishedFrame returns p as a sender with TX checksum offload hands it
// over (CHECKSUM_PARTIAL): the TCP/UDP checksum field holds the folded
// pseudo-header sum, not complemented. Computed with the lab's reference
// sums, not package packet's.
func unfinishedFrame(t *testing.T, p pk) []byte {
	t.Helper()
	f := p.bytes(t)
	ip := f[14:]
	var l3, l4len int
	var ph []byte
	if p.src.Is4() {
		l3 = int(ip[0]&0xf) * 4
		l4len = int(binary.BigEndian.Uint16(ip[2:])) - l3
		ph = append(append(ph, ip[12:20]...), 0, ip[9], byte(l4len>>8), byte(l4len))
	} else {
		l3 = 40
		l4len = int(binary.BigEndian.Uint16(ip[4:]))
		ph = binary.BigEndian.AppendUint32(append(ph, ip[8:40]...), uint32(l4len))
		ph = append(ph, 0, 0, 0, ip[6])
	}
	field := 16
	if p.udp {
		field = 6
	}
	binary.BigEndian.PutUint16(ip[l3+field:], uint16(ones(sum16(ph, 0))))
	return f
}

// TestWorkerFinishesChecksums: frames whose sender left the checksum to
// TX offload leave the worker with a complete one (inspect verifies every
// checksum) in every forwarding mode, IPv4 and IPv6, TCP both ways and
// UDP, and each is counted once as csum_finished; complete ones are not.
func TestWorkerFinishesChecksums(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT, lvs.FwdDR, lvs.FwdTun} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				l := newLab(t, fwd, v6)
				w := l.w
				const cport = 40000
				slot := 0
				send := func(p pk, in, out int, unfinished bool) view {
					t.Helper()
					frame := p.bytes(t)
					if unfinished {
						frame = unfinishedFrame(t, p)
					}
					slot++
					got, ok, f := l.run(t, slot, frame, in, int64(slot))
					if !ok || got != out {
						t.Fatalf("%v:%d -> %v:%d: out=%d ok=%v, want %d; drops %v", p.src, p.sport, p.dst, p.dport, got, ok, out, dropSummary(w))
					}
					return inspect(t, f)
				}
				syn := l.request(cport, lvs.TCPSyn, 0)
				lport := checkRequest(t, l, send(syn, 0, 1, true), syn, fwd)
				data := l.request(cport, lvs.TCPAck, 1333)
				checkRequest(t, l, send(data, 0, 1, true), data, fwd)
				odd := l.request(cport, lvs.TCPAck, 7)
				checkRequest(t, l, send(odd, 0, 1, false), odd, fwd) // complete: untouched
				want := uint64(2)
				if fwd == lvs.FwdNAT || fwd == lvs.FwdFullNAT {
					to, port := l.client, uint16(cport)
					if fwd == lvs.FwdFullNAT {
						to, port = l.locl, lport
					}
					for _, r := range []pk{l.fromReal(to, port, lvs.TCPSyn|lvs.TCPAck, 0), l.fromReal(to, port, lvs.TCPAck, 1001)} {
						checkReply(t, l, send(r, 1, 0, true), r, cport)
						want++
					}
				}
				if n := w.ctr.CsumFinished.Load(); n != want {
					t.Errorf("csum_finished %d, want %d", n, want)
				}
			})
		}
	}
	t.Run("udp", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			l := newLab(t, lvs.FwdNAT, v6)
			svc := l.st.services[0]
			svc.Proto = 17
			l.st.byKey = map[serviceKey]*Service{{svc.VIP, 80, 17}: svc}
			q := l.request(5353, 0, 41)
			q.udp = true
			got, ok, frame := l.run(t, 0, unfinishedFrame(t, q), 0, 1)
			if !ok || got != 1 {
				t.Fatalf("UDP request: out=%d ok=%v drops %v", got, ok, dropSummary(l.w))
			}
			inspect(t, frame)
			r := l.fromReal(l.client, 5353, 0, 60)
			r.udp = true
			if got, ok, frame = l.run(t, 1, unfinishedFrame(t, r), 1, 2); !ok || got != 0 {
				t.Fatalf("UDP reply: out=%d ok=%v drops %v", got, ok, dropSummary(l.w))
			}
			inspect(t, frame)
			if n := l.w.ctr.CsumFinished.Load(); n != 2 {
				t.Errorf("v6=%v: csum_finished %d, want 2", v6, n)
			}
		}
	})
}
