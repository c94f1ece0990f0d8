package dataplane

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// The connection mirror (issue #14).
//
// A govsd restarted (crash, upgrade, SIGTERM) must go on forwarding the
// connections of the one before without a SYN. The workers' tables live in
// the process, so each worker also writes every connection and persistence
// template, as it changes, into a BPF hash map pinned at PinPath/conns that
// no program reads (bpf.Store): the kernel keeps it while no govsd runs,
// and the next one installs its records into its workers' tables before
// they start (Adopt).
//
// The per-packet path only copies a fixed-size record into a buffer of its
// own (no allocation, no lock, never blocking): at a connection's creation,
// at each of its state changes (the SYN proxy's too, where the sequence
// offset becomes known), at its removal (a delete record, from the table's
// OnRemove) and at a template's creation; a connection that already has a
// record in the buffer gets it overwritten (mirrorConnSlot), so that a short
// one costs the store a record, not one per state. A full buffer, and every
// mirrorFlushEvery, goes over a channel to a pump goroutine that writes the
// records into the store every mirrorEvery; a full channel loses the records
// (MirrorDropped), and so does a full store (MirrorFailed): the next tick
// repairs them (it records every connection). Over every mirrorRefresh, a
// slice of its table per loop tick (tableSweep), each worker records again
// the connections whose recorded expiry comes within two refreshes or lags
// the table's, expiries brought forward from the fast path's last-seen
// times, so the store's expiries keep up with connections whose packets
// change no state; skipping the others spares a large table's refresh a
// record and the fast path's last-seen lookups per connection; and every
// mirrorSweep the pump deletes the records whose expiry has passed
// (templates removed by their expiry leave no delete record). On Close the
// workers' tables are recorded once more and everything is written.
//
// A record is keyed by the connection's original tuple and a kind byte
// (templates: by their key and the recording worker, as every worker keeps
// its own templates); its value holds what forwarding needs: the service
// (VIP, port, protocol, or firewall mark: IDs change between processes),
// the real server's address and port, the forwarding method, state and
// expiry (CLOCK_MONOTONIC, which a restart does not reset), the flags that
// must survive (SYN proxy, not yet learned L2 return path; not the fast
// path's), the return path (ingress ifindex, MACs), the full-NAT local
// endpoint and the SYN proxy's translation. Little-endian, fixed size,
// with a format version: records of another version are skipped.

const (
	mirrorEvery      = 20 * time.Millisecond // the pump writes the store
	mirrorFlushEvery = 10 * time.Millisecond // a worker hands over a partial buffer
	mirrorRefresh    = 10 * time.Second      // a worker records its whole table again
	mirrorSweep      = time.Minute           // the pump deletes expired records
	mirrorBatchLen   = 1024                  // records per buffer
	mirrorFreeMax    = 64                    // buffers kept for reuse per worker
)

// Record layout. The key: the original tuple (templates: client, VIP,
// port, protocol of the template key), the kind, and for a template the
// worker that recorded it.
const (
	mirrorKeySize = 40
	mirrorValSize = 104
	mirrorVersion = 1 // 0 marks a delete in a worker's buffer; never stored

	mirrorKindConn     = 1
	mirrorKindTemplate = 2

	mkSrc, mkDst, mkSPort, mkDPort, mkProto, mkKind, mkWorker = 0, 16, 32, 34, 36, 37, 38

	mvVersion, mvFwd, mvState, mvSvcProto, mvFlags = 0, 1, 2, 3, 4
	mvExpires                                      = 8 // int64, CLOCK_MONOTONIC ns
	mvSvcAddr, mvSvcPort, mvDestPort, mvFwMark     = 16, 32, 34, 36
	mvDestAddr, mvLAddr, mvLPort                   = 40, 56, 72
	mvClientMAC, mvLocalMAC                        = 74, 80
	mvClientWin, mvSeqDelta, mvWinShift            = 86, 88, 92
	mvPPLen, mvPPFlags                             = 93, 94 // the PROXY header and TOA: proxyproto.go
	mvIfindex                                      = 96     // uint32
	mvClientSeq                                    = 100    // uint32; the rest is reserved
)

