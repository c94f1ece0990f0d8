package dataplane

import (
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/sched"
)

const (
	rxBatch = 64
	// expireEvery is how often a worker advances its connection table's
	// expiry hand; expireSweep is how long a full sweep may take.
	expireEvery = 10 * time.Millisecond
	expireSweep = 5 * time.Second
	// idlePoll bounds how long an idle worker sleeps in poll(2), which is
	// also how late it notices a stop or a control request.
	idlePoll = 50 // milliseconds
)

var monoStart = time.Now()

// nanotime is the monotonic clock the connection tables run on.
func nanotime() int64 { return int64(time.Since(monoStart)) }

// worker serves RX queue q of every interface.
type worker struct {
	d      *Director
	q      int
	umem   *xsk.UMEM     // shared by every worker; this one fills from its region
	socks  []*xsk.Socket // by interface index; nil where the interface has no queue q
	active []int         // indices of the non-nil sockets

	// Frames [regionStart, regionEnd) of the UMEM are this worker's.
	regionStart, regionEnd uint64
	inbox                  []*spsc // frames handed over by worker i, to process
	returns                []*spsc // frames of this region given back by worker i
	wk                     *waker
	peerBuf                []handoffEntry
	pollfds                []unix.PollFd

	free []uint64     // chunk addresses owned by userspace and not in use
	rx   []xsk.Desc   // receive batch
	tx   [][]xsk.Desc // per socket TX batch
	comp []uint64

	ct          *conntrack.Table
	paths       []connPath // the data path's part of each connection, by table slot (connpath.go)
	p           packet.Parsed
	p2          packet.Parsed               // a frame the worker makes beside the one in p (proxyproto.go)
	ppBuf       [packet.ProxyHeaderMax]byte // a PROXY header being written
	flowBuf     bpf.FlowBuf                 // the flow-map calls' key and value: none allocates (fastpath.go)
	key         sched.Key
	ipID        uint16            // IPv4 identification of outer tunnel headers
	lportNext   map[inet.Addr]int // full-NAT: next local port to try per local address
	lastPortLog int64
	lastExpire  int64
	budget      int
	synKey      packet.SynCookieKey // the director's SYN cookie key (synproxy.go)
	held        [synHeldMax]heldSeg // data segments of pending proxied connections
	nheld       int
	heldOrder   uint32
	frags       fragTable // fragments waiting for, or sent after, their first (frag.go)

	// connection synchronisation (sync.go)
	syncOut   chan []SyncRecord
	syncFree  chan []SyncRecord
	syncBuf   []SyncRecord
	syncSweep tableSweep // the sync's re-send of established connections (sync.go)

	// connection mirror (mirror.go); mir nil: none
	mir             *mirrorBatch
	mirOut, mirFree chan *mirrorBatch
	mirSync         func(*mirrorBatch) // set while Close writes the buffers itself
	lastMirrorFlush int64
	mirSweep        tableSweep  // the mirror's refresh (mirror.go)
	mirRepair       atomic.Bool // records were lost: the next tick records every connection (mirror.go)

	ctr       workerCounters
	connCount atomic.Int64
	pressure  ctPressure // half-open count and evictions, for the SYN guard (synguard.go)
	stop      atomic.Bool
	reqs      chan func()
}

func newWorker(d *Director, q int, tableSize int, umem *xsk.UMEM, regionFrames int) (_ *worker, err error) {
	w := &worker{d: d, q: q, reqs: make(chan func(), 4), lportNext: map[inet.Addr]int{}, umem: umem}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	ring := d.opts.RingSize
	frames := regionFrames
	w.regionStart = uint64(q*regionFrames) * frameSize
	w.regionEnd = w.regionStart + uint64(regionFrames)*frameSize
	if w.wk, err = newWaker(); err != nil {
		return nil, fmt.Errorf("queue %d: eventfd: %w", q, err)
	}
	w.socks = make([]*xsk.Socket, len(d.ifaces))
	w.tx = make([][]xsk.Desc, len(d.ifaces))
	var socks []*xsk.Socket
	for i, ifc := range d.ifaces {
		if q >= ifc.Queues {
			continue
		}
		s, err := xsk.NewSocket(w.umem, ifc.Index, q, xsk.Options{
			RxSize: ring, TxSize: ring, FillSize: ring, CompSize: ring, NeedWakeup: true,
		})
		if err != nil {
			return nil, fmt.Errorf("af_xdp socket on %s queue %d: %w", ifc.Name, q, err)
		}
		w.socks[i] = s
		socks = append(socks, s)
		w.active = append(w.active, i)
		w.tx[i] = make([]xsk.Desc, 0, 2*rxBatch*len(d.ifaces))
		if err := d.steer.RegisterSocket(ifc.base+uint32(q), s.FD()); err != nil {
			return nil, fmt.Errorf("register socket %s queue %d: %w", ifc.Name, q, err)
		}
	}
	for _, s := range socks {
		w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(s.FD()), Events: unix.POLLIN})
	}
	w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(w.wk.fd), Events: unix.POLLIN})
	w.free = make([]uint64, 0, frames)
	for a := w.regionEnd; a > w.regionStart; {
		a -= frameSize
		w.free = append(w.free, a)
	}
	w.syncOut = make(chan []SyncRecord, 64)
	w.syncFree = make(chan []SyncRecord, 64)
	w.syncBuf = make([]SyncRecord, 0, syncRing)
	w.rx = make([]xsk.Desc, rxBatch)
	w.peerBuf = make([]handoffEntry, rxBatch)
	w.comp = make([]uint64, ring)
	w.setTable(conntrack.New(conntrack.Config{
		Capacity: tableSize,
		Timeouts: d.opts.Timeouts,
		OnState:  d.countState,
		OnRemove: w.onRemove,
		LastSeen: w.lastSeen,
		// Only with several workers, which share templates.
		OnTemplateRemove: w.onTemplateRemove,
	}))
	sweeps := int(expireSweep / expireEvery)
	w.budget = max(256, tableSize/sweeps)
	return w, nil
}

