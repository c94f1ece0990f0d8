package dataplane

import (
	"sync"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
)

// Persistence across workers. Each worker keeps its persistence templates
// in its own table, like its connections (one owner each). But a client's
// connections belong to workers by client address and port (handoff.go),
// so with several RX queues one client's connections are spread over the
// workers, and each would schedule its first one anew: persistence (IPVS
// -p, fwmark services) would hold per worker, not per client.
//
// persistDir is what the workers share: for every template key that some
// worker holds, the real server, and how many workers hold a template for
// it. A worker that has no template of its own for a client asks it before
// scheduling, and takes the server another worker chose (making a template
// of its own, which then lives on its own connections and timeout, as
// IPVS's one does). An entry lives while a worker holds a template for it:
// the workers report every template they make (hold) and every one their
// table lets go (release, from conntrack's OnTemplateRemove). A template
// deleted because its server is gone or quiesced (DeleteTemplatesForDest,
// which every worker runs) deletes the entry, so that no worker takes the
// server from it again.
//
// It costs a shard's lock per new connection of a persistent service, only
// with several workers: per connection, as the scheduler's own pick.
type persistDir struct {
	shards [persistShards]persistShard
}

const persistShards = 64

type persistShard struct {
	mu sync.Mutex
	m  map[conntrack.TemplateKey]persistEntry
	_  [48]byte // 64 bytes a shard: workers on different shards do not share a line
}

type persistEntry struct {
	dest    uint32 // Dest.ID
	holders int32  // workers holding a template for the key
}

func newPersistDir() *persistDir {
	d := &persistDir{}
	for i := range d.shards {
		d.shards[i].m = make(map[conntrack.TemplateKey]persistEntry)
	}
	return d
}

func (d *persistDir) shard(k *conntrack.TemplateKey) *persistShard {
	h := mixEndpoint(k.Client, k.VPort) ^ k.Service*0x9e3779b1
	return &d.shards[h%persistShards]
}

// hold records that a worker has made a template for k toward dest other
// than through pickShared (one restored or synced).
func (d *persistDir) hold(k *conntrack.TemplateKey, dest uint32) {
	s := d.shard(k)
	s.mu.Lock()
	e := s.m[*k]
	if e.holders == 0 {
		e.dest = dest
	}
	e.holders++
	s.m[*k] = e
	s.mu.Unlock()
}

// release records that a worker's template for k has left its table.
func (d *persistDir) release(k *conntrack.TemplateKey, why conntrack.TemplateRemoval) {
	s := d.shard(k)
	s.mu.Lock()
	if e, ok := s.m[*k]; ok {
		e.holders--
		if e.holders <= 0 || why == conntrack.TemplateDeleted {
			delete(s.m, *k)
		} else {
			s.m[*k] = e
		}
	}
	s.mu.Unlock()
}

// len counts the entries (tests).
func (d *persistDir) len() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// pickShared is pick's way for a client this worker has no template for,
// with several workers: the server another worker's template names, else a
// newly scheduled one that the others will then take.
func (w *worker) pickShared(svc *Service, p *packet.Parsed, tk *conntrack.TemplateKey, now int64, st *snapshot) *Dest {
	pd := w.d.persist
	s := pd.shard(tk)
	s.mu.Lock()
	e, found := s.m[*tk]
	if !found || e.holders <= 0 || !usableTemplateDest(st, e.dest) {
		dst := w.schedulerPick(svc, p, st)
		if dst == nil {
			s.mu.Unlock()
			return nil
		}
		e.dest = dst.ID
	}
	e.holders++ // this worker's template, made below
	s.m[*tk] = e
	s.mu.Unlock()
	if w.ct.InsertTemplate(tk, e.dest, svc.Persistence, now) != nil {
		pd.release(tk, conntrack.TemplateExpired)
	} else {
		w.mirrorTemplate(tk, e.dest, now+int64(svc.Persistence), st)
	}
	return st.dest(e.dest)
}

// insertTemplate makes a template of this worker's table that pick did not
// (restored, synced), and tells the other workers.
func (w *worker) insertTemplate(k *conntrack.TemplateKey, dest uint32, timeout time.Duration, now int64) error {
	if err := w.ct.InsertTemplate(k, dest, timeout, now); err != nil {
		return err
	}
	if w.d.persist != nil {
		w.d.persist.hold(k, dest)
	}
	return nil
}

// onTemplateRemove follows the templates leaving this worker's table
// (conntrack.Config.OnTemplateRemove) for the other workers.
func (w *worker) onTemplateRemove(k *conntrack.TemplateKey, why conntrack.TemplateRemoval) {
	if w.d.persist != nil {
		w.d.persist.release(k, why)
	}
}