// mirrorFlags are the connection flag bits (wireFlags) a record keeps: the dataplane's that
// describe the connection (the fast path's bits and count describe entries
// of the old process's generation, and the table sets its own on Insert).
const mirrorFlags = flagSynProxy | flagSynPending | flagNoL2

// mirrorStore is what the mirror needs of its store (bpf.Store; a map in
// the tests).
type mirrorStore interface {
	Put(keys, values []byte, n int) error
	Delete(keys []byte, n int) error
	Iterate(fn func(key, value []byte) bool) error
	Unpin() error
	Close() error
}

var _ mirrorStore = (*bpf.Store)(nil)

// connMirror is the director's side of the mirror: the store and the
// pump's counters.
type connMirror struct {
	store   mirrorStore
	failed  atomic.Uint64 // records the store refused (full)
	swept   atomic.Uint64 // expired records the sweep deleted
	lastErr int64         // when the pump last logged a store error
}

// mirrorBatch is a worker's buffer of records: n keys and values, each
// contiguous, as bpf.Store.Put takes them; a value whose version byte is
// 0 is a delete of its key.
type mirrorBatch struct {
	keys [mirrorBatchLen * mirrorKeySize]byte
	vals [mirrorBatchLen * mirrorValSize]byte
	n    int
}

// openMirror opens (or creates) the store at PinPath/conns, sized for every
// worker's connections and templates, and makes the workers record into
// it. Called by New once the workers exist.
func (d *Director) openMirror() error {
	n := 0
	for _, w := range d.workers {
		n += w.ct.Cap() + w.ct.TemplateCap()
	}
	s, err := bpf.OpenStore(d.opts.PinPath, "conns", mirrorKeySize, mirrorValSize, uint32(max(n, 1)))
	if err != nil {
		return fmt.Errorf("connection mirror at %s: %w", filepath.Join(d.opts.PinPath, "conns"), err)
	}
	d.attachMirror(s)
	return nil
}

// attachMirror makes the workers record into s.
func (d *Director) attachMirror(s mirrorStore) {
	d.mirror = &connMirror{store: s}
	for _, w := range d.workers {
		w.mir = new(mirrorBatch)
		// A refresh records a whole table at once: room for all of it in
		// flight (the buffers themselves are allocated only when needed).
		w.mirOut = make(chan *mirrorBatch, (w.ct.Cap()+w.ct.TemplateCap())/mirrorBatchLen+16)
		w.mirFree = make(chan *mirrorBatch, mirrorFreeMax)
	}
}

// startMirror runs the pump until ctx ends. Called by Start.
func (d *Director) startMirror(ctx context.Context) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(mirrorEvery)
		defer t.Stop()
		lastSweep := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				d.drainMirror()
				if now.Sub(lastSweep) >= mirrorSweep {
					lastSweep = now
					d.sweepMirror()
				}
			}
		}
	}()
}

// drainMirror writes every buffer the workers handed over.
func (d *Director) drainMirror() {
	for _, w := range d.workers {
		for {
			select {
			case b := <-w.mirOut:
				d.mirror.write(b, d)
				b.n = 0
				select {
				case w.mirFree <- b:
				default:
				}
				continue
			default:
			}
			break
		}
	}
}

// flushMirror records every worker's table once more and writes all that
// is pending. Called by Close after the workers and the pump stopped, so it
// runs alone on the workers' state.
func (d *Director) flushMirror() {
	m := d.mirror
	d.drainMirror()
	now := nanotime()
	st := d.state.Load()
	for _, w := range d.workers {
		if w.mir == nil {
			continue
		}
		w.mirSync = func(b *mirrorBatch) { m.write(b, d) }
		w.refreshMirror(now, st, true)
		m.write(w.mir, d)
		w.mir.n = 0
		w.mirSync = nil
	}
	d.drainMirror() // anything handed over meanwhile (none: the workers stopped)
	if f := m.failed.Load(); f > 0 {
		d.log.Warn("connection mirror: records lost (store full); those connections are not adopted by the next govsd", "records", f)
	}
	if err := m.store.Close(); err != nil {
		d.log.Warn("connection mirror: close", "err", err)
	}
}

// unpinMirror removes the store's pin: stop for good.
func (d *Director) unpinMirror() error {
	if err := d.mirror.store.Unpin(); err != nil {
		return fmt.Errorf("connection mirror: %w", err)
	}
	return nil
}