func (w *worker) close() error {
	var errs []error
	for _, s := range w.socks {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if w.wk != nil {
		w.wk.close()
	}
	return errors.Join(errs...)
}

func (w *worker) run() {
	// One OS thread per worker keeps its poll(2) sleeps and its cache warm.
	// The thread is never unlocked: it carries the worker's nice value and
	// name, so it ends with the worker rather than serve other goroutines.
	// Except the process's main thread (govsd keeps its main goroutine
	// there, but a test binary may not): its name is the process's, which
	// pidof and keepalived's track_process look for, and it must outlive
	// the worker.
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		defer runtime.UnlockOSThread()
	} else {
		setThreadName(workerThreadName(w.q))
	}
	if n := w.d.opts.WorkerNice; n != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), n); err != nil {
			w.d.log.Warn("worker: cannot set its nice value; under overload the kernel's receive processing may take its core",
				"worker", w.q, "nice", n, "err", err)
		}
	}
	w.refill()
	for !w.stop.Load() {
		now := nanotime()
		st := w.d.state.Load()
		work := 0
		for _, si := range w.active {
			n := w.receive(si, now, st)
			if n == 0 && w.d.opts.BusyPoll {
				// Preferred busy polling (setBusyPoll): the syscall
				// runs the queue's NAPI loop on this thread.
				w.socks[si].Wakeup()
			}
			work += n
		}
		work += w.drainPeers(now, st)
		w.flush()
		w.complete()
		w.refill()
		w.publishPeers()
		if w.d.syncOn.Load() {
			w.flushSync()
			if n := w.syncSweep.due(now, syncRefresh, w.ct.Cap()); n > 0 {
				w.syncSweep.next = w.refreshSync(w.syncSweep.next, n, now, st)
			}
		}
		if w.mir != nil {
			w.tickMirror(now, st)
		}
		if now-w.lastExpire >= int64(expireEvery) {
			w.lastExpire = now
			w.ct.Expire(now, w.budget)
			w.expireHeld(now)
			w.expireFrags(now)
			w.connCount.Store(int64(w.ct.Len()))
			w.pressure.publish(w.ct)
		}
		select {
		case f := <-w.reqs:
			f()
			w.publishPeers()
		default:
		}
		if work == 0 && !w.d.opts.BusyPoll {
			w.sleep()
		}
	}
}

// receive handles one RX batch of socket si.
func (w *worker) receive(si int, now int64, st *snapshot) int {
	s := w.socks[si]
	n := s.Receive(w.rx)
	var bytes uint64
	for i := 0; i < n; i++ {
		desc := w.rx[i]
		bytes += uint64(desc.Len)
		w.forward(desc, si, now, st, false)
	}
	if n > 0 {
		w.ctr.RxPackets.Add(uint64(n))
		w.ctr.RxBytes.Add(bytes)
	}
	return n
}

// flush hands every socket's TX batch to the kernel; frames it does not take
// are counted and recycled.
func (w *worker) flush() {
	for _, si := range w.active {
		batch := w.tx[si]
		if len(batch) == 0 {
			continue
		}
		sent, err := w.socks[si].Transmit(batch)
		if err != nil {
			w.ctr.TxErrors.Add(1)
		}
		var bytes uint64
		for i := 0; i < sent; i++ {
			bytes += uint64(batch[i].Len)
		}
		w.ctr.TxPackets.Add(uint64(sent))
		w.ctr.TxBytes.Add(bytes)
		for _, d := range batch[sent:] {
			w.drop(DropTxFull)
			w.release(d.Addr)
		}
		w.tx[si] = batch[:0]
	}
}

// complete takes back the frames the kernel has finished transmitting.
func (w *worker) complete() {
	for _, si := range w.active {
		n := w.socks[si].Complete(w.comp)
		for _, a := range w.comp[:n] {
			w.release(a)
		}
	}
}

