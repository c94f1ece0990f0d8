package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// fragTestMTU is the IP size of the fragments the tests' clients send (a
// client link with MTU 1280), so that TUN's outer header still fits the
// lab's 1500 bytes toward the real server.
const fragTestMTU = 1280

// fragment splits the IP datagram ip (no Ethernet header, IPv4 without
// options or IPv6 without extension headers) into fragments of at most mtu
// bytes with identification id, as a sending kernel does, and returns them
// as Ethernet frames from srcMAC to dstMAC.
func fragment(t *testing.T, ip []byte, id uint32, mtu int, srcMAC, dstMAC net.HardwareAddr) [][]byte {
	t.Helper()
	var out [][]byte
	eth := func(etype uint16, pkt []byte) []byte {
		f := append(append(append([]byte{}, dstMAC...), srcMAC...), byte(etype>>8), byte(etype))
		return append(f, pkt...)
	}
	if ip[0]>>4 == 4 {
		hdr, data := ip[:20], ip[20:]
		chunk := (mtu - 20) &^ 7
		for off := 0; off < len(data); off += chunk {
			n := min(chunk, len(data)-off)
			h := append([]byte{}, hdr...)
			binary.BigEndian.PutUint16(h[2:], uint16(20+n))
			binary.BigEndian.PutUint16(h[4:], uint16(id))
			fo := uint16(off / 8)
			if off+n < len(data) {
				fo |= 0x2000
			}
			binary.BigEndian.PutUint16(h[6:], fo)
			fixIPv4Sum(h)
			out = append(out, eth(0x0800, append(h, data[off:off+n]...)))
		}
		return out
	}
	hdr, data := ip[:40], ip[40:]
	chunk := (mtu - 48) &^ 7
	for off := 0; off < len(data); off += chunk {
		n := min(chunk, len(data)-off)
		h := append([]byte{}, hdr...)
		h[6] = 44
		binary.BigEndian.PutUint16(h[4:], uint16(8+n))
		fh := make([]byte, 8)
		fh[0] = ip[6]
		fo := uint16(off)
		if off+n < len(data) {
			fo |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], fo)
		binary.BigEndian.PutUint32(fh[4:], id)
		out = append(out, eth(0x86dd, append(append(h, fh...), data[off:off+n]...)))
	}
	return out
}

// datagram is what the fragments a worker sent reassemble to.
type datagram struct {
	outerSrc, outerDst netip.Addr // TUN
	src, dst           netip.Addr
	sport, dport       uint16
	payload            []byte // after the L4 header
	dstMAC             net.HardwareAddr
}

