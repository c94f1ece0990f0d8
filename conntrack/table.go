package conntrack

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Tuple identifies one direction of a connection as its packets carry it.
// It is comparable and holds no pointers.
type Tuple struct {
	Src, Dst         inet.Addr
	SrcPort, DstPort uint16
	Proto            lvs.Proto
}

// Connection flags kept by the table in Conn.Flags.
const (
	// FlagNoOutput: no reply-direction packet has been seen; TCP uses IPVS's
	// input-only table. Set by Insert for DR and TUN, cleared by the first
	// DirReply packet (IPVS's IP_VS_CONN_F_NOOUTPUT).
	FlagNoOutput uint8 = 1 << 0
	// FlagPersistent: the connection is bound to a persistence template.
	FlagPersistent uint8 = 1 << 1
)

// Conn is one connection. It lives by value in the table's slab and holds no
// pointers, so the garbage collector never scans the slab. A *Conn from
// Lookup or Insert stays valid until the next Insert, Delete, Expire or
// Flush; the fields marked below must not be changed while it is in the
// table. A Conn holds what the table needs and nothing of how packets are
// forwarded: the data path keeps that per slot, in arrays of its own
// indexed by Slot.
type Conn struct {
	Orig  Tuple // request tuple as received (CIP:cport -> VIP:vport); do not change
	Reply Tuple // reply tuple as received (RIP:rport -> CIP:cport for NAT, -> LIP:lport for full-NAT); zero for DR/TUN; do not change

	Service, Dest uint32 // indices owned by the dataplane; Dest must not change (class counts follow it)
	Fwd           lvs.Fwd
	State         State // set by Insert, Track and Restore; do not change
	Flags         uint8 // FlagNoOutput, FlagPersistent; the table's
	Expires       int64 // monotonic nanoseconds; set by Insert and Track

	LAddr inet.Addr // full-NAT local address (Reply's destination)
	LPort uint16    // full-NAT local port

	// Table-private fields.
	slot           uint32 // own position in the slab
	tmpl           uint32 // live: persistence template slot + 1 (0 = unbound); free: next free slot + 1
	tmplGen        uint32 // generation of that template slot when bound
	hoPrev, hoNext uint32 // half-open list (halfopen.go): neighbours' slot + 1, 0 = none
	bits           uint8  // bitLive, bitHasReply, bitHalfOpen
}

const (
	bitLive     uint8 = 1 << 0 // the slot holds a connection
	bitHasReply uint8 = 1 << 1 // Reply is in the index
	bitHalfOpen uint8 = 1 << 2 // in the half-open list
)

func (c *Conn) live() bool { return c.bits&bitLive != 0 }

// ErrFull is returned by Insert (and InsertTemplate) when the table is at
// capacity and, for Insert, holds no half-open connection to evict: the new
// connection is refused, existing ones keep working.
var ErrFull = errors.New("connection table full")

// ErrExists is returned by Insert when a live connection already owns the
// original or reply tuple.
var ErrExists = errors.New("connection tuple already in table")

const (
	// DefaultCapacity is used when Config.Capacity is 0 or negative.
	DefaultCapacity = 1 << 20
	// MaxCapacity bounds Config.Capacity (index refs are 31-bit).
	MaxCapacity = 1 << 30
)

// Config configures a Table.
type Config struct {
	// Capacity is the most connections the table holds (DefaultCapacity
	// when <= 0, at most MaxCapacity). All memory is allocated by New.
	Capacity int
	// TemplateCapacity is the most persistence templates (default
	// Capacity/4, at least 16).
	TemplateCapacity int
	// Timeouts per state; zero fields take DefaultTimeouts.
	Timeouts Timeouts
	// PressureTimeout caps the timeout of a connection entering or
	// refreshed in a half-open state (SYN_RECV, SYN_SENT, SYNACK) while the
	// table is under pressure (UnderPressure); DefaultPressureTimeout when
	// 0, never capped when negative.
	PressureTimeout time.Duration
	// OnState reports every change of a connection's state, with its
	// destination, so that the owner can keep per-destination counts
	// (the dataplane's active and inactive connections): StateAbsent ->
	// state on Insert, state -> state on Track and Restore, state ->
	// StateAbsent on removal. Never from == to. Optional.
	OnState func(dest uint32, from, to State)
	// OnRemove is called for every connection leaving the table (Delete,
	// Expire, Flush, reclaim of an expired duplicate by Insert, or eviction
	// of the oldest half-open connection by Insert into a full table),
	// before its slot is reused. Optional.
	//
	// Callbacks run on the owner's goroutine inside table calls and must not
	// call back into the table.
	OnRemove func(c *Conn)
	// OnTemplateRemove is called for every persistence template leaving
	// the table, with the reason, before its slot is reused (so that an
	// owner sharing templates with other tables can follow). Optional;
	// the same rules as OnRemove.
	OnTemplateRemove func(k *TemplateKey, why TemplateRemoval)
	// LastSeen, when set, is asked about a connection whose timeout has
	// passed before the table treats it as gone (Lookup, Expire, the
	// reclaim in Insert): it returns the latest time, on the table's clock,
	// at which a packet of c was forwarded without passing through the
	// table (the XDP fast path), or 0. If that time plus the state's
	// timeout is still ahead, the connection lives on with that expiry.
	LastSeen func(c *Conn) int64
}

