package dataplane

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// twoWorkers makes the lab's director run two workers on one UMEM, wired
// as New wires them: frames [0, 32) are worker 0's region, [32, 64) worker
// 1's; each has a few free frames of its own region, a hand-off ring from
// the other and a return ring to it.
func twoWorkers(t *testing.T, fwd lvs.Fwd) (l *spLab, w0, w1 *worker) {
	t.Helper()
	l = newLab(t, fwd, false)
	w0 = l.w
	d := w0.d
	const half = 32
	w0.regionEnd = half * frameSize
	w0.free = w0.free[:0]
	for i := half - 1; i >= half-8; i-- {
		w0.free = append(w0.free, w0.umem.FrameAddr(i))
	}
	w1 = &worker{d: d, q: 1, umem: w0.umem, socks: []*xsk.Socket{{}, {}}, tx: make([][]xsk.Desc, 2),
		lportNext: map[inet.Addr]int{}, regionStart: half * frameSize, regionEnd: 2 * half * frameSize,
		syncBuf: make([]SyncRecord, 0, syncRing), syncOut: make(chan []SyncRecord, 4), syncFree: make(chan []SyncRecord, 4),
		peerBuf: make([]handoffEntry, rxBatch)}
	for i := 2*half - 1; i >= 2*half-8; i-- {
		w1.free = append(w1.free, w0.umem.FrameAddr(i))
	}
	w1.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 10, Timeouts: conntrack.DefaultTimeouts(), OnState: d.countState}))
	w0.peerBuf = make([]handoffEntry, rxBatch)
	d.workers = []*worker{w0, w1}
	for _, w := range d.workers {
		wk, err := newWaker()
		if err != nil {
			t.Skipf("eventfd: %v", err)
		}
		t.Cleanup(wk.close)
		w.wk = wk
		w.inbox = make([]*spsc, 2)
		w.returns = make([]*spsc, 2)
	}
	w0.inbox[1], w1.inbox[0] = newSPSC(8), newSPSC(8)
	w0.returns[1], w1.returns[0] = newSPSC(half), newSPSC(half)
	for _, dst := range l.st.dests {
		dst.stats = newDestStats(2)
	}
	return l, w0, w1
}

// clientPortOwnedBy returns a client port >= from whose connections worker
// q of two owns.
func clientPortOwnedBy(l *spLab, q int, from uint16) uint16 {
	for p := from; ; p++ {
		if int(mixEndpoint(inet.AddrFromNetip(l.client), p)%2) == q {
			return p
		}
	}
}

// TestHandoffToOwner: a request and its NAT reply that arrive at the worker
// not owning their connection are passed to the owner, which creates and
// translates the connection; the frame is not copied, only its descriptor
// travels. The non-owner's table stays empty.
func TestHandoffToOwner(t *testing.T) {
	l, w0, w1 := twoWorkers(t, lvs.FwdNAT)
	cport := clientPortOwnedBy(l, 1, 40000)
	desc := put(w0, 0, l.request(cport, lvs.TCPSyn, 0).bytes(t))
	out, ok := w0.process(&desc, 0, 1, l.st, false)
	if !ok || out != outHandedOff {
		t.Fatalf("SYN owned by worker 1 at worker 0: out=%d ok=%v, want handed off; drops %v", out, ok, dropSummary(w0))
	}
	if n := w0.ctr.HandedOff.Load(); n != 1 {
		t.Errorf("handed_off %d, want 1", n)
	}
	if w0.ct.Len() != 0 || w1.ct.Len() != 0 {
		t.Fatalf("connections before the owner ran: %d at worker 0, %d at worker 1", w0.ct.Len(), w1.ct.Len())
	}
	publishAll(w1.d)
	if n := w1.drainPeers(2, l.st); n != 1 {
		t.Fatalf("worker 1 drained %d frames, want 1", n)
	}
	if w1.ct.Len() != 1 || w0.ct.Len() != 0 {
		t.Errorf("connections: %d at worker 1 (owner), %d at worker 0; want 1 and 0", w1.ct.Len(), w0.ct.Len())
	}
	if len(w1.tx[1]) != 1 || w1.tx[1][0].Addr != desc.Addr {
		t.Fatalf("worker 1 TX toward the real server: %v, want the same frame %#x", w1.tx[1], desc.Addr)
	}
	v := inspect(t, w0.umem.Bytes(w1.tx[1][0].Addr, w1.tx[1][0].Len))
	if v.dst(0) != l.real || v.tcp.DstPort != 8080 {
		t.Errorf("handed-off SYN left toward %s:%d, want %s:8080", v.dst(0), v.tcp.DstPort, l.real)
	}

	// The NAT reply: its destination is the client, which names the owner.
	desc = put(w0, 1, l.fromReal(l.client, cport, lvs.TCPSyn|lvs.TCPAck, 0).bytes(t))
	if out, ok := w0.process(&desc, 1, 3, l.st, false); !ok || out != outHandedOff {
		t.Fatalf("NAT reply at worker 0: out=%d ok=%v, want handed off", out, ok)
	}
	publishAll(w1.d)
	w1.drainPeers(4, l.st)
	if len(w1.tx[0]) != 1 || w1.tx[0][0].Addr != desc.Addr {
		t.Fatalf("worker 1 TX toward the client: %v, want the reply frame", w1.tx[0])
	}
	if v := inspect(t, w0.umem.Bytes(desc.Addr, desc.Len)); v.src(0) != l.vip || v.tcp.SrcPort != 80 {
		t.Errorf("handed-off reply from %s:%d, want from the VIP", v.src(0), v.tcp.SrcPort)
	}

	// A frame the owner owns is not handed anywhere.
	own := clientPortOwnedBy(l, 0, cport+1)
	desc = put(w0, 2, l.request(own, lvs.TCPSyn, 0).bytes(t))
	if out, ok := w0.process(&desc, 0, 5, l.st, false); !ok || out != 1 {
		t.Errorf("SYN owned by worker 0 at worker 0: out=%d ok=%v, want forwarded", out, ok)
	}
	if n := w0.ctr.HandedOff.Load(); n != 2 {
		t.Errorf("handed_off %d, want 2", n)
	}
}