// reassemble checks the fragments frames (IPv4 header checksums, lengths,
// one identification, the same MACs and outer header) and joins them; the
// L4 checksum of the whole is verified against the final addresses.
func reassemble(t *testing.T, frames [][]byte, proto uint8) datagram {
	t.Helper()
	var d datagram
	var whole []byte
	have := 0
	total := -1
	for i, f := range frames {
		if len(f) < 14 {
			t.Fatalf("fragment %d: %d bytes", i, len(f))
		}
		mac := net.HardwareAddr(f[:6])
		if i == 0 {
			d.dstMAC = append(net.HardwareAddr{}, mac...)
		} else if !bytes.Equal(mac, d.dstMAC) {
			t.Errorf("fragment %d to %v, the first to %v", i, mac, d.dstMAC)
		}
		ip := f[14:]
		if ip[0]>>4 == 4 && (ip[9] == 4 || ip[9] == 41) || ip[0]>>4 == 6 && (ip[6] == 4 || ip[6] == 41) {
			// TUN: check and strip the outer header.
			var os, od netip.Addr
			if ip[0]>>4 == 4 {
				if ones(sum16(ip[:20], 0)) != 0xffff {
					t.Errorf("fragment %d: outer IPv4 checksum wrong", i)
				}
				if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
					t.Errorf("fragment %d: outer length %d, frame %d", i, binary.BigEndian.Uint16(ip[2:]), len(ip))
				}
				os, od = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
				ip = ip[20:]
			} else {
				os, od = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
				ip = ip[40:]
			}
			if i == 0 {
				d.outerSrc, d.outerDst = os, od
			} else if os != d.outerSrc || od != d.outerDst {
				t.Errorf("fragment %d: outer %v -> %v, the first's %v -> %v", i, os, od, d.outerSrc, d.outerDst)
			}
		}
		var src, dst netip.Addr
		var off, n int
		var more bool
		var data []byte
		if ip[0]>>4 == 4 {
			if ones(sum16(ip[:20], 0)) != 0xffff {
				t.Errorf("fragment %d: IPv4 header checksum wrong", i)
			}
			if ip[9] != proto {
				t.Errorf("fragment %d: protocol %d", i, ip[9])
			}
			src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
			fo := binary.BigEndian.Uint16(ip[6:])
			off, more = int(fo&0x1fff)*8, fo&0x2000 != 0
			data = ip[20:binary.BigEndian.Uint16(ip[2:])]
		} else {
			src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			if ip[6] != 44 || ip[40] != proto {
				t.Fatalf("fragment %d: next header %d/%d", i, ip[6], ip[40])
			}
			fo := binary.BigEndian.Uint16(ip[42:])
			off, more = int(fo&0xfff8), fo&1 != 0
			data = ip[48 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
		}
		if i == 0 {
			d.src, d.dst = src, dst
		} else if src != d.src || dst != d.dst {
			t.Errorf("fragment %d: %v -> %v, the first's %v -> %v", i, src, dst, d.src, d.dst)
		}
		n = len(data)
		if len(whole) < off+n {
			whole = append(whole, make([]byte, off+n-len(whole))...)
		}
		copy(whole[off:], data)
		have += n
		if !more {
			total = off + n
		}
	}
	if total < 0 || have != total || len(whole) != total {
		t.Fatalf("fragments do not make a datagram: %d bytes of %d", have, total)
	}
	d.sport, d.dport = binary.BigEndian.Uint16(whole[0:]), binary.BigEndian.Uint16(whole[2:])
	what := "TCP"
	hl := int(whole[12]>>4) * 4
	if proto == 17 {
		what, hl = "UDP", 8
	}
	checkL4Sum(t, what, d.src.AsSlice(), d.dst.AsSlice(), proto, whole)
	d.payload = whole[hl:]
	return d
}

// fragLab is a lab with a UDP service on the VIP's port 80 besides the TCP one.
func fragLab(t *testing.T, fwd lvs.Fwd, v6 bool) *spLab {
	l := newLab(t, fwd, v6)
	svc := *l.st.services[0]
	svc.Proto = 17
	svc.Name += "-udp"
	l.st.byKey[serviceKey{svc.VIP, 80, 17}] = &svc
	l.st.services = append(l.st.services, &svc)
	return l
}

// sendFrags runs frames through the lab's worker from slot first on,
// received on inIface, and returns what it sent on interface out in the
// order sent, failing on anything else.
func (l *spLab) sendFrags(t *testing.T, frames [][]byte, first, inIface, out int, now int64) [][]byte {
	t.Helper()
	var sent [][]byte
	w := l.w
	for i, f := range frames {
		w.tx[out] = w.tx[out][:0]
		desc := put(w, first+i, f)
		got, ok := w.process(&desc, inIface, now, l.st, false)
		if !ok {
			t.Fatalf("fragment %d dropped; drops %v", i, dropSummary(w))
		}
		for _, d := range w.tx[out] { // held fragments released after their first
			sent = append(sent, append([]byte{}, w.umem.Bytes(d.Addr, d.Len)...))
		}
		if got == outKept {
			continue
		}
		if got != out {
			t.Fatalf("fragment %d out on %d, want %d", i, got, out)
		}
		sent = append(sent, append([]byte{}, w.umem.Bytes(desc.Addr, desc.Len)...))
	}
	w.tx[out] = w.tx[out][:0]
	return sent
}

// TestFragmentsEveryMode sends a 3000-byte datagram, UDP and TCP, in
// fragments through every forwarding method, IPv4 and IPv6, in order and
// with the first fragment last, and for NAT and full-NAT a fragmented reply
// back: every fragment leaves by the same way, rewritten as the first, and
// together they make the datagram with the right addresses, ports and L4
// checksum.
func TestFragmentsEveryMode(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT, lvs.FwdDR, lvs.FwdTun} {
		for _, v6 := range []bool{false, true} {
			for _, udp := range []bool{true, false} {
				for _, reversed := range []bool{false, true} {
					name := fmt.Sprintf("%s/v6=%v/udp=%v/reversed=%v", fwd, v6, udp, reversed)
					t.Run(name, func(t *testing.T) { testFragMode(t, fwd, v6, udp, reversed) })
				}
			}
		}
	}
}