// refill gives free frames to the fill rings, sharing them evenly.
func (w *worker) refill() {
	for _, si := range w.active {
		s := w.socks[si]
		k := min(s.FillFree(), len(w.free)/len(w.active)+1, len(w.free))
		if k <= 0 {
			continue
		}
		start := len(w.free) - k
		for i := start; i < len(w.free); i++ {
			w.free[i] &^= frameSize - 1
		}
		n := s.Fill(w.free[start:])
		w.free = w.free[:start+(k-n)]
		if s.NeedFillWakeup() {
			s.Wakeup()
		}
	}
}

func (w *worker) drop(r DropReason) { w.ctr.Drops[r].Add(1) }

// outHandedOff is process's verdict for a frame given to its owner worker.
const outHandedOff = -1

// forward processes one frame and queues it for TX, hands it off, or drops
// and recycles it.
func (w *worker) forward(desc xsk.Desc, inIface int, now int64, st *snapshot, owned bool) {
	out, ok := w.process(&desc, inIface, now, st, owned)
	w.emit(desc, out, ok)
}

// emit queues a processed frame for TX on interface out, or recycles it
// when it was dropped (ok false); a frame handed off is the owner's now.
func (w *worker) emit(desc xsk.Desc, out int, ok bool) {
	switch {
	case out == outHandedOff && ok:
	case !ok:
		w.release(desc.Addr)
	case w.socks[out] == nil:
		w.drop(DropNoTxQueue)
		w.release(desc.Addr)
	default:
		w.tx[out] = append(w.tx[out], desc)
	}
}

// handOff passes a frame to the worker that owns its connection.
func (w *worker) handOff(owner int, desc *xsk.Desc, inIface int) (int, bool) {
	peer := w.d.workers[owner]
	if !peer.inbox[w.q].stage(handoffEntry{addr: desc.Addr, len: desc.Len, iface: uint32(inIface)}) {
		w.drop(DropHandoffFull)
		return 0, false
	}
	w.ctr.HandedOff.Add(1)
	return outHandedOff, true // published, and the peer woken, by publishPeers
}

// drainPeers processes the frames other workers handed over and takes back
// this region's frames they are done with.
func (w *worker) drainPeers(now int64, st *snapshot) int {
	n := 0
	for i, r := range w.inbox {
		if r == nil {
			continue
		}
		k := r.pop(w.peerBuf)
		for _, e := range w.peerBuf[:k] {
			w.forward(xsk.Desc{Addr: e.addr, Len: e.len}, int(e.iface), now, st, true)
		}
		n += k
		for {
			k := w.returns[i].pop(w.peerBuf)
			for _, e := range w.peerBuf[:k] {
				w.free = append(w.free, e.addr)
			}
			if k < len(w.peerBuf) {
				break
			}
		}
	}
	return n
}

// release recycles a frame: into this worker's free list if its region
// holds it, else back to the worker whose region does.
func (w *worker) release(addr uint64) {
	addr &^= frameSize - 1
	if addr >= w.regionStart && addr < w.regionEnd {
		w.free = append(w.free, addr)
		return
	}
	owner := w.d.workers[int(addr/(w.regionEnd-w.regionStart))]
	// The return ring holds a whole region, so it cannot be full. It is
	// published, and the owner woken, by publishPeers.
	owner.returns[w.q].stage(handoffEntry{addr: addr})
}

// publishPeers publishes what this worker handed off and gave back since
// the last call, and wakes each peer that got something: once per loop
// round, not per frame (spsc).
func (w *worker) publishPeers() {
	if len(w.d.workers) < 2 {
		return
	}
	for _, peer := range w.d.workers {
		if peer == w {
			continue
		}
		in := peer.inbox[w.q].publish()
		back := peer.returns[w.q].publish()
		if in || back {
			peer.wk.wake()
		}
	}
}

// sleep waits in poll(2) until a socket has frames, a peer wakes us, or
// idlePoll passes.
func (w *worker) sleep() {
	w.wk.sleeping.Store(true)
	// A peer that pushed before it could see the flag did not wake us.
	pending := false
	for i, r := range w.inbox {
		if r != nil && (!r.empty() || !w.returns[i].empty()) {
			pending = true
		}
	}
	if !pending {
		for i := range w.pollfds {
			w.pollfds[i].Revents = 0
		}
		unix.Poll(w.pollfds, idlePoll)
		if w.pollfds[len(w.pollfds)-1].Revents&unix.POLLIN != 0 {
			w.wk.clear()
		}
	}
	w.wk.sleeping.Store(false)
}

// workerThreadName is the name of worker q's thread (/proc/PID/task/TID/comm,
// top -H, ps -L): an operator sees each worker's CPU time, and make bench
// reports it per worker.
func workerThreadName(q int) string { return fmt.Sprintf("govs-w%d", q) }

// setThreadName names the calling thread (at most 15 bytes are kept).
func setThreadName(name string) {
	b := make([]byte, 16)
	copy(b[:15], name)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
	runtime.KeepAlive(b)
}
