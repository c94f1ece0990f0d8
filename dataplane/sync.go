package dataplane

import (
	"context"
	"time"

	"github.com/govs/govs/connsync"
	"github.com/govs/govs/conntrack"
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

// flagNoL2 marks a synced connection whose client-side L2 return path is
// not known yet (a dataplane flag bit, above conntrack's own).
const flagNoL2 uint16 = 0x0100

// EnableSync makes the workers record connection changes and calls sink
// with batches of them until the returned stop function is called. It may
// be called while the director runs (ipvsadm --start-daemon master).
func (d *Director) EnableSync(sink func([]connsync.Entry)) (stop func()) {
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
	if dst == nil || c.Flags&flagSynProxy != 0 { // no sequence offset in connsync: synproxy.go
		return
	}
	e := connsync.Entry{
		Kind: connsync.KindConn, Proto: c.Orig.Proto, Fwd: uint8(c.Fwd), State: uint8(c.State), Flags: c.Flags,
		Client: c.Orig.Src, CPort: c.Orig.SrcPort, Virtual: c.Orig.Dst, VPort: c.Orig.DstPort,
		Dest: dst.Addr, DPort: dst.Port, Local: c.LAddr, LPort: c.LPort,
	}
	e.SetRemaining(time.Duration(c.Expires - now))
	w.syncBuf = append(w.syncBuf, e)
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
			w.syncBuf = make([]connsync.Entry, 0, syncRing)
		}
	default:
		w.ctr.SyncDropped.Add(uint64(len(w.syncBuf)))
		w.syncBuf = w.syncBuf[:0]
	}
}

// refreshSync re-sends the established connections, a slice of the table
// per call, so a backup's copies outlive their timeouts.
func (w *worker) refreshSync(now int64, st *snapshot) {
	w.ct.Walk(func(c *conntrack.Conn) bool {
		if c.State == conntrack.StateEstablished || c.State == conntrack.StateUDP {
			w.ct.Touch(c, w.lastSeen(c)) // fast-path traffic: the backup gets the real expiry
			w.syncConn(c, st, now)
		}
		return true
	})
}

// InstallSynced gives entries received from a master to the workers that
// own them; each worker installs its share between two batches.
func (d *Director) InstallSynced(entries []connsync.Entry) {
	n := len(d.workers)
	parts := make([][]connsync.Entry, n)
	for _, e := range entries {
		owner := int(mixEndpoint(e.Client, e.CPort) % uint32(n))
		if e.Fwd == uint8(conntrack.FwdFullNAT) && e.Kind == connsync.KindConn {
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

// install puts synced entries into this worker's table.
func (w *worker) install(entries []connsync.Entry) {
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
		expires := now + int64(e.Remaining())
		if e.Kind == connsync.KindTemplate {
			k := conntrack.TemplateKey{Client: e.Client, VIP: e.Virtual, VPort: e.VPort, Proto: e.Proto, Service: svc.ID}
			if w.ct.InsertTemplate(&k, dst.ID, e.Remaining(), now) == nil {
				w.mirrorTemplate(&k, dst.ID, expires, st)
			}
			continue
		}
		orig := conntrack.Tuple{Src: e.Client, Dst: e.Virtual, SrcPort: e.CPort, DstPort: e.VPort, Proto: e.Proto}
		if c, dir, ok := w.ct.Lookup(&orig, now); ok && dir == conntrack.DirOriginal {
			if e.Kind == connsync.KindDelete {
				w.ct.Delete(c)
			} else {
				w.ct.Restore(c, conntrack.State(e.State), expires)
				w.mirrorConn(c, st)
			}
			continue
		}
		if e.Kind == connsync.KindDelete {
			continue
		}
		conn := conntrack.Conn{
			Orig: orig, Service: svc.ID, Dest: dst.ID, Fwd: conntrack.Fwd(e.Fwd),
			State: conntrack.State(e.State), Flags: flagNoL2, LAddr: e.Local, LPort: e.LPort,
		}
		switch conn.Fwd {
		case conntrack.FwdNAT:
			conn.Reply = conntrack.Tuple{Src: dst.Addr, Dst: e.Client, SrcPort: destPort(dst, e.VPort), DstPort: e.CPort, Proto: e.Proto}
		case conntrack.FwdFullNAT:
			conn.Reply = conntrack.Tuple{Src: dst.Addr, Dst: e.Local, SrcPort: destPort(dst, e.VPort), DstPort: e.LPort, Proto: e.Proto}
		}
		c, err := w.ct.Insert(&conn, now)
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