func testFragMode(t *testing.T, fwd lvs.Fwd, v6, udp, reversed bool) {
	l := fragLab(t, fwd, v6)
	w := l.w
	const cport = 40000
	proto := uint8(6)
	if udp {
		proto = 17
	} else {
		l.mustForward(t, 0, l.request(cport, lvs.TCPSyn, 0), 0, 1, 1)
	}
	req := l.request(cport, lvs.TCPAck, 3000)
	req.udp, req.noDF = udp, true
	frames := fragment(t, req.ip(t), 0x4711, fragTestMTU, clientMAC, dirMAC0)
	if len(frames) != 3 {
		t.Fatalf("%d fragments, want 3", len(frames))
	}
	if reversed {
		frames = [][]byte{frames[2], frames[1], frames[0]}
	}
	sent := l.sendFrags(t, frames, 1, 0, 1, 2)
	if len(sent) != 3 {
		t.Fatalf("%d fragments sent, want 3; drops %v", len(sent), dropSummary(w))
	}
	d := reassemble(t, sent, proto)
	if !bytes.Equal(d.dstMAC, realMAC) {
		t.Errorf("to %v, want the real server's MAC", d.dstMAC)
	}
	if !bytes.Equal(d.payload, payloadOf(3000)) {
		t.Errorf("payload differs (%d bytes)", len(d.payload))
	}
	conn := conns(w)
	if len(conn) != 1 {
		t.Fatalf("%d connections, want 1", len(conn))
	}
	c := conn[0]
	wantSrc, wantDst, wantSport, wantDport := l.client, l.real, uint16(cport), uint16(8080)
	switch fwd {
	case lvs.FwdFullNAT:
		wantSrc, wantSport = l.locl, c.LPort
	case lvs.FwdDR, lvs.FwdTun:
		wantDst, wantDport = l.vip, 80
	}
	if d.src != wantSrc || d.dst != wantDst || d.sport != wantSport || d.dport != wantDport {
		t.Errorf("datagram %v:%d -> %v:%d, want %v:%d -> %v:%d", d.src, d.sport, d.dst, d.dport, wantSrc, wantSport, wantDst, wantDport)
	}
	if fwd == lvs.FwdTun {
		tunSrc := dir1IP
		if v6 {
			tunSrc = dir1IP6
		}
		if d.outerSrc != tunSrc || d.outerDst != l.real {
			t.Errorf("tunnel %v -> %v, want %v -> %v", d.outerSrc, d.outerDst, tunSrc, l.real)
		}
	}
	wantHeld := uint64(0)
	if reversed {
		wantHeld = 2
	}
	if f, h := w.ctr.FragForwarded.Load(), w.ctr.FragHeld.Load(); f != 2 || h != wantHeld {
		t.Errorf("frag_forwarded %d, frag_held %d; want 2, %d", f, h, wantHeld)
	}
	if w.frags.nheld != 0 {
		t.Errorf("%d fragments still held", w.frags.nheld)
	}

	if fwd != lvs.FwdNAT && fwd != lvs.FwdFullNAT {
		return
	}
	// A fragmented reply from the real server.
	replyTo, replyPort := l.client, uint16(cport)
	if fwd == lvs.FwdFullNAT {
		replyTo, replyPort = l.locl, c.LPort
	}
	rep := l.fromReal(replyTo, replyPort, lvs.TCPAck, 2400)
	rep.udp, rep.noDF = udp, true
	frames = fragment(t, rep.ip(t), 0x4712, fragTestMTU, realMAC, dirMAC1)
	if reversed {
		frames = [][]byte{frames[1], frames[0]}
	}
	sent = l.sendFrags(t, frames, 10, 1, 0, 3)
	if len(sent) != 2 {
		t.Fatalf("%d reply fragments sent, want 2; drops %v", len(sent), dropSummary(w))
	}
	d = reassemble(t, sent, proto)
	if d.src != l.vip || d.sport != 80 || d.dst != l.client || d.dport != cport || !bytes.Equal(d.dstMAC, clientMAC) {
		t.Errorf("reply %v:%d -> %v:%d (to %v), want %v:80 -> %v:%d", d.src, d.sport, d.dst, d.dport, d.dstMAC, l.vip, l.client, cport)
	}
	if !bytes.Equal(d.payload, payloadOf(2400)) {
		t.Errorf("reply payload differs")
	}
}