// Stats are counters kept by a table (owner-only, like everything else).
type Stats struct {
	Inserted        uint64 // connections added
	Refused         uint64 // Insert refused with ErrFull
	EvictedHalfOpen uint64 // half-open connections removed by Insert to make room
	Duplicates      uint64 // Insert refused with ErrExists
	Expired         uint64 // connections removed by Expire or reclaimed by Insert
	Revived         uint64 // timeouts extended because LastSeen reported later packets
	Deleted         uint64 // connections removed by Delete or Flush
	TemplatesFull   uint64 // InsertTemplate refused with ErrFull
	TemplateExpired uint64 // templates removed by Expire
}

// Table is a bounded connection table. It is not safe for concurrent use:
// one worker goroutine owns it and makes every call, listings included, so
// the per-packet path takes no lock. See the package documentation.
type Table struct {
	slab     []Conn
	idx      index
	freeHead uint32 // slot + 1 of the first free slot; 0 when full
	n        int
	hand     int // Expire's clock hand over the slab

	// Half-open connections (halfopen.go): the list's ends (slot + 1, 0 =
	// empty), its length, and when the table is under pressure.
	hoHead, hoTail   uint32
	halfOpen         int
	pressureLen      int   // under pressure at this many connections
	pressureHalfOpen int   // or above this many half-open ones
	pressureTimeout  int64 // the half-open timeout cap under pressure

	timeout  [numStates]int64
	seed     hashSeed
	now      int64 // latest clock seen, for calls that take none
	onState  func(dest uint32, from, to State)
	onRemove func(c *Conn)
	onTmpl   func(k *TemplateKey, why TemplateRemoval)
	lastSeen func(c *Conn) int64

	tmpl tmplTable

	stats Stats
}

// New allocates a table and everything it will ever use.
func New(cfg Config) *Table {
	capacity := cfg.Capacity
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if capacity > MaxCapacity {
		capacity = MaxCapacity
	}
	tcap := cfg.TemplateCapacity
	if tcap <= 0 {
		tcap = max(capacity/4, 16)
	}
	if tcap > MaxCapacity {
		tcap = MaxCapacity
	}
	t := &Table{
		slab:     make([]Conn, capacity),
		idx:      newIndex(2 * capacity),
		timeout:  cfg.Timeouts.table(),
		onState:  cfg.OnState,
		onRemove: cfg.OnRemove,
		onTmpl:   cfg.OnTemplateRemove,
		lastSeen: cfg.LastSeen,
		tmpl:     newTmplTable(tcap),

		pressureLen:      capacity - capacity*(pressureFillDen-pressureFillNum)/pressureFillDen,
		pressureHalfOpen: max(capacity/pressureHalfOpenDiv, pressureHalfOpenMin),
		pressureTimeout:  int64(cfg.PressureTimeout),
	}
	switch {
	case cfg.PressureTimeout == 0:
		t.pressureTimeout = int64(DefaultPressureTimeout)
	case cfg.PressureTimeout < 0:
		t.pressureTimeout = math.MaxInt64
	}
	adviseHugePages(t.slab)
	adviseHugePages(t.idx.cells)
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	// Free list in slot order, so a young table fills the slab front to back.
	for i := range t.slab {
		t.slab[i].slot = uint32(i)
		if i+1 < capacity {
			t.slab[i].tmpl = uint32(i + 2)
		}
	}
	t.freeHead = 1
	return t
}

