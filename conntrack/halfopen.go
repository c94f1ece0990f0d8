package conntrack

import "time"

// Half-open connections are those whose TCP handshake has not completed:
// SYN_RECV, SYN_SENT and SYNACK. A SYN flood creates nothing else, so they
// are what the table gives up first when it runs out of room, and what it
// forgets sooner while it is under pressure (see the package documentation,
// "Capacity and SYN floods").

// halfOpenStates has bit s set for every half-open state s.
const halfOpenStates uint32 = 1<<StateSynSent | 1<<StateSynRecv | 1<<StateSynAck

// HalfOpen reports whether s is a half-open TCP state: SYN_RECV, SYN_SENT or
// SYNACK.
func (s State) HalfOpen() bool { return halfOpenStates>>s&1 != 0 }

// DefaultPressureTimeout is the longest timeout a connection in a half-open
// state gets while the table is under pressure (Config.PressureTimeout).
// A legitimate handshake completes within a round trip, and a client that
// lost its SYN-ACK retransmits its SYN after 1 s and again 2 s later,
// refreshing the entry each time; a spoofed SYN is never followed by
// anything. IPVS's secure_tcp defence (the timeout table of its 2.4
// version: 10 s for SYN_RECV instead of 60 s) is the model; 3 s is shorter
// because here nothing but the table's room is at stake.
const DefaultPressureTimeout = 3 * time.Second

// The table is under pressure while either holds (UnderPressure):
//
//   - it is at least pressureFillNum/pressureFillDen full, whatever its
//     connections are: room is running out, and half-open entries are the
//     ones that can go;
//   - more than 1/pressureHalfOpenDiv of its capacity (and more than
//     pressureHalfOpenMin connections) is half-open: legitimate handshakes hold about
//     rate × round-trip time entries (a 1M table reaches 1/8 only at 1.3M
//     new connections per second with a 100 ms RTT), so this is a flood,
//     and shortening early keeps the long default timeout off most of it.
//     The minimum keeps tiny tables (tests) from counting a single
//     handshake as a flood.
const (
	pressureFillNum     = 3
	pressureFillDen     = 4
	pressureHalfOpenDiv = 8
	pressureHalfOpenMin = 16
)

// The half-open connections form a FIFO: a doubly linked list threaded
// through the slab (Conn.hoPrev/hoNext, slot + 1, 0 = none), in the order in
// which they entered a half-open state. A connection joins at the tail when
// it enters one (Insert, Track, Restore), keeps its place while it moves
// between half-open states (SYN_RECV -> SYNACK), and leaves when it leaves
// them or the table; the head is the oldest, which Insert evicts when the
// table is full.
//
// Why the order of entry and not of the latest packet: a refresh does not
// move a connection back, so a flooder that keeps retransmitting SYNs on
// its tuples cannot keep them young, while a legitimate handshake is over
// within a round trip, long before it nears the head. (A client whose
// entry was evicted anyway retransmits its SYN, which finds no entry and
// starts a new connection.) It also keeps packets of half-open connections
// from writing to the list at all.
//
// Why a list and not a ring of (slot, generation) entries with stale
// entries skipped on pop: the list is exact and O(1) in the worst case, not
// amortised, never holds a stale entry, so it can neither overflow nor lose
// the true oldest, and it needs no compaction pass. It costs 8 bytes per
// connection (the ring would cost at least as much per slot, twice that
// if sized for amortised compaction, plus a generation in Conn), and unlinking a connection whose handshake completes writes its
// two neighbours, which entered the list around the same time and are
// usually still in cache.

// hoPush appends c (live, not in the list) at the tail.
func (t *Table) hoPush(c *Conn) {
	self := c.slot + 1
	c.hoPrev, c.hoNext = t.hoTail, 0
	if t.hoTail != 0 {
		t.slab[t.hoTail-1].hoNext = self
	} else {
		t.hoHead = self
	}
	t.hoTail = self
	c.bits |= bitHalfOpen
	t.halfOpen++
}

// hoUnlink takes c (in the list) out of it.
func (t *Table) hoUnlink(c *Conn) {
	if c.hoPrev != 0 {
		t.slab[c.hoPrev-1].hoNext = c.hoNext
	} else {
		t.hoHead = c.hoNext
	}
	if c.hoNext != 0 {
		t.slab[c.hoNext-1].hoPrev = c.hoPrev
	} else {
		t.hoTail = c.hoPrev
	}
	c.hoPrev, c.hoNext = 0, 0
	c.bits &^= bitHalfOpen
	t.halfOpen--
}

// setState moves a live connection to state s, keeping the class counts
// (OnState) and the half-open list exact.
func (t *Table) setState(c *Conn, s State) {
	if s == c.State {
		return
	}
	from := c.State
	c.State = s
	// List membership follows the bit, not the old state, so a caller that
	// wrote State itself cannot corrupt the list.
	if ho := s.HalfOpen(); ho != (c.bits&bitHalfOpen != 0) {
		if ho {
			t.hoPush(c)
		} else {
			t.hoUnlink(c)
		}
	}
	if t.onState != nil {
		t.onState(c.Dest, from, s)
	}
}

// HalfOpen is the number of connections in a half-open state (SYN_RECV,
// SYN_SENT, SYNACK), expired ones not yet reclaimed included, like Len.
// Exact and O(1): the table keeps the count as connections change state.
func (t *Table) HalfOpen() int { return t.halfOpen }

// UnderPressure reports whether the table is at least 3/4 full or more
// than 1/8 of its capacity (and more than 16 connections) is half-open.
// While it is, a connection entering or refreshed in a half-open state
// gets at most Config.PressureTimeout.
func (t *Table) UnderPressure() bool {
	return t.n >= t.pressureLen || t.halfOpen > t.pressureHalfOpen
}

// timeoutOf is the timeout a connection entering or refreshed in state s
// gets now: the configured one, shortened for half-open states under
// pressure.
func (t *Table) timeoutOf(s State) int64 {
	d := t.timeout[s]
	if d > t.pressureTimeout && s.HalfOpen() && t.UnderPressure() {
		return t.pressureTimeout
	}
	return d
}

// evictHalfOpen removes the oldest half-open connection to make room, and
// reports whether there was one.
func (t *Table) evictHalfOpen() bool {
	if t.hoHead == 0 {
		return false
	}
	t.stats.EvictedHalfOpen++
	t.remove(&t.slab[t.hoHead-1])
	return true
}