// write applies buffer b to the store in order: runs of records as one Put,
// runs of deletes as one Delete (a connection deleted and its tuple reused
// within one buffer ends up recorded).
func (m *connMirror) write(b *mirrorBatch, d *Director) {
	for i := 0; i < b.n; {
		put := b.vals[i*mirrorValSize+mvVersion] != 0
		j := i + 1
		for j < b.n && (b.vals[j*mirrorValSize+mvVersion] != 0) == put {
			j++
		}
		keys := b.keys[i*mirrorKeySize : j*mirrorKeySize]
		var err error
		if put {
			err = m.store.Put(keys, b.vals[i*mirrorValSize:j*mirrorValSize], j-i)
		} else {
			err = m.store.Delete(keys, j-i)
		}
		if err != nil {
			m.failed.Add(uint64(j - i))
			for _, w := range d.workers {
				w.mirRepair.Store(true) // the records lost may be anyone's
			}
			if now := nanotime(); now-m.lastErr >= int64(time.Minute) {
				m.lastErr = now
				d.log.Warn("connection mirror: store write failed; the next govsd may not adopt some connections", "err", err)
			}
		}
		i = j
	}
}

// sweepMirror deletes the records whose expiry has passed.
func (d *Director) sweepMirror() {
	m := d.mirror
	now := bpf.MonotonicNow()
	var keys []byte
	err := m.store.Iterate(func(k, v []byte) bool {
		if v[mvVersion] == mirrorVersion && int64(binary.LittleEndian.Uint64(v[mvExpires:])) <= now {
			keys = append(keys, k...)
		}
		return true
	})
	if err != nil {
		d.log.Warn("connection mirror: sweep", "err", err)
		return
	}
	n := len(keys) / mirrorKeySize
	if err := m.store.Delete(keys, n); err != nil {
		d.log.Warn("connection mirror: sweep", "err", err)
		return
	}
	m.swept.Add(uint64(n))
}

// mirrorCounters adds the mirror's counters to c (Director.Counters).
func (d *Director) mirrorCounters(c *Counters) {
	for _, w := range d.workers {
		c.MirrorDropped += w.ctr.MirrorDropped.Load()
	}
	if d.mirror != nil {
		c.MirrorFailed += d.mirror.failed.Load()
	}
}

// Worker side.

// mirrorSlot returns the index of the next free record of the worker's
// buffer, handing the buffer over first if it is full.
func (w *worker) mirrorSlot() int {
	if w.mir.n == mirrorBatchLen {
		w.pushMirror()
	}
	i := w.mir.n
	w.mir.n++
	return i
}

// pushMirror hands the buffer to the pump and takes a fresh one; a full
// channel loses the buffer's records (counted). Never blocks.
func (w *worker) pushMirror() {
	if w.mirSync != nil {
		w.mirSync(w.mir)
		w.mir.n = 0
		return
	}
	select {
	case w.mirOut <- w.mir:
		select {
		case w.mir = <-w.mirFree:
		default:
			w.mir = new(mirrorBatch)
		}
	default:
		w.ctr.MirrorDropped.Add(uint64(w.mir.n))
		w.mir.n = 0
		w.mirRepair.Store(true)
	}
}

// tickMirror runs once per loop: hands over the buffer every
// mirrorFlushEvery, and records the table again every mirrorRefresh.
func (w *worker) tickMirror(now int64, st *snapshot) {
	if w.mirRepair.Swap(false) {
		// Records were lost: every connection again, now.
		w.refreshMirror(now, st, true)
	} else if n := w.mirSweep.due(now, mirrorRefresh, w.ct.Cap()); n > 0 {
		from := w.mirSweep.next
		w.mirSweep.next = w.ct.WalkSlots(from, n, func(c *conntrack.Conn) { w.refreshMirrorConn(c, now, st, false) })
		if n >= w.ct.Cap() || w.mirSweep.next <= from {
			w.refreshMirrorTemplates(now, st) // once per pass
		}
	}
	if w.mir.n > 0 && now-w.lastMirrorFlush >= int64(mirrorFlushEvery) {
		w.lastMirrorFlush = now
		w.pushMirror()
	}
}