// TestHandoffFullNATReply: worker q allocates local ports p with p % 2 == q,
// so a full-NAT reply (whose destination is the local address) is handed to
// the worker that allocated its port.
func TestHandoffFullNATReply(t *testing.T) {
	l, w0, w1 := twoWorkers(t, lvs.FwdFullNAT)
	cport := clientPortOwnedBy(l, 1, 40000)
	desc := put(w0, 0, l.request(cport, lvs.TCPSyn, 0).bytes(t))
	if out, _ := w0.process(&desc, 0, 1, l.st, false); out != outHandedOff {
		t.Fatalf("SYN not handed off: out=%d", out)
	}
	publishAll(w1.d)
	w1.drainPeers(2, l.st)
	if len(w1.tx[1]) != 1 {
		t.Fatalf("owner forwarded %d frames, want 1; drops %v", len(w1.tx[1]), dropSummary(w1))
	}
	v := inspect(t, w0.umem.Bytes(w1.tx[1][0].Addr, w1.tx[1][0].Len))
	lport := uint16(v.tcp.SrcPort)
	if lport%2 != 1 || lport < lportMin {
		t.Fatalf("worker 1 allocated local port %d, want one >= %d with port %% 2 == 1", lport, lportMin)
	}
	desc = put(w0, 1, l.fromReal(l.locl, lport, lvs.TCPSyn|lvs.TCPAck, 0).bytes(t))
	if out, ok := w0.process(&desc, 1, 3, l.st, false); !ok || out != outHandedOff {
		t.Fatalf("full-NAT reply at worker 0: out=%d ok=%v, want handed off to worker 1", out, ok)
	}
	publishAll(w1.d)
	w1.drainPeers(4, l.st)
	if len(w1.tx[0]) != 1 {
		t.Fatalf("owner sent %d replies toward the client, want 1; drops %v", len(w1.tx[0]), dropSummary(w1))
	}
	if v := inspect(t, w0.umem.Bytes(w1.tx[0][0].Addr, w1.tx[0][0].Len)); v.dst(0) != l.client || uint16(v.tcp.DstPort) != cport {
		t.Errorf("reply to %s:%d, want %s:%d", v.dst(0), v.tcp.DstPort, l.client, cport)
	}
	// An ICMP error about that reply, from the client side, names the
	// owner through its quote.
	reply := pk{src: l.vip, dst: l.client, sport: 80, dport: cport, flags: lvs.TCPAck, payload: 100}
	desc = put(w0, 2, icmpError(t, clientMAC, dirMAC0, routerC, l.vip, reply.ip(t)))
	if out, ok := w0.process(&desc, 0, 5, l.st, false); !ok || out != outHandedOff {
		t.Fatalf("ICMP error at worker 0: out=%d ok=%v, want handed off", out, ok)
	}
	publishAll(w1.d)
	w1.drainPeers(6, l.st)
	if n := w1.ctr.ICMP.Load(); n != 1 {
		t.Errorf("owner forwarded %d ICMP errors, want 1; drops %v", n, dropSummary(w1))
	}
}