// TestFragmentTimeout: a later fragment whose first never comes is held
// for fragHoldTimeout, then dropped and its frame reused.
func TestFragmentTimeout(t *testing.T) {
	l := fragLab(t, lvs.FwdNAT, false)
	w := l.w
	req := l.request(40000, 0, 3000)
	req.udp, req.noDF = true, true
	frames := fragment(t, req.ip(t), 7, fragTestMTU, clientMAC, dirMAC0)
	desc := put(w, 1, frames[1])
	if out, ok := w.process(&desc, 0, 1, l.st, false); !ok || out != outKept {
		t.Fatalf("later fragment: out=%d ok=%v, want held", out, ok)
	}
	free := len(w.free)
	w.expireFrags(1 + fragHoldTimeout - 1)
	if w.frags.nheld != 1 || w.ctr.FragTimedOut.Load() != 0 {
		t.Fatalf("expired before its time")
	}
	w.expireFrags(1 + fragHoldTimeout)
	if w.frags.nheld != 0 || w.ctr.FragTimedOut.Load() != 1 || len(w.free) != free+1 {
		t.Errorf("after the timeout: held %d, timed out %d, free frames %d (was %d)", w.frags.nheld, w.ctr.FragTimedOut.Load(), len(w.free), free)
	}
	// The first and the last still go, as their datagram's.
	sent := l.sendFrags(t, [][]byte{frames[0], frames[2]}, 2, 0, 1, 2+fragHoldTimeout)
	if len(sent) != 2 {
		t.Errorf("%d sent after the timeout, want 2", len(sent))
	}
}

// TestFragmentFirstDropped: when the first fragment is dropped (no
// service), the held and the later fragments are dropped too.
func TestFragmentFirstDropped(t *testing.T) {
	l := fragLab(t, lvs.FwdNAT, false)
	w := l.w
	req := l.request(40000, 0, 3000)
	req.udp, req.noDF, req.dport = true, true, 81 // no service: no_service
	frames := fragment(t, req.ip(t), 9, fragTestMTU, clientMAC, dirMAC0)
	for i, f := range [][]byte{frames[1], frames[0], frames[2]} {
		desc := put(w, 1+i, f)
		if out, ok := w.process(&desc, 0, 1, l.st, false); ok && out != outKept {
			t.Errorf("fragment %d forwarded to %d", i, out)
		}
	}
	if s := dropSummary(w); s["no_service"] != 1 || s["fragment"] != 2 || w.frags.nheld != 0 {
		t.Errorf("drops %v, held %d; want 1 no_service, 2 fragment, none held", s, w.frags.nheld)
	}
}

// TestFragmentTableFull: with no room to hold or record, later fragments
// are dropped and counted; a first fragment is still forwarded.
func TestFragmentTableFull(t *testing.T) {
	l := fragLab(t, lvs.FwdNAT, false)
	w := l.w
	req := l.request(40000, 0, 3000)
	req.udp, req.noDF = true, true
	ip := req.ip(t)
	// Fill the hold: fragHeldMax later fragments of different datagrams.
	for i := range fragHeldMax {
		f := fragment(t, ip, uint32(100+i), fragTestMTU, clientMAC, dirMAC0)[1]
		desc := put(w, 1+i%40, f) // the frames are not looked at again
		if out, ok := w.process(&desc, 0, 1, l.st, false); !ok || out != outKept {
			t.Fatalf("later fragment %d not held", i)
		}
	}
	f := fragment(t, ip, 99, fragTestMTU, clientMAC, dirMAC0)
	desc := put(w, 41, f[1])
	if _, ok := w.process(&desc, 0, 1, l.st, false); ok || w.ctr.FragTableFull.Load() != 1 {
		t.Errorf("later fragment with the hold full: ok=%v table_full %d", ok, w.ctr.FragTableFull.Load())
	}
	w.expireFrags(1 + fragHoldTimeout)

	// Fill the table: every slot live.
	for i := range w.frags.entries {
		w.frags.entries[i] = fragEntry{key: fragKey{id: uint32(i) + 1<<20}, expires: 1 << 62, state: fragDropped}
	}
	sent := l.sendFrags(t, f[:1], 42, 0, 1, 2)
	if len(sent) != 1 || w.ctr.FragTableFull.Load() != 2 {
		t.Errorf("first fragment with the table full: %d sent, table_full %d", len(sent), w.ctr.FragTableFull.Load())
	}
	desc = put(w, 43, f[2])
	if _, ok := w.process(&desc, 0, 3, l.st, false); ok || w.ctr.FragTableFull.Load() != 3 {
		t.Errorf("later fragment with the table full: ok=%v table_full %d", ok, w.ctr.FragTableFull.Load())
	}
}