// putKey writes key record i.
func (b *mirrorBatch) putKey(i int, src, dst inet.Addr, sport, dport uint16, proto lvs.Proto, kind uint8, worker uint16) {
	mirrorKey(b.keys[i*mirrorKeySize:(i+1)*mirrorKeySize], src, dst, sport, dport, proto, kind, worker)
}

// mirrorKey writes a record's key into k.
func mirrorKey(k []byte, src, dst inet.Addr, sport, dport uint16, proto lvs.Proto, kind uint8, worker uint16) {
	copy(k[mkSrc:mkSrc+16], src[:])
	copy(k[mkDst:mkDst+16], dst[:])
	binary.LittleEndian.PutUint16(k[mkSPort:], sport)
	binary.LittleEndian.PutUint16(k[mkDPort:], dport)
	k[mkProto], k[mkKind] = uint8(proto), kind
	binary.LittleEndian.PutUint16(k[mkWorker:], worker)
}

// putService writes svc's identity into value v.
func putService(v []byte, svc *Service) {
	v[mvSvcProto] = byte(svc.Proto)
	copy(v[mvSvcAddr:mvSvcAddr+16], svc.VIP[:])
	binary.LittleEndian.PutUint16(v[mvSvcPort:], svc.Port)
	binary.LittleEndian.PutUint32(v[mvFwMark:], svc.FwMark)
}

// mirrorConn records connection c (created, or its state changed).
func (w *worker) mirrorConn(c *conntrack.Conn, st *snapshot) {
	cp := w.path(c)
	if w.mir == nil {
		return
	}
	dst, svc := st.dest(c.Dest), st.service(c.Service)
	if dst == nil || svc == nil {
		return // a removed service's: no next govsd could adopt it
	}
	i := w.mirrorConnSlot(c, cp)
	b := w.mir
	v := b.vals[i*mirrorValSize : (i+1)*mirrorValSize]
	clear(v)
	v[mvVersion], v[mvFwd], v[mvState] = mirrorVersion, uint8(c.Fwd), uint8(c.State)
	binary.LittleEndian.PutUint16(v[mvFlags:], cp.flags&mirrorFlags)
	binary.LittleEndian.PutUint64(v[mvExpires:], uint64(c.Expires+monoOffset))
	putService(v, svc)
	copy(v[mvDestAddr:mvDestAddr+16], dst.Addr[:])
	binary.LittleEndian.PutUint16(v[mvDestPort:], dst.Port)
	copy(v[mvLAddr:mvLAddr+16], c.LAddr[:])
	binary.LittleEndian.PutUint16(v[mvLPort:], c.LPort)
	copy(v[mvClientMAC:mvClientMAC+6], cp.clientMAC[:])
	copy(v[mvLocalMAC:mvLocalMAC+6], cp.localMAC[:])
	binary.LittleEndian.PutUint16(v[mvClientWin:], cp.clientWin)
	binary.LittleEndian.PutUint32(v[mvSeqDelta:], cp.seqDelta)
	v[mvWinShift] = uint8(cp.winShift)
	v[mvPPLen], v[mvPPFlags] = cp.ppLen, cp.ppFlags
	binary.LittleEndian.PutUint32(v[mvClientSeq:], cp.clientSeq)
	cp.mirExpires = uint32(max(c.Expires, 0) / int64(time.Second))
	if int(cp.inPort) < len(w.d.ifaces) {
		// By ifindex: the next govsd may list its interfaces otherwise.
		binary.LittleEndian.PutUint32(v[mvIfindex:], uint32(w.d.ifaces[cp.inPort].Index))
	}
}

// mirrorDelete records the removal of c (conntrack.Config.OnRemove).
func (w *worker) mirrorDelete(c *conntrack.Conn) {
	if w.mir == nil {
		return
	}
	i := w.mirrorConnSlot(c, w.path(c))
	w.mir.vals[i*mirrorValSize+mvVersion] = 0
}