// Len is the number of connections in the table, expired ones not yet
// reclaimed included.
func (t *Table) Len() int { return t.n }

// Cap is the capacity: Slot is below it.
func (t *Table) Cap() int { return len(t.slab) }

// Slot returns the position of c, a connection of this table, in the slab:
// stable while c is in the table, and below Cap. The data path keeps what
// it needs per connection in arrays indexed by it; a slot is reused after
// its connection leaves, so an Insert must overwrite what the previous one
// left there.
func (t *Table) Slot(c *Conn) int { return int(c.slot) }

// Stats returns the table's counters.
func (t *Table) Stats() Stats { return t.stats }

// SetTimeouts replaces the per-state timeouts; they apply from the next
// refresh of each connection (Insert, Track), as in IPVS.
func (t *Table) SetTimeouts(to Timeouts) { t.timeout = to.table() }

// Timeouts returns the timeouts in effect.
func (t *Table) Timeouts() Timeouts {
	var to Timeouts
	for s := State(0); int(s) < numStates; s++ {
		*to.field(s) = time.Duration(t.timeout[s])
	}
	return to
}

// ref packs a slot and a direction into an index ref (never 0).
func ref(slot uint32, dir Direction) uint32 { return (slot<<1 | uint32(dir)) + 1 }

// Lookup finds the connection a packet with tuple k belongs to, in either
// direction. Expired connections are not returned. O(1); no allocation.
func (t *Table) Lookup(k *Tuple, now int64) (c *Conn, dir Direction, ok bool) {
	t.now = now
	c, dir = t.find(k, hashTuple(&t.seed, k))
	if c == nil || (c.Expires <= now && !t.revive(c, now)) {
		return nil, 0, false
	}
	return c, dir, true
}

// revive extends the life of c, whose timeout has passed by now, when
// packets of it were seen elsewhere since (Config.LastSeen). It reports
// whether c lives on.
func (t *Table) revive(c *Conn, now int64) bool {
	if t.lastSeen == nil {
		return false
	}
	t.Touch(c, t.lastSeen(c))
	if c.Expires <= now {
		return false
	}
	t.stats.Revived++
	return true
}

// find returns the entry for k (whose hash is h), expired or not.
func (t *Table) find(k *Tuple, h uint32) (*Conn, Direction) {
	p := t.idx.start(h)
	for {
		r, ok := t.idx.next(&p)
		if !ok {
			return nil, 0
		}
		r--
		c := &t.slab[r>>1]
		dir := Direction(r & 1)
		if dir == DirOriginal {
			if eqTuple(&c.Orig, k) {
				return c, DirOriginal
			}
		} else if eqTuple(&c.Reply, k) {
			return c, DirReply
		}
	}
}

// claim makes k free for a new connection: an expired owner is reclaimed,
// a live one is reported.
func (t *Table) claim(k *Tuple, h uint32, now int64) bool {
	for {
		old, _ := t.find(k, h)
		if old == nil {
			return true
		}
		if old.Expires > now || t.revive(old, now) {
			return false
		}
		t.stats.Expired++
		t.remove(old)
	}
}

// Insert copies c into the table and indexes its Orig tuple and, when
// non-zero, its Reply tuple. The connection starts in c.State (normally
// StateNone: the caller then runs Track with the first packet) with that
// state's timeout, and counts against c.Dest from now on (OnState). Its
// Flags are the table's (FlagNoOutput for DR/TUN). ErrExists when a
// live connection owns either tuple. When the table is at capacity, the
// oldest half-open connection makes room (OnState, OnRemove and
// Stats.EvictedHalfOpen, after the tuples are found free, so a duplicate
// evicts nothing); ErrFull when there is none, in O(1) before any hashing:
// a connection past its handshake is never evicted.
func (t *Table) Insert(c *Conn, now int64) (*Conn, error) {
	t.now = now
	if t.freeHead == 0 && t.halfOpen == 0 {
		t.stats.Refused++
		return nil, ErrFull
	}
	v := *c // c may even point into the slab; a reclaim below could clear it
	hasReply := v.Reply != Tuple{}
	ho := hashTuple(&t.seed, &v.Orig)
	var hr uint32
	if hasReply {
		hr = hashTuple(&t.seed, &v.Reply)
	}
	if (hasReply && v.Reply == v.Orig) ||
		!t.claim(&v.Orig, ho, now) || (hasReply && !t.claim(&v.Reply, hr, now)) {
		t.stats.Duplicates++
		return nil, ErrExists
	}
	// The claims only ever free slots; still full means none was reclaimed.
	if t.freeHead == 0 && !t.evictHalfOpen() {
		t.stats.Refused++
		return nil, ErrFull
	}
	slot := t.freeHead - 1
	n := &t.slab[slot]
	t.freeHead = n.tmpl
	*n = v
	n.slot = slot
	n.tmpl, n.tmplGen = 0, 0
	n.hoPrev, n.hoNext = 0, 0
	n.bits = bitLive
	if hasReply {
		n.bits |= bitHasReply
	}
	n.Flags = 0
	if n.Fwd.InputOnly() {
		n.Flags |= FlagNoOutput
	}
	if int(n.State) >= numStates {
		n.State = StateNone
	}
	t.idx.insert(ho, ref(slot, DirOriginal))
	if hasReply {
		t.idx.insert(hr, ref(slot, DirReply))
	}
	t.n++
	if n.State.HalfOpen() {
		t.hoPush(n)
	}
	n.Expires = now + t.timeoutOf(n.State)
	t.stats.Inserted++
	if t.onState != nil {
		t.onState(n.Dest, StateAbsent, n.State)
	}
	return n, nil
}

