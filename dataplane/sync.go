package dataplane

import (
	"context"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Connection synchronisation (IPVS's sync daemon).
//
// On a master, each worker records new connections and state changes in a
// ring of its own (no lock, no allocation per packet); a pump goroutine
// drains the rings every syncEvery and hands the entries to the sink (the
// connsync sender). Established connections are sent again every
// syncRefresh so that a backup's copy never expires while the connection
// lives. On a backup, received entries are given to the worker that would
// own the connection, which installs them between two batches with their
// state and remaining timeout. A synced connection does not know the L2
// neighbour of its client yet: the first request after a failover teaches
// it, and replies before that are dropped and counted (TCP retransmits).

const (
	syncEvery   = 50 * time.Millisecond
	syncRefresh = 30 * time.Second
	syncRing    = 4096
)

// SyncRecord is one change of a connection (or a persistence template)
// for the backups: what the workers report on a master (EnableSyncRecords)
// and install on a backup (InstallSyncRecords). The daemon carries it on
// connsync's wire; the data path knows nothing of that format.
type SyncRecord struct {
	Kind  SyncKind
	Proto lvs.Proto
	Fwd   lvs.Fwd
	State conntrack.State
	// Flags are the connection's flags: the table's in bits 0..7, the
	// data path's in 8..15 (connPath.flags). A backup ignores them.
	Flags uint16
	// Remaining is the idle time left when the record was made; zero for
	// SyncDelete.
	Remaining time.Duration

	Client  inet.Addr // CIP (templates: the masked client network)
	Virtual inet.Addr // VIP
	Dest    inet.Addr // RIP
	Local   inet.Addr // LIP (full-NAT only; zero otherwise)
	CPort   uint16
	VPort   uint16
	DPort   uint16
	LPort   uint16
}

// SyncKind says what a SyncRecord is about.
type SyncKind uint8

const (
	// SyncConn is a new connection or a change of its state; a backup
	// inserts it or, if it has it, updates it.
	SyncConn SyncKind = iota + 1
	// SyncTemplate is a persistence template: Client is the masked client
	// network, Virtual:VPort the service, Dest the real server the
	// clients are bound to.
	SyncTemplate
	// SyncDelete says the connection is gone on the master.
	SyncDelete
)

// flagNoL2 marks a synced connection whose client-side L2 return path is
// not known yet (a dataplane flag bit, above conntrack's own).
const flagNoL2 uint16 = 0x0100

// EnableSyncRecords makes the workers record connection changes and calls
// sink with batches of them until the returned stop function is called. It
// may be called while the director runs (ipvsadm --start-daemon master).
// A batch is the sink's only during the call.
func (d *Director) EnableSyncRecords(sink func([]SyncRecord)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.syncOn.Store(true)
	go func() {
		defer close(done)
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, w := range d.workers {
				for drained := false; !drained; {
					select {
					case batch := <-w.syncOut:
						sink(batch)
						select {
						case w.syncFree <- batch[:0]:
						default:
						}
					default:
						drained = true
					}
				}
			}
		}
	}()
	return func() {
		d.syncOn.Store(false)
		cancel()
		<-done
	}
}

// syncConn records c for the backups. It runs on the worker, per new
// connection or state change, and never blocks: a full queue loses the
// entry (counted), and the periodic refresh repairs it.
func (w *worker) syncConn(c *conntrack.Conn, st *snapshot, now int64) {
	dst := st.dest(c.Dest)
	if cp := w.path(c); dst == nil || cp.flags&flagSynProxy != 0 || cp.clientAddr() { // no sequence offset in connsync: synproxy.go, proxyproto.go
		return
	}
	w.syncBuf = append(w.syncBuf, SyncRecord{
		Kind: SyncConn, Proto: c.Orig.Proto, Fwd: c.Fwd, State: c.State, Flags: w.wireFlags(c),
		Remaining: time.Duration(c.Expires - now),
		Client:    c.Orig.Src, CPort: c.Orig.SrcPort, Virtual: c.Orig.Dst, VPort: c.Orig.DstPort,
		Dest: dst.Addr, DPort: dst.Port, Local: c.LAddr, LPort: c.LPort,
	})
	if len(w.syncBuf) == cap(w.syncBuf) {
		w.flushSync()
	}
}

// flushSync hands the recorded entries to the pump; called once per loop.
func (w *worker) flushSync() {
	if len(w.syncBuf) == 0 {
		return
	}
	select {
	case w.syncOut <- w.syncBuf:
		select {
		case w.syncBuf = <-w.syncFree: // recycled by the pump
		default:
			w.syncBuf = make([]SyncRecord, 0, syncRing)
		}
	default:
		w.ctr.SyncDropped.Add(uint64(len(w.syncBuf)))
		w.syncBuf = w.syncBuf[:0]
	}
}

// refreshSync re-sends the established connections (the whole table once
// every syncRefresh), so a backup's copies outlive their timeouts and a lost
// message is repaired. A connection whose expiry comes within two periods
// first takes the fast path's traffic into account (Touch with its
// last-seen stamps), so the backup's copy is extended while the connection
// lives; the others are sent with the expiry the table has, still two
// periods ahead at least, which spares a large table's refresh the two
// last-seen lookups (system calls) per connection.
//
// It takes n slots of the table from slot from on (the worker's loop takes
// it a slice at a time: tableSweep) and returns where the next slice goes on.
func (w *worker) refreshSync(from, n int, now int64, st *snapshot) int {
	horizon := now + 2*int64(syncRefresh)
	return w.ct.WalkSlots(from, n, func(c *conntrack.Conn) {
		if c.State == conntrack.StateEstablished || c.State == conntrack.StateUDP {
			if c.Expires < horizon {
				w.ct.Touch(c, w.lastSeen(c))
			}
			w.syncConn(c, st, now)
		}
	})
}

// InstallSyncRecords gives records received from a master to the workers
// that own them; each worker installs its share between two batches. The
// records are the director's from then on.
func (d *Director) InstallSyncRecords(records []SyncRecord) {
	n := len(d.workers)
	parts := make([][]SyncRecord, n)
	for _, e := range records {
		owner := int(mixEndpoint(e.Client, e.CPort) % uint32(n))
		if fwdOf(e.Fwd).localEndpoint() && e.Kind == SyncConn {
			owner = int(uint32(e.LPort) % uint32(n))
		}
		parts[owner] = append(parts[owner], e)
	}
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		w := d.workers[i]
		select {
		case w.reqs <- func() { w.install(part) }:
		default:
			go w.request(context.Background(), func() { w.install(part) })
		}
	}
}

