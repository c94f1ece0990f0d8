package conntrack

import (
	"errors"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TemplateKey identifies a persistence template (ipvsadm -p, -M): one per
// client network and virtual service.
type TemplateKey struct {
	Client  inet.Addr // client address, already masked with the persistence netmask
	VIP     inet.Addr
	VPort   uint16 // 0 for port-0 (all ports) services
	Proto   lvs.Proto
	Service uint32
}

// TemplateRemoval says why a template left the table (Config.OnTemplateRemove).
type TemplateRemoval uint8

const (
	// TemplateExpired: its timeout passed with no connection left.
	TemplateExpired TemplateRemoval = iota + 1
	// TemplateReplaced: InsertTemplate put a new one in its place.
	TemplateReplaced
	// TemplateDeleted: DeleteTemplate or DeleteTemplatesForDest (its
	// server is gone or quiesced).
	TemplateDeleted
)

func (r TemplateRemoval) String() string {
	switch r {
	case TemplateExpired:
		return "expired"
	case TemplateReplaced:
		return "replaced"
	case TemplateDeleted:
		return "deleted"
	}
	return "unknown"
}

// tmplEntry is a template in the template slab. Like Conn, it holds no
// pointers.
type tmplEntry struct {
	key      TemplateKey
	dest     uint32
	conns    uint32 // connections bound to it
	gen      uint32 // bumped when the slot is freed, so stale bindings are ignored
	nextFree uint32
	timeout  int64
	expires  int64
	live     bool
}

// alive: a template lives while connections use it, and for its timeout
// after its last use or its last connection's end, whichever is later.
func (e *tmplEntry) alive(now int64) bool {
	return e.live && (e.conns > 0 || e.expires > now)
}

// tmplTable is the persistence template store: a slab and an index like the
// connection table's, much smaller.
type tmplTable struct {
	slab     []tmplEntry
	idx      index
	freeHead uint32
	n        int
	hand     int
}

func newTmplTable(capacity int) tmplTable {
	tt := tmplTable{slab: make([]tmplEntry, capacity), idx: newIndex(capacity)}
	for i := range tt.slab {
		if i+1 < capacity {
			tt.slab[i].nextFree = uint32(i + 2)
		}
	}
	tt.freeHead = 1
	return tt
}

// ErrBadTimeout is returned by InsertTemplate for a timeout that is not
// positive.
var ErrBadTimeout = errors.New("persistence timeout must be positive")

func (t *Table) findTemplate(k *TemplateKey) (slot uint32, ok bool) {
	tt := &t.tmpl
	p := tt.idx.start(hashTemplate(&t.seed, k))
	for {
		r, ok := tt.idx.next(&p)
		if !ok {
			return 0, false
		}
		if tt.slab[r-1].key == *k {
			return r - 1, true
		}
	}
}

// LookupTemplate returns the real server of the live template for k. A hit
// counts as a use: the template's timeout starts again, as IPVS re-arms a
// template's timer each time it places a connection with it.
func (t *Table) LookupTemplate(k *TemplateKey, now int64) (dest uint32, ok bool) {
	t.now = now
	slot, found := t.findTemplate(k)
	if !found {
		return 0, false
	}
	e := &t.tmpl.slab[slot]
	if !e.alive(now) {
		return 0, false
	}
	e.expires = max(e.expires, now+e.timeout)
	return e.dest, true
}

// InsertTemplate creates the template for k, sending k's clients to dest for
// timeout. An existing template for k (e.g. one whose server became
// unavailable) is replaced; connections bound to the old one stay but no
// longer keep the new one alive. ErrFull when the template store is full.
func (t *Table) InsertTemplate(k *TemplateKey, dest uint32, timeout time.Duration, now int64) error {
	t.now = now
	if timeout <= 0 {
		return ErrBadTimeout
	}
	tt := &t.tmpl
	if slot, found := t.findTemplate(k); found {
		t.removeTemplate(slot, TemplateReplaced)
	}
	if tt.freeHead == 0 {
		t.stats.TemplatesFull++
		return ErrFull
	}
	slot := tt.freeHead - 1
	e := &tt.slab[slot]
	tt.freeHead = e.nextFree
	*e = tmplEntry{
		key:     *k,
		dest:    dest,
		gen:     e.gen,
		timeout: int64(timeout),
		expires: now + int64(timeout),
		live:    true,
	}
	tt.idx.insert(hashTemplate(&t.seed, k), slot+1)
	tt.n++
	return nil
}

// BindTemplate makes c (from this table) count as a connection of the
// template for k, which then stays alive at least as long as c. It reports
// whether the template was found; a connection bound elsewhere is moved.
func (t *Table) BindTemplate(c *Conn, k *TemplateKey) bool {
	if !t.owns(c) {
		return false
	}
	slot, found := t.findTemplate(k)
	if !found {
		return false
	}
	if c.tmpl != 0 {
		t.tmpl.unbind(c.tmpl-1, c.tmplGen, t.now)
	}
	e := &t.tmpl.slab[slot]
	e.conns++
	c.tmpl, c.tmplGen = slot+1, e.gen
	c.Flags |= FlagPersistent
	return true
}

// unbind drops one connection from a template, if the binding is current.
func (tt *tmplTable) unbind(slot, gen uint32, now int64) {
	e := &tt.slab[slot]
	if !e.live || e.gen != gen || e.conns == 0 {
		return
	}
	e.conns--
	if e.conns == 0 {
		e.expires = max(e.expires, now+e.timeout)
	}
}

func (t *Table) removeTemplate(slot uint32, why TemplateRemoval) {
	tt := &t.tmpl
	e := &tt.slab[slot]
	if t.onTmpl != nil {
		t.onTmpl(&e.key, why)
	}
	tt.idx.remove(hashTemplate(&t.seed, &e.key), slot+1)
	*e = tmplEntry{gen: e.gen + 1, nextFree: tt.freeHead}
	tt.freeHead = slot + 1
	tt.n--
}

// DeleteTemplate removes the template for k and reports whether there was
// one (e.g. when its server is no longer available, IPVS's
// ip_vs_check_template).
func (t *Table) DeleteTemplate(k *TemplateKey) bool {
	slot, found := t.findTemplate(k)
	if found {
		t.removeTemplate(slot, TemplateDeleted)
	}
	return found
}

// DeleteTemplatesForDest removes every template pointing at dest (a real
// server being removed) and returns how many there were. O(template
// capacity): a control-plane operation.
func (t *Table) DeleteTemplatesForDest(dest uint32) int {
	n := 0
	for i := range t.tmpl.slab {
		if e := &t.tmpl.slab[i]; e.live && e.dest == dest {
			t.removeTemplate(uint32(i), TemplateDeleted)
			n++
		}
	}
	return n
}

// WalkTemplates calls fn for every template, expired ones not yet reclaimed
// included, until fn returns false. fn must not change the table.
func (t *Table) WalkTemplates(fn func(k *TemplateKey, dest uint32, expires int64, conns int) bool) {
	for i := range t.tmpl.slab {
		if e := &t.tmpl.slab[i]; e.live {
			if !fn(&e.key, e.dest, e.expires, int(e.conns)) {
				return
			}
		}
	}
}

// TemplateLen is the number of templates held.
func (t *Table) TemplateLen() int { return t.tmpl.n }

// TemplateCap is the template capacity.
func (t *Table) TemplateCap() int { return len(t.tmpl.slab) }

// expireTemplates advances the template hand over budget slots.
func (t *Table) expireTemplates(now int64, budget int) int {
	tt := &t.tmpl
	budget = min(budget, len(tt.slab))
	removed := 0
	for range budget {
		slot := tt.hand
		if tt.hand++; tt.hand == len(tt.slab) {
			tt.hand = 0
		}
		if e := &tt.slab[slot]; e.live && !e.alive(now) {
			t.removeTemplate(uint32(slot), TemplateExpired)
			t.stats.TemplateExpired++
			removed++
		}
	}
	return removed
}
