package dataplane

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// Scaling with workers (issue #19, goal 3): each worker owns its table, its
// counters and its end of the hand-off rings, so two workers should cost
// what one does. Run under several P counts:
//
//	go test -run '^$' -bench 'Parallel' -cpu 1,2 ./dataplane
//
// ns/op is wall time over all goroutines together: it halves from -cpu 1
// to -cpu 2 when they share nothing. cpu-ns/op is the process's CPU time
// per op (getrusage), the per-worker cost: it stays flat then, and grows
// by what a shared cache line costs when one moves between cores.

// parallelCPU is the CPU time the process has used (user+system), or -1.
func parallelCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func reportCPU(b *testing.B, cpu0 int64, ops int) {
	if cpu1 := parallelCPU(); cpu0 >= 0 && cpu1 >= 0 && ops > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(ops), "cpu-ns/op")
	}
}

// BenchmarkHandoffParallel: two workers hand frames to each other both
// ways, as worker.handOff, drainPeers and release do, over four spsc rings
// sized as New sizes them (two interfaces, the default ring of 2048): each
// side stages a receive batch of frames its peer owns into the peer's
// inbox, pops what the peer handed it, stages those frames back on the
// peer's return ring, publishes both once with one wake-up (publishPeers),
// and takes its own frames back from its return ring.
// One goroutine per side, whatever -cpu says; with one P they take turns.
// An op is one frame handed over and given back; ns/op halving from -cpu 1
// to 2 is the hand-off scaling, and cpu-ns/op growing is what the rings'
// cache lines cost as they move between the cores.
//
//   - director-layout: the four rings allocated one after the other, as
//     New allocates them. An spsc's size is not a multiple of a cache
//     line, so two rings allocated in a row share one: one ring's mask and
//     buf (read on every stage and pop) with the next one's head (written
//     on every pop that takes something). The metric shared-lines counts
//     such lines.
//   - spaced: the same rings with an unused spsc between any two, so that
//     no line holds hot fields of two rings (shared-lines 0).
func BenchmarkHandoffParallel(b *testing.B) {
	for _, spaced := range []bool{false, true} {
		name := "director-layout"
		if spaced {
			name = "spaced"
		}
		b.Run(name, func(b *testing.B) { benchHandoff(b, spaced) })
	}
}

const (
	handoffRegion = 2 * 2048 * 2          // regionFrames with two interfaces and RingSize 2048
	handoffInbox  = 4 * rxBatch * 2       // New's inbox size with two interfaces
	handoffFrame  = uint64(frameSize)     // frame addresses step by this
	handoffLen    = uint32(64)            // a minimum-size frame
	handoffIface  = uint32(1)             // the interface it came in on
	cacheLine     = uintptr(64)           // amd64 and arm64
	spscHotBytes  = unsafe.Sizeof(spsc{}) // head, tail, mask and buf: all hot
)

// handoffSide is one worker's end of a hand-off pair.
type handoffSide struct {
	free     []uint64       // frames of this side's region not in flight
	out      *spsc          // the peer's inbox from this side (handOff)
	in       *spsc          // this side's inbox from the peer (drainPeers)
	giveBack *spsc          // the peer's return ring from this side (release)
	ret      *spsc          // this side's return ring from the peer (drainPeers)
	peer     *waker         // the peer's waker, never asleep here
	buf      []handoffEntry // peerBuf
	send     int            // frames to hand over
	recv     int            // frames the peer hands over
	full     int            // pushes the peer's full inbox refused (DropHandoffFull)
}