// TestHandoffReturnsFrames: a frame the owner drops goes back to the free
// list of the worker whose UMEM region holds it, over the return ring.
func TestHandoffReturnsFrames(t *testing.T) {
	l, w0, w1 := twoWorkers(t, lvs.FwdNAT)
	l.st.services[0].SynProxy = SynProxyOff
	cport := clientPortOwnedBy(l, 1, 40000)
	desc := put(w0, 3, l.request(cport, lvs.TCPAck, 0).bytes(t)) // no connection: the owner drops it
	if out, _ := w0.process(&desc, 0, 1, l.st, false); out != outHandedOff {
		t.Fatalf("not handed off: %d", out)
	}
	free0, free1 := len(w0.free), len(w1.free)
	publishAll(w1.d)
	w1.drainPeers(2, l.st)
	if n := w1.ctr.Drops[DropNoConn].Load(); n != 1 {
		t.Fatalf("owner drops %v, want one no_conn", dropSummary(w1))
	}
	if len(w1.free) != free1 {
		t.Errorf("worker 1 took worker 0's frame into its own free list")
	}
	publishAll(w0.d)
	w0.drainPeers(3, l.st)
	if len(w0.free) != free0+1 || w0.free[len(w0.free)-1] != w0.umem.FrameAddr(3) {
		t.Errorf("worker 0 free list %d -> %d frames, want its frame 3 back", free0, len(w0.free))
	}
	// And the other way round: worker 0 drops a frame of worker 1's region.
	own := clientPortOwnedBy(l, 0, cport+1)
	desc = put(w1, 35, l.request(own, lvs.TCPAck, 0).bytes(t))
	if out, _ := w1.process(&desc, 0, 4, l.st, false); out != outHandedOff {
		t.Fatalf("not handed off to worker 0: %d", out)
	}
	free0, free1 = len(w0.free), len(w1.free)
	publishAll(w0.d)
	w0.drainPeers(5, l.st)
	if len(w0.free) != free0 {
		t.Errorf("worker 0 took worker 1's frame into its own free list")
	}
	publishAll(w1.d)
	w1.drainPeers(6, l.st)
	if len(w1.free) != free1+1 || w1.free[len(w1.free)-1] != w0.umem.FrameAddr(35) {
		t.Errorf("worker 1 free list %d -> %d frames, want its frame 35 back", free1, len(w1.free))
	}
	// A frame of its own region goes straight back to its free list.
	w1.release(w0.umem.FrameAddr(40) + 256)
	if w1.free[len(w1.free)-1] != w0.umem.FrameAddr(40) {
		t.Errorf("own frame not released to the chunk base")
	}
}

// TestHandoffRingFull: when the owner's hand-off ring is full the frame is
// dropped and counted, not lost.
func TestHandoffRingFull(t *testing.T) {
	l, w0, w1 := twoWorkers(t, lvs.FwdNAT)
	cport := clientPortOwnedBy(l, 1, 40000)
	for i := 0; i < 8; i++ {
		if !w1.inbox[0].push(handoffEntry{addr: w0.umem.FrameAddr(10 + i)}) {
			t.Fatalf("ring of 8 full after %d", i)
		}
	}
	desc := put(w0, 0, l.request(cport, lvs.TCPSyn, 0).bytes(t))
	if out, ok := w0.process(&desc, 0, 1, l.st, false); ok || out == outHandedOff {
		t.Fatalf("full ring: out=%d ok=%v, want dropped", out, ok)
	}
	if n := w0.ctr.Drops[DropHandoffFull].Load(); n != 1 {
		t.Errorf("handoff_full %d, want 1", n)
	}
	if n := w0.ctr.HandedOff.Load(); n != 0 {
		t.Errorf("handed_off %d, want 0", n)
	}
}