// Track applies one packet of the connection to its state and refreshes its
// timeout. TCP follows IPVS's state tables: the input and output tables
// while replies are seen (NAT, full-NAT), the input-only table while
// FlagNoOutput is set (DR, TUN). UDP, ICMP and other protocols have a single
// state. tcpFlags is the TCP header's flags byte (ignored for other
// protocols). A state change is reported through OnState.
func (t *Table) Track(c *Conn, dir Direction, tcpFlags lvs.TCPFlags, now int64) {
	t.now = now
	if !c.live() {
		return // deleted or expired since it was looked up: nothing to count
	}
	var next State
	switch c.Orig.Proto {
	case lvs.ProtoTCP:
		mode := modeInput
		if dir == DirReply {
			mode = modeOutput
			c.Flags &^= FlagNoOutput
		} else if c.Flags&FlagNoOutput != 0 {
			mode = modeInputOnly
		}
		next = nextTCPState(mode, c.State, tcpFlags)
	case lvs.ProtoICMP, lvs.ProtoICMPv6:
		next = StateICMP
	default:
		next = StateUDP
	}
	if next != c.State {
		t.setState(c, next)
	}
	c.Expires = now + t.timeoutOf(next)
}

// Reusable reports whether a packet on connection c opens a new connection
// that replaces it: a TCP SYN without ACK (and without RST) from the client
// on a connection in TIME_WAIT or CLOSE, or in FIN_WAIT while no reply has
// been seen (DR/TUN, where FIN_WAIT is where a connection closed by the
// client ends up: IPVS's conn_reuse_mode bit 2). The caller then Deletes c
// and schedules the packet afresh at once; the SYN is never dropped (IPVS's
// one-second drop of conn_reuse_mode does not exist here, as no netfilter
// conntrack entry has to die first). Unlike IPVS, connections bound to a
// persistence template are reusable too: the template outlives the Delete,
// so the new connection goes to the same real server anyway.
func (t *Table) Reusable(c *Conn, dir Direction, tcpFlags lvs.TCPFlags) bool {
	if dir != DirOriginal || c.Orig.Proto != lvs.ProtoTCP || !tcpFlags.IsSYN() {
		return false
	}
	switch c.State {
	case StateTimeWait, StateClose:
		return true
	case StateFinWait:
		return c.Flags&FlagNoOutput != 0
	}
	return false
}

// Delete removes c, which must come from this table's Lookup or Insert (a
// pointer to anything else is ignored). OnState and OnRemove are called.
func (t *Table) Delete(c *Conn) {
	if !t.owns(c) {
		return
	}
	t.stats.Deleted++
	t.remove(c)
}

func (t *Table) owns(c *Conn) bool {
	return c != nil && int(c.slot) < len(t.slab) && &t.slab[c.slot] == c && c.live()
}