// run is the worker loop's hand-off part, until this side has handed over
// send frames and had them all back, and taken recv frames from its peer.
func (s *handoffSide) run() {
	region := len(s.free)
	sent, got := 0, 0
	for sent < s.send || got < s.recv || len(s.free) < region {
		work := 0
		// A receive batch whose connections the peer owns (handOff).
		for k := 0; k < rxBatch && sent < s.send && len(s.free) > 0; k++ {
			a := s.free[len(s.free)-1]
			if !s.out.stage(handoffEntry{addr: a, len: handoffLen, iface: handoffIface}) {
				s.full++
				break
			}
			s.free = s.free[:len(s.free)-1]
			sent++
			work++
		}
		// drainPeers: the peer's frames, processed (here: nothing) and
		// transmitted, then given back to their region (release).
		n := s.in.pop(s.buf)
		for _, e := range s.buf[:n] {
			s.giveBack.stage(handoffEntry{addr: e.addr &^ (handoffFrame - 1)})
		}
		// publishPeers: once per round, with one wake-up.
		if in, back := s.out.publish(), s.giveBack.publish(); in || back {
			s.peer.wake()
		}
		got += n
		work += n
		for {
			k := s.ret.pop(s.buf)
			for _, e := range s.buf[:k] {
				s.free = append(s.free, e.addr)
			}
			work += k
			if k < len(s.buf) {
				break
			}
		}
		if work == 0 {
			runtime.Gosched() // with one P, the peer's turn
		}
	}
}

func benchHandoff(b *testing.B, spaced bool) {
	// New allocates, for each worker, its inbox and its return ring from
	// the other, one after the other; the allocator then usually puts them
	// in consecutive slots of one span (seen in a test binary), which a
	// [2]spsc reproduces whatever the heap looks like. Spaced: one ring per
	// [2]spsc.
	var pairs [4]*[2]spsc
	for i := range pairs {
		pairs[i] = new([2]spsc)
	}
	ring := func(i, size int) *spsc {
		r := &pairs[i][0]
		if !spaced {
			r = &pairs[i/2][i%2]
		}
		fresh := newSPSC(size)
		r.mask, r.buf = fresh.mask, fresh.buf
		return r
	}
	inbox0, returns0 := ring(0, handoffInbox), ring(1, handoffRegion)
	inbox1, returns1 := ring(2, handoffInbox), ring(3, handoffRegion)
	rings := []*spsc{inbox0, returns0, inbox1, returns1}
	wk0, wk1 := &waker{fd: -1}, &waker{fd: -1}
	sides := [2]*handoffSide{
		{out: inbox1, in: inbox0, giveBack: returns1, ret: returns0, peer: wk1},
		{out: inbox0, in: inbox1, giveBack: returns0, ret: returns1, peer: wk0},
	}
	for q, s := range sides {
		s.buf = make([]handoffEntry, rxBatch)
		s.free = make([]uint64, 0, handoffRegion)
		for i := handoffRegion - 1; i >= 0; i-- {
			s.free = append(s.free, uint64(q*handoffRegion+i)*handoffFrame+256)
		}
	}
	sides[0].send, sides[1].send = b.N-b.N/2, b.N/2
	sides[0].recv, sides[1].recv = sides[1].send, sides[0].send
	b.ReportAllocs()
	cpu0 := parallelCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, s := range sides {
		wg.Add(1)
		go func() { defer wg.Done(); s.run() }()
	}
	wg.Wait()
	b.StopTimer()
	reportCPU(b, cpu0, b.N)
	b.ReportMetric(float64(sharedLines(rings)), "shared-lines")
	b.ReportMetric(float64(sides[0].full+sides[1].full)/float64(b.N), "full/op")
	for q, s := range sides {
		if len(s.free) != handoffRegion {
			b.Errorf("side %d has %d of its %d frames back", q, len(s.free), handoffRegion)
		}
	}
}

// sharedLines counts the cache lines that hold hot fields (all of an spsc
// is hot but its padding) of two different rings.
func sharedLines(rings []*spsc) int {
	owner := map[uintptr]int{}
	shared := map[uintptr]bool{}
	for i, r := range rings {
		base := uintptr(unsafe.Pointer(r))
		fields := []struct{ off, size uintptr }{
			{unsafe.Offsetof(r.head), 8},
			{unsafe.Offsetof(r.tail), 8},
			{unsafe.Offsetof(r.mask), spscHotBytes - unsafe.Offsetof(r.mask)},
		}
		for _, f := range fields {
			for l := (base + f.off) / cacheLine; l <= (base+f.off+f.size-1)/cacheLine; l++ {
				if o, ok := owner[l]; ok && o != i {
					shared[l] = true
				}
				owner[l] = i
			}
		}
	}
	return len(shared)
}