// TestSPSC: the hand-off ring is FIFO, bounded by its power-of-two size,
// and pops at most what is asked.
func TestSPSC(t *testing.T) {
	r := newSPSC(5) // rounded up to 8
	if !r.empty() {
		t.Fatal("new ring not empty")
	}
	for i := 0; i < 8; i++ {
		if !r.push(handoffEntry{addr: uint64(i)}) {
			t.Fatalf("push %d refused", i)
		}
	}
	if r.push(handoffEntry{addr: 99}) {
		t.Fatal("push beyond capacity accepted")
	}
	out := make([]handoffEntry, 3)
	for want := 0; want < 8; {
		n := r.pop(out)
		if n == 0 {
			t.Fatal("pop returned nothing from a non-empty ring")
		}
		for _, e := range out[:n] {
			if e.addr != uint64(want) {
				t.Fatalf("popped %d, want %d", e.addr, want)
			}
			want++
		}
	}
	if !r.push(handoffEntry{addr: 8}) || r.pop(out[:0]) != 0 || r.pop(out) != 1 || out[0].addr != 8 {
		t.Fatal("ring after wrapping: push, an empty pop or a pop went wrong")
	}
	if !r.empty() {
		t.Error("ring not empty after popping everything")
	}
}

// TestWaker: wake writes the eventfd only while the worker sleeps; clear
// reads it empty.
func TestWaker(t *testing.T) {
	wk, err := newWaker()
	if err != nil {
		t.Skipf("eventfd: %v", err)
	}
	defer wk.close()
	var b [8]byte
	wk.wake()
	if n, _ := readFD(wk.fd, b[:]); n > 0 {
		t.Error("an awake worker was signalled")
	}
	wk.sleeping.Store(true)
	wk.wake()
	wk.clear()
	if n, _ := readFD(wk.fd, b[:]); n > 0 {
		t.Error("clear left the eventfd readable")
	}
	wk.wake()
	if n, _ := readFD(wk.fd, b[:]); n != 8 {
		t.Error("a sleeping worker was not signalled")
	}
}

func readFD(fd int, b []byte) (int, error) { return unix.Read(fd, b) }

// TestHandoffEveryDirection: for connections owned by either worker, the
// request, the reply (NAT: by the client's endpoint; full-NAT: by the local
// port) and an ICMP error about the reply (by its quote) all reach the
// owner when they arrive at the other worker.
func TestHandoffEveryDirection(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT} {
		t.Run(fwd.String(), func(t *testing.T) {
			l, w0, w1 := twoWorkers(t, fwd)
			ws := [2]*worker{w0, w1}
			slot := [2]int{0, 32} // next free frame slot of each worker's region
			next := func(q int) int { slot[q]++; return slot[q] - 1 }
			cport := uint16(40000)
			for i := 0; i < 8; i++ {
				q := i % 2
				owner, other := ws[q], ws[1-q]
				cport = clientPortOwnedBy(l, q, cport+1)
				// deliver runs p at `other` (not owned) and then at its owner.
				deliver := func(what string, frame []byte, in, wantOut int) {
					t.Helper()
					desc := put(other, next(1-q), frame)
					if out, ok := other.process(&desc, in, 1, l.st, false); !ok || out != outHandedOff {
						t.Fatalf("connection %d (owner %d): %s at worker %d: out=%d ok=%v, want handed off", i, q, what, 1-q, out, ok)
					}
					before := len(owner.tx[wantOut])
					publishAll(owner.d)
					owner.drainPeers(2, l.st)
					if len(owner.tx[wantOut]) != before+1 {
						t.Fatalf("connection %d: owner did not forward the %s: drops %v", i, what, dropSummary(owner))
					}
				}
				deliver("SYN", l.request(cport, lvs.TCPSyn, 0).bytes(t), 0, 1)
				sent := owner.tx[1][len(owner.tx[1])-1]
				v := inspect(t, w0.umem.Bytes(sent.Addr, sent.Len))
				dst, dport := l.client, cport
				if fwd == lvs.FwdFullNAT {
					dst, dport = l.locl, uint16(v.tcp.SrcPort)
					if int(dport)%2 != q {
						t.Fatalf("worker %d allocated local port %d", q, dport)
					}
				}
				deliver("reply", l.fromReal(dst, dport, lvs.TCPSyn|lvs.TCPAck, 0).bytes(t), 1, 0)
				reply := pk{src: l.vip, dst: l.client, sport: 80, dport: cport, flags: lvs.TCPAck, payload: 100}
				deliver("ICMP error", icmpError(t, clientMAC, dirMAC0, routerC, l.vip, reply.ip(t)), 0, 1)
				if owner.ct.Len() != i/2+1 || other.ct.Len() != (i+1)/2 {
					t.Fatalf("after connection %d: %d connections at the owner, %d at the other", i, owner.ct.Len(), other.ct.Len())
				}
			}
		})
	}
}

// publishAll publishes what every worker of d staged for its peers, as each
// does at the end of its loop round (publishPeers).
func publishAll(d *Director) {
	for _, w := range d.workers {
		w.publishPeers()
	}
}