// remove unindexes c, reports it and returns its slot to the free list.
func (t *Table) remove(c *Conn) {
	t.idx.remove(hashTuple(&t.seed, &c.Orig), ref(c.slot, DirOriginal))
	if c.bits&bitHasReply != 0 {
		t.idx.remove(hashTuple(&t.seed, &c.Reply), ref(c.slot, DirReply))
	}
	if c.tmpl != 0 {
		t.tmpl.unbind(c.tmpl-1, c.tmplGen, t.now)
	}
	if c.bits&bitHalfOpen != 0 {
		t.hoUnlink(c)
	}
	if t.onState != nil {
		t.onState(c.Dest, c.State, StateAbsent)
	}
	if t.onRemove != nil {
		t.onRemove(c)
	}
	slot := c.slot
	*c = Conn{slot: slot, tmpl: t.freeHead}
	t.freeHead = slot + 1
	t.n--
}

// Expire advances the clock hand over budget slab slots, removing the
// connections that expired by now (OnState to StateAbsent, then OnRemove), and
// the template hand over a proportional share of the template slots. A full
// sweep takes Cap()/budget calls. It returns the number of connections and
// templates removed.
func (t *Table) Expire(now int64, budget int) int {
	t.now = now
	if budget <= 0 {
		return 0
	}
	budget = min(budget, len(t.slab))
	removed := 0
	for range budget {
		c := &t.slab[t.hand]
		if t.hand++; t.hand == len(t.slab) {
			t.hand = 0
		}
		// Expires first: for the usual live, unexpired slot that is the only
		// cache line read.
		if c.Expires <= now && c.live() && !t.revive(c, now) {
			t.stats.Expired++
			t.remove(c)
			removed++
		}
	}
	// Templates: the same fraction of their table, rounded up.
	tb := (budget*len(t.tmpl.slab) + len(t.slab) - 1) / len(t.slab)
	removed += t.expireTemplates(now, tb)
	return removed
}

// Flush removes every connection, with callbacks, and every persistence
// template (ipvsadm -C).
func (t *Table) Flush() {
	for i := range t.slab {
		if c := &t.slab[i]; c.live() {
			t.stats.Deleted++
			t.remove(c)
		}
	}
	for i := range t.tmpl.slab {
		if t.tmpl.slab[i].live {
			t.removeTemplate(uint32(i), TemplateDeleted)
		}
	}
}

// Walk calls fn for every connection in slab order, expired ones not yet
// reclaimed included (compare Expires with the clock), until fn returns
// false. fn may Delete the connection it is given (to drop the connections
// of a removed server, say) but must not Insert.
func (t *Table) Walk(fn func(c *Conn) bool) {
	for i := range t.slab {
		if c := &t.slab[i]; c.live() {
			if !fn(c) {
				return
			}
		}
	}
}

// WalkSlots calls fn for the connections in the n slots from slot from on
// (wrapping at the end; expired ones not yet reclaimed included), at most
// one pass, and returns the slot after the last one visited: where the next
// call goes on. A periodic job over a large table takes it a slice at a
// time, so that no call holds its caller for a whole walk. fn may Delete
// the connection it is given but must not Insert.
func (t *Table) WalkSlots(from, n int, fn func(c *Conn)) int {
	size := len(t.slab)
	if size == 0 {
		return 0
	}
	i := from % size
	if i < 0 {
		i = 0
	}
	for range min(n, size) {
		if c := &t.slab[i]; c.live() {
			fn(c)
		}
		if i++; i == size {
			i = 0
		}
	}
	return i
}

// Restore puts a connection in the state and expiry another director
// reported (connection synchronisation), keeping the class counts and the
// half-open count exact. While the pressure shortens a half-open state's
// timeout, the expiry is capped as a refresh would cap it (the short
// timeout on the table's latest clock).
func (t *Table) Restore(c *Conn, s State, expires int64) {
	if !c.live() || int(s) >= numStates {
		return
	}
	t.setState(c, s)
	if d := t.timeoutOf(s); d < t.timeout[s] {
		expires = min(expires, t.now+d)
	}
	c.Expires = expires
}

// Touch refreshes c's expiry as a packet seen at time seen would (without
// changing its state): the XDP fast path forwards packets the table never
// sees. An earlier time than the last refresh changes nothing.
func (t *Table) Touch(c *Conn, seen int64) {
	if !c.live() || seen <= 0 {
		return
	}
	if exp := seen + t.timeoutOf(c.State); exp > c.Expires {
		c.Expires = exp
	}
}

// Timeout returns the configured idle timeout of state s (under pressure,
// half-open states get less: UnderPressure).
func (t *Table) Timeout(s State) time.Duration {
	if int(s) >= numStates {
		return 0
	}
	return time.Duration(t.timeout[s])
}