// BenchmarkProcessParallel: whole NAT connections through worker.process,
// one worker per goroutine, as BenchmarkConnection runs them (nine
// segments, the schedule, the table insert, every state change, expiry),
// with owned=false so that each segment is checked for its owner worker
// (every client port is one the running worker owns: none is handed off).
// The director always has at least two workers, so -cpu 1 runs the same
// code as -cpu 2 with one of them idle. An op is one connection.
//
//   - split: each worker has a director, service, scheduler and real
//     server of its own: nothing is shared. The reference.
//   - shared-mh: one director and service, as in production, with a
//     scheduler whose Pick takes no lock (mh): what is shared is the real
//     server's sched.Dest, whose connection counters every worker updates
//     (Director.countState -> sched.Dest.Transition) at each class change.
//   - shared-rr: the same with rr, the testWorker service, whose Pick takes
//     the scheduler's mutex once per connection.
func BenchmarkProcessParallel(b *testing.B) {
	b.Run("split", func(b *testing.B) { benchProcessParallel(b, "rr", true) })
	b.Run("shared-mh", func(b *testing.B) { benchProcessParallel(b, "mh", false) })
	b.Run("shared-rr", func(b *testing.B) { benchProcessParallel(b, "rr", false) })
}

// parallelDirector is testWorker's director with workers NAT workers
// (newLab's), or only worker `only` when only >= 0.
func parallelDirector(tb testing.TB, schedName string, workers, only int) *Director {
	tb.Helper()
	d := &Director{log: slog.New(slog.NewTextHandler(io.Discard, nil)), opts: Options{RingSize: 64}}
	d.ifaces = []*Interface{
		{Name: "d0", Index: 10, MAC: [6]byte(dirMAC0), MTU: 1500, Queues: workers, Addr4: inet.AddrFromNetip(dir0IP)},
		{Name: "d1", Index: 11, MAC: [6]byte(dirMAC1), MTU: 1500, Queues: workers, Addr4: inet.AddrFromNetip(dir1IP)},
	}
	d.res = newResolver(d.log, d.ifaces)
	d.res.table.Store(&map[inet.Addr]NextHop{
		inet.AddrFromNetip(realIP): {Iface: 1, SrcMAC: [6]byte(dirMAC1), DstMAC: [6]byte(realMAC), MTU: 1500,
			Src: inet.AddrFromNetip(dir1IP)},
	})
	s, err := sched.New(schedName, 0)
	if err != nil {
		tb.Fatal(err)
	}
	dst := &Dest{Dest: sched.NewDest(inet.AddrFromNetip(realIP), 8080, 1), Proto: 6, Fwd: lvs.FwdNAT, stats: newDestStats(workers)}
	svc := &Service{Name: "web", VIP: inet.AddrFromNetip(vipIP), Port: 80, Proto: 6, Fwd: lvs.FwdNAT,
		SchedName: schedName, Sched: s, Dests: []*Dest{dst}}
	s.Update([]*sched.Dest{dst.Dest})
	d.state.Store(&snapshot{
		byKey:    map[serviceKey]*Service{{svc.VIP, 80, 6}: svc},
		services: []*Service{svc},
		dests:    []*Dest{dst},
	})
	to := conntrack.DefaultTimeouts()
	to.TimeWait, to.Close, to.FinWait, to.CloseWait, to.LastAck = 100e6, 100e6, 100e6, 100e6, 100e6
	d.workers = make([]*worker, workers)
	for q := range d.workers {
		if only >= 0 && q != only {
			continue
		}
		umem, err := xsk.NewUMEM(64, frameSize)
		if err != nil {
			tb.Skipf("no UMEM (mmap): %v", err)
		}
		tb.Cleanup(func() { umem.Close() })
		w := &worker{d: d, q: q, umem: umem, socks: []*xsk.Socket{{}, {}}, tx: make([][]xsk.Desc, 2),
			lportNext: map[inet.Addr]int{}, regionStart: 0, regionEnd: 64 * frameSize,
			syncBuf: make([]SyncRecord, 0, syncRing), syncOut: make(chan []SyncRecord, 4), syncFree: make(chan []SyncRecord, 4)}
		for i := umem.NumFrames() - 1; i >= freeSlot; i-- {
			w.free = append(w.free, umem.FrameAddr(i))
		}
		w.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 16, Timeouts: to, OnState: d.countState}))
		w.budget = 256
		d.workers[q] = w
	}
	return d
}