// install puts synced records into this worker's table.
func (w *worker) install(entries []SyncRecord) {
	now := nanotime()
	st := w.d.state.Load()
	for i := range entries {
		e := &entries[i]
		svc := st.lookup(e.Virtual, e.VPort, e.Proto)
		if svc == nil {
			w.ctr.SyncUnknown.Add(1)
			continue
		}
		var dst *Dest
		for _, cand := range svc.Dests {
			if cand.Addr == e.Dest && cand.Port == e.DPort {
				dst = cand
			}
		}
		if dst == nil {
			w.ctr.SyncUnknown.Add(1)
			continue
		}
		expires := now + int64(e.Remaining)
		if e.Kind == SyncTemplate {
			k := conntrack.TemplateKey{Client: e.Client, VIP: e.Virtual, VPort: e.VPort, Proto: e.Proto, Service: svc.ID}
			if w.insertTemplate(&k, dst.ID, e.Remaining, now) == nil {
				w.mirrorTemplate(&k, dst.ID, expires, st)
			}
			continue
		}
		orig := conntrack.Tuple{Src: e.Client, Dst: e.Virtual, SrcPort: e.CPort, DstPort: e.VPort, Proto: e.Proto}
		if c, dir, ok := w.ct.Lookup(&orig, now); ok && dir == conntrack.DirOriginal {
			if e.Kind == SyncDelete {
				w.ct.Delete(c)
			} else {
				w.ct.Restore(c, e.State, expires)
				w.mirrorConn(c, st)
			}
			continue
		}
		if e.Kind == SyncDelete {
			continue
		}
		conn := conntrack.Conn{
			Orig: orig, Service: svc.ID, Dest: dst.ID, Fwd: e.Fwd,
			State: e.State, LAddr: e.Local, LPort: e.LPort,
		}
		conn.Reply = fwdOf(conn.Fwd).replyTuple(orig, dst.Addr, destPort(dst, e.VPort), e.Local, e.LPort)
		c, err := w.insert(&conn, connPath{flags: flagNoL2}, now)
		if err != nil {
			w.ctr.SyncUnknown.Add(1)
			continue
		}
		c.Expires = expires
		w.mirrorConn(c, st)
		w.ctr.SyncInstalled.Add(1)
	}
	w.connCount.Store(int64(w.ct.Len()))
}