// mirrorConnSlot returns the index of c's record in the worker's buffer,
// its key written: the record c already has there, which a state change or
// the removal then overwrites, else a new one. A short connection (a
// one-request HTTP connection passes five states in a few milliseconds)
// so costs the store one record per buffer instead of one per state. The
// record found is c's latest of its key, so overwriting keeps the order
// the store sees: cp.mirSlot (1 + the index; 0 for none) can be stale,
// from a buffer handed over since, and counts only where the record
// there has c's key, which in this buffer only c's records can have (a
// tuple is one connection's at a time, and a removed one's last record
// came before its successor's first).
func (w *worker) mirrorConnSlot(c *conntrack.Conn, cp *connPath) int {
	var k [mirrorKeySize]byte
	mirrorKey(k[:], c.Orig.Src, c.Orig.Dst, c.Orig.SrcPort, c.Orig.DstPort, c.Orig.Proto, mirrorKindConn, 0)
	b := w.mir
	if j := int(cp.mirSlot) - 1; j >= 0 && j < b.n && [mirrorKeySize]byte(b.keys[j*mirrorKeySize:]) == k {
		return j
	}
	i := w.mirrorSlot()
	copy(w.mir.keys[i*mirrorKeySize:(i+1)*mirrorKeySize], k[:])
	cp.mirSlot = uint16(i + 1)
	return i
}

// mirrorTemplate records persistence template k, which sends its clients
// to real server dest until expires.
func (w *worker) mirrorTemplate(k *conntrack.TemplateKey, dest uint32, expires int64, st *snapshot) {
	if w.mir == nil {
		return
	}
	dst, svc := st.dest(dest), st.service(k.Service)
	if dst == nil || svc == nil {
		return
	}
	i := w.mirrorSlot()
	b := w.mir
	b.putKey(i, k.Client, k.VIP, 0, k.VPort, k.Proto, mirrorKindTemplate, uint16(w.q))
	v := b.vals[i*mirrorValSize : (i+1)*mirrorValSize]
	clear(v)
	v[mvVersion] = mirrorVersion
	binary.LittleEndian.PutUint64(v[mvExpires:], uint64(expires+monoOffset))
	putService(v, svc)
	copy(v[mvDestAddr:mvDestAddr+16], dst.Addr[:])
	binary.LittleEndian.PutUint16(v[mvDestPort:], dst.Port)
}

// onRemove is the table's OnRemove: the connection's flow entries go, and
// the mirror forgets it.
func (w *worker) onRemove(c *conntrack.Conn) {
	w.unoffload(c)
	w.mirrorDelete(c)
}

// refreshMirror records again, with the expiry the fast path's traffic
// gives them (as refreshSync does), the connections whose recorded expiry
// comes before two refresh periods from now or lags their expiry in the
// table (packets through the workers moved it) by a second or more, all
// of them if all is set; and every template. A record skipped holds an
// expiry that is still a period ahead at the next refresh, so the store
// never holds a live connection as expired. It may hold an earlier expiry
// than a fast-path connection has by its traffic, which the refresh does
// not ask the program for (two lookups per connection): the next govsd
// adopts the connection with its flow entries and, as this one does,
// revives it from their last-seen stamps before it would expire it.
//
// tickMirror takes the table a slice at a time (tableSweep), the templates
// once per pass; refreshMirror walks it whole (after a loss, and on Close).
func (w *worker) refreshMirror(now int64, st *snapshot, all bool) {
	w.ct.Walk(func(c *conntrack.Conn) bool {
		w.refreshMirrorConn(c, now, st, all)
		return true
	})
	w.refreshMirrorTemplates(now, st)
}

// refreshMirrorConn is refreshMirror's step for connection c.
func (w *worker) refreshMirrorConn(c *conntrack.Conn, now int64, st *snapshot, all bool) {
	rec := int64(w.path(c).mirExpires) * int64(time.Second)
	if !all && rec >= now+2*int64(mirrorRefresh) && c.Expires < rec+int64(time.Second) {
		return
	}
	w.ct.Touch(c, w.lastSeen(c))
	if c.Expires > now {
		w.mirrorConn(c, st)
	}
}

// refreshMirrorTemplates records every persistence template again.
func (w *worker) refreshMirrorTemplates(now int64, st *snapshot) {
	w.ct.WalkTemplates(func(k *conntrack.TemplateKey, dest uint32, expires int64, conns int) bool {
		if conns > 0 {
			// It lives while its connections do, and its timeout after.
			if svc := st.service(k.Service); svc != nil {
				expires = max(expires, now+int64(svc.Persistence))
			}
		}
		if expires > now {
			w.mirrorTemplate(k, dest, expires, st)
		}
		return true
	})
}