// connRunner runs whole connections through one worker.
type connRunner struct {
	w     *worker
	segs  []connSegment
	ports []uint16 // client ports whose connections this worker owns
	next  int
	now   int64
	conns int
}

func newConnRunner(tb testing.TB, w *worker) *connRunner {
	const sport = 40000 // patched per connection
	req := func(flags lvs.TCPFlags, payload int) connSegment {
		p := pk{srcMAC: clientMAC, dstMAC: dirMAC0, src: clientIP, dst: vipIP, sport: sport, dport: 80, flags: flags, payload: payload}
		return connSegment{frame: p.bytes(tb), inIface: 0}
	}
	rep := func(flags lvs.TCPFlags, payload int) connSegment {
		p := pk{srcMAC: realMAC, dstMAC: dirMAC1, src: realIP, dst: clientIP, sport: 8080, dport: sport, flags: flags, payload: payload}
		return connSegment{frame: p.bytes(tb), inIface: 1, reply: true}
	}
	r := &connRunner{w: w, now: 1e9, segs: []connSegment{
		req(lvs.TCPSyn, 0),
		rep(lvs.TCPSyn|lvs.TCPAck, 0),
		req(lvs.TCPAck, 0),
		req(lvs.TCPAck|0x08, 80),
		rep(lvs.TCPAck|0x08, 240),
		rep(lvs.TCPFin|lvs.TCPAck, 0),
		req(lvs.TCPAck, 0),
		req(lvs.TCPFin|lvs.TCPAck, 0),
		rep(lvs.TCPAck, 0),
	}}
	// ownerOf: a request's owner hashes its source, a NAT reply's its
	// destination: the client's endpoint both times.
	n := uint32(len(w.d.workers))
	client := inet.AddrFromNetip(clientIP)
	for p := 1024; p < 65536; p++ {
		if int(mixEndpoint(client, uint16(p))%n) == w.q {
			r.ports = append(r.ports, uint16(p))
		}
	}
	return r
}

// one runs the next connection; it returns an error when a segment is
// dropped or handed off.
func (r *connRunner) one() error {
	w := r.w
	st := w.d.state.Load() // once per receive batch in run
	port := r.ports[r.next]
	if r.next++; r.next == len(r.ports) {
		r.next = 0
	}
	r.now += 20_000 // as BenchmarkConnection: about 5000 connections live
	for k, s := range r.segs {
		d := put(w, k, s.frame)
		f := w.umem.Bytes(d.Addr, d.Len)
		if s.reply {
			setTCPPort(f, 36, port)
		} else {
			setTCPPort(f, 34, port)
		}
		out, ok := w.process(&d, s.inIface, r.now, st, false)
		if !ok || out == outHandedOff {
			return fmt.Errorf("worker %d connection %d segment %d: out %d ok %v, drops %v", w.q, r.conns, k, out, ok, dropSummary(w))
		}
	}
	if r.conns++; r.conns%16 == 0 {
		w.ct.Expire(r.now, w.budget) // the receive loop's expiry
	}
	w.tx[0], w.tx[1] = w.tx[0][:0], w.tx[1][:0]
	return nil
}

