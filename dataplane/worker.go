package dataplane

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/govs/govs/connsync"
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

// TCP flag bits as the parser reports them.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
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
	p           packet.Parsed
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
	syncOut     chan []connsync.Entry
	syncFree    chan []connsync.Entry
	syncBuf     []connsync.Entry
	lastRefresh int64

	// connection mirror (mirror.go); mir nil: none
	mir                                *mirrorBatch
	mirOut, mirFree                    chan *mirrorBatch
	mirSync                            func(*mirrorBatch) // set while Close writes the buffers itself
	lastMirrorFlush, lastMirrorRefresh int64

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
	w.syncOut = make(chan []connsync.Entry, 64)
	w.syncFree = make(chan []connsync.Entry, 64)
	w.syncBuf = make([]connsync.Entry, 0, syncRing)
	w.rx = make([]xsk.Desc, rxBatch)
	w.peerBuf = make([]handoffEntry, rxBatch)
	w.comp = make([]uint64, ring)
	w.ct = conntrack.New(conntrack.Config{
		Capacity: tableSize,
		Timeouts: d.opts.Timeouts,
		OnClass: func(dest uint32, from, to sched.ConnClass) {
			if dst := d.state.Load().dest(dest); dst != nil {
				dst.Transition(from, to)
			}
		},
		OnRemove: w.onRemove,
		LastSeen: w.lastSeen,
	})
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
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
		if w.d.syncOn.Load() {
			w.flushSync()
			if now-w.lastRefresh >= int64(syncRefresh) {
				w.lastRefresh = now
				w.refreshSync(now, st)
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

// process forwards the frame of desc in place; encapsulation may move its
// start and change its length. It returns the interface index to transmit
// on, or false when the frame is dropped (and counted).
func (w *worker) process(desc *xsk.Desc, inIface int, now int64, st *snapshot, owned bool) (int, bool) {
	frame := w.umem.Bytes(desc.Addr, desc.Len)
	p := &w.p
	if err := packet.Parse(frame, p); err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	if p.Frag != packet.FragNone && !w.frags.inside {
		return w.fragment(desc, frame, inIface, now, st, owned) // frag.go
	}
	if !owned && len(w.d.workers) > 1 {
		if owner := w.ownerOf(p, st); owner != w.q {
			return w.handOff(owner, desc, inIface)
		}
	}
	if p.Frag == packet.FragLater {
		w.drop(DropFragment)
		return 0, false
	}
	switch p.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		// A sender with TX checksum offload (a container's veth) leaves
		// the checksum unfinished; the rewrites below are incremental,
		// and DR and TUN pass the segment on as it is.
		if packet.FinishL4Checksum(frame, p) {
			w.ctr.CsumFinished.Add(1)
		}
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return w.processICMP(desc, frame, now, st)
	default:
		w.drop(DropUnsupported)
		return 0, false
	}
	t := conntrack.Tuple{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto}
	c, dir, found := w.ct.Lookup(&t, now)
	if found && dir == conntrack.DirOriginal && w.ct.Reusable(c, dir, p.TCPFlags) {
		// A new SYN on a finished connection starts a new one at once.
		w.ct.Delete(c)
		found = false
	} else if found && dir == conntrack.DirOriginal && (c.State == conntrack.StateTimeWait || c.State == conntrack.StateClose) &&
		isHandshakeACK(p) && w.synProxyReuses(c, frame, now, st) {
		// The same for a new connection whose SYN the XDP program
		// answered with a cookie (synproxy.go).
		w.ct.Delete(c)
		found = false
	}
	if !found {
		svc := st.lookup(p.Dst, p.DstPort, p.Proto)
		if svc == nil {
			w.drop(DropNoService)
			return 0, false
		}
		if isHandshakeACK(p) && synProxied(svc) {
			return w.synProxyOpen(desc, frame, svc, &t, inIface, now, st)
		}
		if c = w.newConn(frame, p, svc, &t, inIface, now, st); c == nil {
			return 0, false
		}
		dir = conntrack.DirOriginal
	} else if c.Flags&flagSynPending != 0 ||
		(c.Flags&flagSynProxy != 0 && dir == conntrack.DirReply && p.TCPFlags&tcpSYN != 0) {
		return w.synProxySegment(desc, frame, c, dir, inIface, now, st)
	}
	before := c.State
	w.ct.Track(c, dir, p.TCPFlags, now)
	if c.State != before && c.Flags&flagFast != 0 && !fastState(c.State) {
		w.unoffload(c) // FIN or RST: the workers see the rest
	}
	if !found || c.State != before {
		if w.d.syncOn.Load() {
			w.syncConn(c, st, now)
		}
		w.mirrorConn(c, st)
	}
	if dir == conntrack.DirOriginal && c.Flags&flagNoL2 != 0 {
		// A connection synced from another director (or adopted from
		// a govsd that served another interface) learns its client's
		// L2 neighbour from its first request here.
		c.InPort, c.ClientMAC, c.LocalMAC = uint16(inIface), [6]byte(frame[6:12]), [6]byte(frame[0:6])
		c.Flags &^= flagNoL2
		w.mirrorConn(c, st)
	}
	dst := st.dest(c.Dest)
	ds := &dst.stats.perWorker[w.q]
	if dir == conntrack.DirOriginal {
		ds.inPkts.Add(1)
		ds.inBytes.Add(uint64(len(frame)))
		nh, ok := w.nextHop(dst)
		if !ok {
			return 0, false
		}
		if c.Flags&flagSynProxy != 0 {
			packet.AdjustTCP(frame, p, 0, c.SeqDelta, 0)
		}
		out, ok := w.toRealServer(desc, frame, c, dst, nh, c.Fwd)
		if ok && w.d.flowEntries() {
			w.offloadRequest(c, dst, &nh)
		}
		return out, ok
	}
	ds.outPkts.Add(1)
	ds.outBytes.Add(uint64(len(frame)))
	if c.Flags&flagSynProxy != 0 {
		packet.AdjustTCP(frame, p, -c.SeqDelta, 0, c.WinShift)
	}
	out, ok := w.toClient(frame, c)
	if ok && w.d.flowEntries() {
		w.offloadReply(c, dst)
	}
	return out, ok
}

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
	if !peer.inbox[w.q].push(handoffEntry{addr: desc.Addr, len: desc.Len, iface: uint32(inIface)}) {
		w.drop(DropHandoffFull)
		return 0, false
	}
	w.ctr.HandedOff.Add(1)
	peer.wk.wake()
	return outHandedOff, true
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
	// The return ring holds a whole region, so it cannot be full.
	owner.returns[w.q].push(handoffEntry{addr: addr})
	owner.wk.wake()
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

// nextHop returns the next hop toward real server dst; a miss is counted
// (the frame is dropped) and makes the resolver look it up.
func (w *worker) nextHop(dst *Dest) (NextHop, bool) {
	nh, ok := w.d.res.lookup(dst.Addr)
	if !ok {
		w.drop(DropNeighMiss)
	}
	return nh, ok
}

// toRealServer forwards a frame of connection c to its real server dst
// through next hop nh, rewritten for forwarding method fwd: the
// connection's own for a request; for an ICMP error whose addresses are
// already translated, DR's (only the MACs change) or TUN's.
func (w *worker) toRealServer(desc *xsk.Desc, frame []byte, c *conntrack.Conn, dst *Dest, nh NextHop, fwd conntrack.Fwd) (int, bool) {
	p := &w.p
	if !packet.DecTTL(frame, p) {
		w.drop(DropTTL)
		return 0, false
	}
	switch fwd {
	case conntrack.FwdNAT:
		packet.DNAT(frame, p, dst.Addr, c.Reply.SrcPort)
	case conntrack.FwdFullNAT:
		packet.FullNAT(frame, p, c.LAddr, c.LPort, dst.Addr, c.Reply.SrcPort)
	case conntrack.FwdDR:
		// VS/DR: only the Ethernet header changes.
	case conntrack.FwdTun:
		outer := packet.EncapOverhead(familyOf(dst.Addr))
		if p.L3Len+outer > nh.MTU {
			w.tooBig(frame, c, nh.MTU-outer)
			return 0, false
		}
		src := nh.Src
		if src.IsZero() {
			w.drop(DropNoSource)
			return 0, false
		}
		base := w.umem.ChunkBase(desc.Addr)
		chunk := w.umem.Bytes(base, uint32(w.umem.FrameSize()))
		w.ipID++
		off, n, err := packet.Encap(chunk, int(desc.Addr-base), int(desc.Len), p, src, dst.Addr, w.ipID)
		if err != nil {
			w.drop(DropMalformed)
			return 0, false
		}
		desc.Addr, desc.Len = base+uint64(off), uint32(n)
		frame = chunk[off : off+n]
	}
	packet.SetMACs(frame, nh.DstMAC, nh.SrcMAC)
	w.ctr.Inbound.Add(1)
	return nh.Iface, true
}

// toClient translates a reply back to VIP:vport -> CIP:cport and sends it to
// the L2 neighbour the connection's requests came from.
func (w *worker) toClient(frame []byte, c *conntrack.Conn) (int, bool) {
	p := &w.p
	if c.Flags&flagNoL2 != 0 {
		w.drop(DropSyncNoL2)
		return 0, false
	}
	if !packet.DecTTL(frame, p) {
		w.drop(DropTTL)
		return 0, false
	}
	switch c.Fwd {
	case conntrack.FwdNAT:
		packet.SNAT(frame, p, c.Orig.Dst, c.Orig.DstPort)
	case conntrack.FwdFullNAT:
		packet.FullNAT(frame, p, c.Orig.Dst, c.Orig.DstPort, c.Orig.Src, c.Orig.SrcPort)
	default:
		// DR and TUN replies never pass the director.
		w.drop(DropUnsupported)
		return 0, false
	}
	packet.SetMACs(frame, c.ClientMAC, c.LocalMAC)
	w.ctr.Outbound.Add(1)
	return int(c.InPort), true
}

// processICMP forwards an ICMP error that quotes a packet of a tracked
// connection to the party that sent that packet, with the quote translated
// so that the receiver recognises its own packet, as IPVS does.
func (w *worker) processICMP(desc *xsk.Desc, frame []byte, now int64, st *snapshot) (int, bool) {
	p := &w.p
	in := &p.Inner
	if !in.Valid || !in.HasPorts {
		w.drop(DropUnsupported)
		return 0, false
	}
	// The quoted packet is one the director sent; its connection is found
	// from the other end.
	t := conntrack.Tuple{Src: in.Dst, Dst: in.Src, SrcPort: in.DstPort, DstPort: in.SrcPort, Proto: in.Proto}
	c, dir, ok := w.ct.Lookup(&t, now)
	if !ok {
		w.drop(DropNoConn)
		return 0, false
	}
	w.ctr.ICMP.Add(1)
	if dir == conntrack.DirOriginal {
		// About a reply we sent to the client (v:vport -> c:cport): the
		// real server must hear of it (path MTU, unreachable client).
		dst := st.dest(c.Dest)
		var err error
		switch c.Fwd {
		case conntrack.FwdNAT:
			err = packet.RewriteICMPError(frame, p, nil, &dst.Addr, dst.Addr, c.Reply.SrcPort, c.Orig.Src, c.Orig.SrcPort)
		case conntrack.FwdFullNAT:
			err = packet.RewriteICMPError(frame, p, &c.LAddr, &dst.Addr, dst.Addr, c.Reply.SrcPort, c.LAddr, c.LPort)
		}
		if err != nil {
			w.drop(DropMalformed)
			return 0, false
		}
		if c.Flags&flagSynProxy != 0 {
			synProxyQuote(frame, p, c) // the quoted seq in the real server's space
		}
		// The addresses are translated: NAT and full-NAT now forward
		// like DR; DR forwards the error as is, TUN encapsulates it.
		fwd := c.Fwd
		if fwd == conntrack.FwdNAT || fwd == conntrack.FwdFullNAT {
			fwd = conntrack.FwdDR
		}
		nh, ok := w.nextHop(dst)
		if !ok {
			return 0, false
		}
		return w.toRealServer(desc, frame, c, dst, nh, fwd)
	}
	// About a request we sent to the real server: the client must hear of it.
	var err error
	switch c.Fwd {
	case conntrack.FwdNAT:
		err = packet.RewriteICMPError(frame, p, &c.Orig.Dst, nil, c.Orig.Src, c.Orig.SrcPort, c.Orig.Dst, c.Orig.DstPort)
	case conntrack.FwdFullNAT:
		err = packet.RewriteICMPError(frame, p, &c.Orig.Dst, &c.Orig.Src, c.Orig.Src, c.Orig.SrcPort, c.Orig.Dst, c.Orig.DstPort)
	default:
		w.drop(DropUnsupported)
		return 0, false
	}
	if err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	packet.SetMACs(frame, c.ClientMAC, c.LocalMAC)
	w.ctr.Outbound.Add(1)
	return int(c.InPort), true
}

// tooBig answers a packet that would exceed the path MTU once encapsulated
// with ICMP "fragmentation needed" / ICMPv6 "packet too big", as IPVS does
// for VS/TUN. An IPv4 packet without DF is dropped and counted: govs does not
// fragment.
func (w *worker) tooBig(frame []byte, c *conntrack.Conn, mtu int) {
	p := &w.p
	w.drop(DropTooBig)
	if p.Family == 4 && frame[p.L3Off+6]&0x40 == 0 {
		return
	}
	in := w.d.ifaces[c.InPort]
	from := in.Addr4
	if p.Family == 6 {
		from = in.Addr6
	}
	if from.IsZero() || len(w.free) == 0 || w.socks[c.InPort] == nil {
		return
	}
	addr := w.free[len(w.free)-1]
	out := w.umem.Bytes(addr, uint32(w.umem.FrameSize()))
	n, err := packet.BuildFragNeeded(out, frame, p, mtu, from, c.LocalMAC, c.ClientMAC)
	if err != nil {
		return
	}
	w.free = w.free[:len(w.free)-1]
	w.tx[c.InPort] = append(w.tx[c.InPort], xsk.Desc{Addr: addr, Len: uint32(n)})
	w.ctr.ICMPSent.Add(1)
}

func familyOf(a inet.Addr) uint8 {
	if a.Is4() {
		return 4
	}
	return 6
}

// newConn schedules a new connection of service svc for a packet that
// matched no entry.
func (w *worker) newConn(frame []byte, p *packet.Parsed, svc *Service, t *conntrack.Tuple, inIface int, now int64, st *snapshot) *conntrack.Conn {
	// Like IPVS, only a SYN starts a TCP connection (the SYN proxy's
	// handshake ACK aside: synProxyOpen), unless the service is sloppy
	// (IPVS's sloppy_tcp): then any segment but a SYN-ACK or a RST does,
	// toward a DR or TUN real server, in the state the segment gives a new
	// entry (an ACK: ESTABLISHED; a FIN: CLOSE), so that a flow another
	// director started (ECMP moved it, or a failover without sync) goes on
	// with the server the scheduler picks: its own with mh. A RST of an
	// unknown connection is dropped, as IPVS does not schedule it either.
	if p.Proto == packet.ProtoTCP && p.TCPFlags&(tcpSYN|tcpACK|tcpRST) != tcpSYN {
		if !svc.Sloppy || p.TCPFlags&(tcpSYN|tcpRST) != 0 {
			w.drop(DropNoConn)
			return nil
		}
		return w.schedule(svc, frame, p, t, inIface, now, st, nil, true)
	}
	return w.schedule(svc, frame, p, t, inIface, now, st, nil, false)
}

// schedule picks the real server of a new connection of svc with request
// tuple t (scheduler, persistence), allocates its full-NAT local endpoint
// and inserts it. With sp, the connection is the SYN proxy's, half-open
// until its real server answers; only a NAT or full-NAT server can take it.
// midFlow: the packet is not a SYN (a sloppy service); only a DR or TUN
// server can take it, since a NAT server's replies need the way back the
// other director knew.
func (w *worker) schedule(svc *Service, frame []byte, p *packet.Parsed, t *conntrack.Tuple, inIface int, now int64, st *snapshot, sp *synProxyInit, midFlow bool) *conntrack.Conn {
	dst := w.pick(svc, p, now, st)
	if dst == nil {
		w.drop(DropNoDest)
		return nil
	}
	if midFlow && dst.Fwd != conntrack.FwdDR && dst.Fwd != conntrack.FwdTun {
		w.drop(DropNoConn)
		return nil
	}
	if sp != nil && dst.Fwd != conntrack.FwdNAT && dst.Fwd != conntrack.FwdFullNAT {
		// Its replies would bypass the director, which must translate them.
		w.drop(DropUnsupported)
		return nil
	}
	conn := conntrack.Conn{
		Orig:      *t,
		Service:   svc.ID,
		Dest:      dst.ID,
		Fwd:       dst.Fwd,
		InPort:    uint16(inIface),
		ClientMAC: [6]byte(frame[6:12]),
		LocalMAC:  [6]byte(frame[0:6]),
	}
	if sp != nil {
		conn.State = conntrack.StateSynRecv
		conn.Flags = flagSynProxy | flagSynPending
		conn.SeqDelta, conn.ClientWin = sp.cookie, sp.win
	}
	switch dst.Fwd {
	case conntrack.FwdNAT:
		conn.Reply = conntrack.Tuple{Src: dst.Addr, Dst: p.Src, SrcPort: destPort(dst, p.DstPort), DstPort: p.SrcPort, Proto: p.Proto}
	case conntrack.FwdFullNAT:
		rport := destPort(dst, p.DstPort)
		laddr, lport, ok := w.allocLocal(svc, dst, rport, p.Proto, now)
		if !ok {
			return nil
		}
		conn.LAddr, conn.LPort = laddr, lport
		conn.Reply = conntrack.Tuple{Src: dst.Addr, Dst: laddr, SrcPort: rport, DstPort: lport, Proto: p.Proto}
	}
	c, err := w.ct.Insert(&conn, now)
	if err != nil {
		w.drop(DropTableFull)
		return nil
	}
	if svc.Persistence > 0 {
		w.ct.BindTemplate(c, w.templateKey(svc, p))
	}
	w.ctr.NewConns.Add(1)
	dst.stats.perWorker[w.q].conns.Add(1)
	return c
}

// Full-NAT local ports: worker q of n owns the ports p >= lportMin with
// p % n == q, so a reply's destination port names the worker that owns its
// connection (ownerOf, InstallSynced, Adopt), and workers never hand out
// the same local endpoint.
const (
	lportMin   = 1024
	lportTries = 64 // ports tried per local address before trying the next
)

// allocLocal picks a full-NAT local address and port for a new connection
// to dst: one whose reply tuple (RIP:rport -> LIP:lport) is not in use.
// rport is the real server's port of the connection (destPort).
func (w *worker) allocLocal(svc *Service, dst *Dest, rport uint16, proto uint8, now int64) (inet.Addr, uint16, bool) {
	n := len(svc.LocalAddrs)
	nw := len(w.d.workers)
	// The first port >= lportMin that is = q (mod nw), and how many there
	// are: lportMin itself is not a multiple of every worker count.
	first := lportMin + ((w.q-lportMin)%nw+nw)%nw
	span := (65536 - first + nw - 1) / nw // ports this worker owns
	if n > 0 && span > 0 {
		start := int(w.ipID) % n // any spread will do; ipID moves with traffic
		for i := 0; i < n; i++ {
			laddr := svc.LocalAddrs[(start+i)%n]
			k, ok := w.lportNext[laddr]
			if !ok {
				// A random first port, as Linux picks ephemeral ports:
				// a restarted govsd must not hand out at once the ports
				// its predecessor used last, which the real servers may
				// still hold in TIME-WAIT.
				k = rand.IntN(span)
			}
			for try := 0; try < lportTries; try++ {
				port := uint16(first + (k%span)*nw)
				k++
				reply := conntrack.Tuple{Src: dst.Addr, Dst: laddr, SrcPort: rport, DstPort: port, Proto: proto}
				if _, _, used := w.ct.Lookup(&reply, now); !used {
					w.lportNext[laddr] = k % span
					return laddr, port, true
				}
			}
			w.lportNext[laddr] = k % span
		}
	}
	w.drop(DropPortExhausted)
	if now-w.lastPortLog >= int64(time.Second) {
		w.lastPortLog = now
		w.d.log.Warn("full-NAT local ports exhausted; new connections refused", "service", svc.Name,
			"local_addresses", n, "worker", w.q)
	}
	return inet.Addr{}, 0, false
}

func (w *worker) templateKey(svc *Service, p *packet.Parsed) *conntrack.TemplateKey {
	if svc.FwMark != 0 {
		k := fwmarkTemplateKey(svc, p)
		return &k
	}
	return &conntrack.TemplateKey{
		Client:  p.Src.Mask(svc.PersistBits),
		VIP:     svc.VIP,
		VPort:   svc.Port,
		Proto:   p.Proto,
		Service: svc.ID,
	}
}

// pick chooses the real server, honouring a persistence template.
func (w *worker) pick(svc *Service, p *packet.Parsed, now int64, st *snapshot) *Dest {
	var tk *conntrack.TemplateKey
	if svc.Persistence > 0 {
		tk = w.templateKey(svc, p)
		if id, ok := w.ct.LookupTemplate(tk, now); ok {
			// IPVS keeps sending a persistent client to its server while
			// the template lives, even when the server is quiescent
			// (weight 0); only a removed server breaks the binding.
			if dst := st.dest(id); dst != nil && !dst.Removed.Load() {
				return dst
			}
		}
	}
	// The key lives in the worker: a stack value passed through the
	// interface would escape and allocate per connection.
	w.key = sched.Key{Proto: p.Proto, Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort}
	sd := svc.Sched.Pick(&w.key)
	if sd == nil {
		return nil
	}
	dst := st.dest(sd.ID)
	if tk != nil && w.ct.InsertTemplate(tk, dst.ID, svc.Persistence, now) == nil {
		w.mirrorTemplate(tk, dst.ID, now+int64(svc.Persistence), st)
	}
	return dst
}

// request runs f on the worker between two batches and waits for it.
func (w *worker) request(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case w.reqs <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *worker) listConns(ctx context.Context) ([]Conn, error) {
	var out []Conn
	err := w.request(ctx, func() {
		now := nanotime()
		st := w.d.state.Load()
		w.ct.Walk(func(c *conntrack.Conn) bool {
			w.ct.Touch(c, w.lastSeen(c)) // fast-path traffic
			if c.Expires <= now {
				return true
			}
			conn := Conn{
				Proto:   c.Orig.Proto,
				State:   c.State.String(),
				Expires: time.Duration(c.Expires - now),
				Client:  netip.AddrPortFrom(c.Orig.Src.Netip(), c.Orig.SrcPort),
				Virtual: netip.AddrPortFrom(c.Orig.Dst.Netip(), c.Orig.DstPort),
			}
			if dst := st.dest(c.Dest); dst != nil {
				conn.Dest = netip.AddrPortFrom(dst.Addr.Netip(), destPort(dst, c.Orig.DstPort))
			}
			if !c.LAddr.IsZero() {
				conn.Local = netip.AddrPortFrom(c.LAddr.Netip(), c.LPort)
			}
			out = append(out, conn)
			return true
		})
	})
	return out, err
}

func (w *worker) setTimeouts(t conntrack.Timeouts) {
	select {
	case w.reqs <- func() { w.ct.SetTimeouts(t); w.d.invalidateFlows() }:
	default:
		// Busy with another request: retry from a goroutine.
		go w.request(context.Background(), func() { w.ct.SetTimeouts(t); w.d.invalidateFlows() })
	}
}

func (w *worker) listTemplates(ctx context.Context) ([]Template, error) {
	var out []Template
	err := w.request(ctx, func() {
		now := nanotime()
		st := w.d.state.Load()
		w.ct.WalkTemplates(func(k *conntrack.TemplateKey, dest uint32, expires int64, conns int) bool {
			if expires <= now && conns == 0 {
				return true
			}
			t := Template{
				Proto:   k.Proto,
				Client:  k.Client.Netip(),
				Virtual: netip.AddrPortFrom(k.VIP.Netip(), k.VPort),
				Expires: time.Duration(max(expires-now, 0)),
				Conns:   conns,
			}
			if dst := st.dest(dest); dst != nil {
				t.Dest = netip.AddrPortFrom(dst.Addr.Netip(), dst.Port)
			}
			out = append(out, t)
			return true
		})
	})
	return out, err
}