// Adoption.

// AdoptStats says what Adopt did with the mirror's records.
type AdoptStats struct {
	Conns     int // connections installed
	Templates int // persistence templates installed
	Expired   int // records whose expiry had passed
	// Unknown: records of another format version, or whose service, real
	// server (address, port and forwarding method) or full-NAT local
	// address the configuration no longer has, or that found no room.
	Unknown int
	// Misplaced: full-NAT connections that no worker can own now: the
	// number of workers changed, and the worker their requests go to is
	// not the one their local port names.
	Misplaced int
}

// mirrorRecord is a record decoded.
type mirrorRecord struct {
	kind              uint8
	worker            uint16
	src, dst          inet.Addr
	sport, dport      uint16
	proto             lvs.Proto
	fwd               lvs.Fwd
	state             conntrack.State
	flags             uint16
	expires           int64 // on nanotime's clock
	svcAddr           inet.Addr
	svcPort           uint16
	svcProto          lvs.Proto
	fwMark            uint32
	destAddr          inet.Addr
	destPort          uint16
	lAddr             inet.Addr
	lPort             uint16
	clientMAC, locMAC [6]byte
	clientWin         uint16
	seqDelta          uint32
	winShift          int8
	ppLen, ppFlags    uint8
	clientSeq         uint32
	ifindex           int
}

func decodeMirror(k, v []byte) mirrorRecord {
	return mirrorRecord{
		kind:      k[mkKind],
		worker:    binary.LittleEndian.Uint16(k[mkWorker:]),
		src:       inet.Addr(k[mkSrc : mkSrc+16]),
		dst:       inet.Addr(k[mkDst : mkDst+16]),
		sport:     binary.LittleEndian.Uint16(k[mkSPort:]),
		dport:     binary.LittleEndian.Uint16(k[mkDPort:]),
		proto:     lvs.Proto(k[mkProto]),
		fwd:       lvs.Fwd(v[mvFwd]),
		state:     conntrack.State(v[mvState]),
		flags:     binary.LittleEndian.Uint16(v[mvFlags:]) & mirrorFlags,
		expires:   int64(binary.LittleEndian.Uint64(v[mvExpires:])) - monoOffset,
		svcAddr:   inet.Addr(v[mvSvcAddr : mvSvcAddr+16]),
		svcPort:   binary.LittleEndian.Uint16(v[mvSvcPort:]),
		svcProto:  lvs.Proto(v[mvSvcProto]),
		fwMark:    binary.LittleEndian.Uint32(v[mvFwMark:]),
		destAddr:  inet.Addr(v[mvDestAddr : mvDestAddr+16]),
		destPort:  binary.LittleEndian.Uint16(v[mvDestPort:]),
		lAddr:     inet.Addr(v[mvLAddr : mvLAddr+16]),
		lPort:     binary.LittleEndian.Uint16(v[mvLPort:]),
		clientMAC: [6]byte(v[mvClientMAC : mvClientMAC+6]),
		locMAC:    [6]byte(v[mvLocalMAC : mvLocalMAC+6]),
		clientWin: binary.LittleEndian.Uint16(v[mvClientWin:]),
		seqDelta:  binary.LittleEndian.Uint32(v[mvSeqDelta:]),
		winShift:  int8(v[mvWinShift]),
		ppLen:     v[mvPPLen],
		ppFlags:   v[mvPPFlags],
		clientSeq: binary.LittleEndian.Uint32(v[mvClientSeq:]),
		ifindex:   int(binary.LittleEndian.Uint32(v[mvIfindex:])),
	}
}

// service returns the service r belongs to in st, by its VIP, port and
// protocol or its firewall mark.
func (r *mirrorRecord) service(st *snapshot) *Service {
	if r.fwMark != 0 {
		return st.byMark[r.fwMark]
	}
	return st.byKey[serviceKey{r.svcAddr, r.svcPort, r.svcProto}]
}