func benchProcessParallel(b *testing.B, schedName string, split bool) {
	n := max(2, runtime.GOMAXPROCS(0))
	runners := make([]*connRunner, n)
	if split {
		for q := range runners {
			runners[q] = newConnRunner(b, parallelDirector(b, schedName, n, q).workers[q])
		}
	} else {
		d := parallelDirector(b, schedName, n, -1)
		for q := range runners {
			runners[q] = newConnRunner(b, d.workers[q])
		}
	}
	var next atomic.Int32
	b.ReportAllocs()
	cpu0 := parallelCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := runners[next.Add(1)-1]
		for pb.Next() {
			if err := r.one(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportCPU(b, cpu0, b.N)
	for _, r := range runners {
		if h := r.w.ctr.HandedOff.Load(); h != 0 {
			b.Errorf("worker %d handed %d frames off", r.w.q, h)
		}
		if r.w.ct.Len() > 60000 {
			b.Errorf("worker %d: %d connections in the table: expiry does not keep up", r.w.q, r.w.ct.Len())
		}
	}
}

// BenchmarkConnSharedParallel is the part of a new connection that
// BenchmarkProcessParallel's shared variants share, alone: the scheduler's
// Pick, and the class changes of the connection's life as the worker's
// table reports them (Director.countState: SYN inserted, SYN_RECV,
// ESTABLISHED, TIME_WAIT, removed), which move it between the real
// server's sched.Dest counters four times, with the per-worker conns count
// beside. One op is one connection. The variants are
// BenchmarkProcessParallel's: split shares nothing, shared-mh shares the
// sched.Dest, shared-rr the sched.Dest and rr's mutex.
func BenchmarkConnSharedParallel(b *testing.B) {
	b.Run("split", func(b *testing.B) { benchConnShared(b, "rr", true) })
	b.Run("shared-mh", func(b *testing.B) { benchConnShared(b, "mh", false) })
	b.Run("shared-rr", func(b *testing.B) { benchConnShared(b, "rr", false) })
}

func benchConnShared(b *testing.B, schedName string, split bool) {
	n := max(2, runtime.GOMAXPROCS(0))
	dirs := make([]*Director, n)
	for q := range dirs {
		switch {
		case split:
			dirs[q] = parallelDirector(b, schedName, n, q)
		case q == 0:
			dirs[q] = parallelDirector(b, schedName, n, 0)
		default:
			dirs[q] = dirs[0]
		}
	}
	life := [...]conntrack.State{conntrack.StateAbsent, conntrack.StateNone, conntrack.StateSynRecv,
		conntrack.StateEstablished, conntrack.StateTimeWait, conntrack.StateAbsent}
	var next atomic.Int32
	b.ReportAllocs()
	cpu0 := parallelCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		q := int(next.Add(1) - 1)
		d := dirs[q]
		svc := d.state.Load().services[0]
		key := &sched.Key{Proto: 6, Src: inet.AddrFromNetip(clientIP), Dst: svc.VIP, DstPort: 80}
		for i := 0; pb.Next(); i++ {
			key.SrcPort = uint16(i)
			sd := svc.Sched.Pick(key)
			if sd == nil {
				b.Error("no destination")
				return
			}
			dst := d.state.Load().dest(sd.ID)
			dst.stats.perWorker[q].conns.Add(1)
			for s := 1; s < len(life); s++ {
				d.countState(dst.ID, life[s-1], life[s])
			}
		}
	})
	b.StopTimer()
	reportCPU(b, cpu0, b.N)
	for q, d := range dirs {
		if dst := d.state.Load().dests[0]; dst.ActiveConns() != 0 || dst.InactiveConns() != 0 {
			b.Errorf("director %d: %d active, %d inactive connections left", q, dst.ActiveConns(), dst.InactiveConns())
		}
	}
}