// TestFragmentHandoff: with two workers, fragments that arrive at either go
// to their datagram's fragment worker and from there to the connection's
// owner, first fragment first, and leave from the owner.
func TestFragmentHandoff(t *testing.T) {
	for _, owner := range []int{0, 1} {
		for _, fw := range []int{0, 1} {
			t.Run(fmt.Sprintf("owner=%d/fragworker=%d", owner, fw), func(t *testing.T) {
				l, w0, w1 := twoWorkers(t, lvs.FwdNAT)
				svc := *l.st.services[0]
				svc.Proto = 17
				l.st.byKey[serviceKey{svc.VIP, 80, 17}] = &svc
				ws := []*worker{w0, w1}
				cport := clientPortOwnedBy(l, owner, 40000)
				req := l.request(cport, 0, 3000)
				req.udp, req.noDF = true, true
				var id uint32
				for id = 1; ; id++ {
					k := fragKey{src: inet.AddrFromNetip(l.client), dst: inet.AddrFromNetip(l.vip), id: id, proto: 17}
					if w0.fragWorker(&k) == fw {
						break
					}
				}
				frames := fragment(t, req.ip(t), id, fragTestMTU, clientMAC, dirMAC0)
				// The middle one first, all received by worker 1-owner.
				rx := ws[1-owner]
				for i, f := range [][]byte{frames[1], frames[0], frames[2]} {
					desc := put(rx, int(rx.regionStart/frameSize)+i, f)
					rx.forward(desc, 0, 1, l.st, false)
					for range 2 {
						publishAll(w0.d)
						w0.drainPeers(1, l.st)
						publishAll(w1.d)
						w1.drainPeers(1, l.st)
					}
				}
				var sent [][]byte
				for _, d := range ws[owner].tx[1] {
					sent = append(sent, ws[owner].umem.Bytes(d.Addr, d.Len))
				}
				if len(sent) != 3 || len(ws[1-owner].tx[1]) != 0 {
					t.Fatalf("owner sent %d, the other %d; drops %v / %v", len(sent), len(ws[1-owner].tx[1]), dropSummary(w0), dropSummary(w1))
				}
				d := reassemble(t, sent, 17)
				if d.dst != l.real || d.dport != 8080 || d.src != l.client {
					t.Errorf("datagram %v:%d -> %v:%d", d.src, d.sport, d.dst, d.dport)
				}
				if n := len(conns(ws[1-owner])); n != 0 {
					t.Errorf("the other worker has %d connections", n)
				}
			})
		}
	}
}

// TestFragmentNoAllocs: forwarding the fragments of a known connection
// allocates nothing.
func TestFragmentNoAllocs(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdTun} {
		l := fragLab(t, fwd, false)
		w := l.w
		l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
		req := l.request(40000, lvs.TCPAck, 3000)
		req.noDF = true
		frames := fragment(t, req.ip(t), 5, fragTestMTU, clientMAC, dirMAC0)
		var desc xsk.Desc
		allocs := testing.AllocsPerRun(100, func() {
			for i, f := range frames {
				desc = put(w, 1+i, f)
				if _, ok := w.process(&desc, 0, 2, l.st, false); !ok {
					t.Fatalf("fragment %d dropped: %v", i, dropSummary(w))
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per datagram", fwd, allocs)
		}
	}
}