// dest returns svc's real server of r; a connection's must forward as it did.
func (r *mirrorRecord) dest(svc *Service) *Dest {
	for _, d := range svc.Dests {
		if d.Addr == r.destAddr && d.Port == r.destPort && (r.kind == mirrorKindTemplate || d.Fwd == r.fwd) {
			return d
		}
	}
	return nil
}

// Adopt installs the mirror's records, left by a previous govsd, into the
// workers' tables: each connection into the worker that owns it now (the
// one its packets are handed to), each template into the worker that
// recorded it. Called after Apply (services and real servers are found by
// address) and before the workers run. Records that cannot be adopted are
// deleted from the store.
func (d *Director) Adopt() (AdoptStats, error) {
	var stats AdoptStats
	m := d.mirror
	if m == nil {
		return stats, nil
	}
	var recs []mirrorRecord
	var drop []byte // keys of the records to delete
	err := m.store.Iterate(func(k, v []byte) bool {
		if v[mvVersion] != mirrorVersion || (k[mkKind] != mirrorKindConn && k[mkKind] != mirrorKindTemplate) {
			stats.Unknown++
			drop = append(drop, k...)
			return true
		}
		recs = append(recs, decodeMirror(k, v))
		return true
	})
	if err != nil {
		return stats, fmt.Errorf("read connection mirror: %w", err)
	}
	now := nanotime()
	st := d.state.Load()
	nw := len(d.workers)
	skip := func(r *mirrorRecord, n *int) {
		*n++
		if r.kind == mirrorKindConn {
			d.forgetFlows(r)
		}
		var k [mirrorKeySize]byte
		mirrorKey(k[:], r.src, r.dst, r.sport, r.dport, r.proto, r.kind, r.worker)
		drop = append(drop, k[:]...)
	}
	// Templates first, so that connections bind to them.
	for i := range recs {
		r := &recs[i]
		if r.kind != mirrorKindTemplate {
			continue
		}
		svc := r.service(st)
		var dst *Dest
		if svc != nil && svc.Persistence > 0 {
			dst = r.dest(svc)
		}
		switch {
		case dst == nil:
			skip(r, &stats.Unknown)
		case r.expires <= now:
			skip(r, &stats.Expired)
		default:
			w := d.workers[int(r.worker)%nw]
			k := conntrack.TemplateKey{Client: r.src, VIP: r.dst, VPort: r.dport, Proto: r.proto, Service: svc.ID}
			// The service's timeout, which the template gets again after
			// its last connection ends.
			if w.insertTemplate(&k, dst.ID, svc.Persistence, now) != nil {
				skip(r, &stats.Unknown)
				continue
			}
			stats.Templates++
		}
	}
	for i := range recs {
		r := &recs[i]
		if r.kind != mirrorKindConn {
			continue
		}
		if r.expires <= now {
			skip(r, &stats.Expired)
			continue
		}
		w, ok := d.adoptOwner(r)
		if !ok {
			skip(r, &stats.Misplaced)
			continue
		}
		if !w.adoptConn(r, st, now) {
			skip(r, &stats.Unknown)
			continue
		}
		stats.Conns++
	}
	for _, w := range d.workers {
		w.connCount.Store(int64(w.ct.Len()))
	}
	if err := m.store.Delete(drop, len(drop)/mirrorKeySize); err != nil {
		d.log.Warn("connection mirror: delete records not adopted", "err", err)
	}
	return stats, nil
}

// adoptOwner returns the worker that owns r's connection now: the one its
// requests are handed to (ownerOf); for full-NAT also the one its local
// port names, which must be the same.
func (d *Director) adoptOwner(r *mirrorRecord) (*worker, bool) {
	nw := uint32(len(d.workers))
	q := mixEndpoint(r.src, r.sport) % nw
	if fwdOf(r.fwd).localEndpoint() && uint32(r.lPort)%nw != q {
		return nil, false
	}
	return d.workers[q], true
}

// adoptConn installs record r's connection; false when the configuration
// has no longer what it needs, or the table no room.
func (w *worker) adoptConn(r *mirrorRecord, st *snapshot, now int64) bool {
	svc := r.service(st)
	if svc == nil {
		return false
	}
	dst := r.dest(svc)
	if dst == nil || (fwdOf(r.fwd).localEndpoint() && !st.locals[r.lAddr]) {
		return false
	}
	conn := conntrack.Conn{
		Orig:    conntrack.Tuple{Src: r.src, Dst: r.dst, SrcPort: r.sport, DstPort: r.dport, Proto: r.proto},
		Service: svc.ID, Dest: dst.ID, Fwd: r.fwd, State: r.state,
		LAddr: r.lAddr, LPort: r.lPort,
	}
	cp := connPath{
		// The fast path's count saturated: the first packet through the
		// worker writes the flow entries it lacks (adoptFlows).
		flags:     r.flags | fastCountMask,
		clientMAC: r.clientMAC, localMAC: r.locMAC,
		seqDelta: r.seqDelta, clientWin: r.clientWin, winShift: r.winShift,
		ppLen: r.ppLen, ppFlags: r.ppFlags, clientSeq: r.clientSeq,
	}
	if i := w.d.ifaceIndex(r.ifindex); i >= 0 {
		cp.inPort = uint16(i)
	} else {
		// Its interface is no longer served: the return path is
		// learned from the next request, as for a synced connection.
		cp.flags |= flagNoL2
	}
	conn.Reply = fwdOf(r.fwd).replyTuple(conn.Orig, dst.Addr, destPort(dst, r.dport), r.lAddr, r.lPort)
	c, err := w.insert(&conn, cp, now)
	if err != nil {
		return false
	}
	c.Expires = r.expires
	w.adoptFlows(c)
	if svc.Persistence > 0 {
		k := connTemplateKey(svc, &c.Orig)
		if !w.ct.BindTemplate(c, &k) {
			// Its template was recorded by another worker (or not at
			// all): this worker gets its own, as pick would make it.
			if w.insertTemplate(&k, dst.ID, svc.Persistence, now) == nil {
				w.ct.BindTemplate(c, &k)
			}
		}
	}
	return true
}

// adoptFlows takes over the flow entries the previous govsd wrote for c
// and the program still acts on (same generation): the fast path goes on
// forwarding c without a packet through a worker, so a restart neither
// slows nor reorders established flows.
func (w *worker) adoptFlows(c *conntrack.Conn) {
	cp := w.path(c)
	if !fastState(c.State) || w.d.steer == nil || !w.d.flowEntries() {
		return
	}
	cp.fastGen = uint16(w.d.steer.FlowGeneration())
	if w.d.steer.FlowCurrent(flowOf(&c.Orig)) {
		cp.flags |= flagFastIn
	}
	if viaDirector(c.Fwd) && w.d.steer.FlowCurrent(flowOf(&c.Reply)) {
		cp.flags |= flagFastOut
	}
}

// forgetFlows deletes the flow entries of a connection record that is
// not adopted: nothing would own them.
func (d *Director) forgetFlows(r *mirrorRecord) {
	if d.steer == nil {
		return
	}
	orig := conntrack.Tuple{Src: r.src, Dst: r.dst, SrcPort: r.sport, DstPort: r.dport, Proto: r.proto}
	d.steer.DeleteFlow(nil, flowOf(&orig))
	rport := r.destPort
	if rport == 0 {
		rport = r.dport
	}
	if reply := fwdOf(r.fwd).replyTuple(orig, r.destAddr, rport, r.lAddr, r.lPort); reply != (conntrack.Tuple{}) {
		d.steer.DeleteFlow(nil, flowOf(&reply))
	}
}

// ifaceIndex returns the position in d.ifaces of the interface of index
// ifindex, or -1.
func (d *Director) ifaceIndex(ifindex int) int {
	for i, ifc := range d.ifaces {
		if ifindex != 0 && ifc.Index == ifindex {
			return i
		}
	}
	return -1
}

// connTemplateKey is the template key of a connection of persistent
// service svc with request tuple t (templateKey, from a tuple).
func connTemplateKey(svc *Service, t *conntrack.Tuple) conntrack.TemplateKey {
	if svc.FwMark != 0 {
		return conntrack.TemplateKey{Client: t.Src.Mask(svc.PersistBits), VIP: markVIP(svc.FwMark), Service: svc.ID}
	}
	return conntrack.TemplateKey{Client: t.Src.Mask(svc.PersistBits), VIP: svc.VIP, VPort: svc.Port, Proto: t.Proto, Service: svc.ID}
}
