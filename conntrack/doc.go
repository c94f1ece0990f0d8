// Package conntrack is the director's connection table: IPVS's TCP state
// machine and timeouts, persistence templates, bounded memory, and one owner
// per connection.
//
// # One owner per connection
//
// Every worker goroutine (one per RX queue) has its own Table and is the only
// goroutine that ever touches it: packets, expiry, listings (ipvsadm -Lc) and
// timeout changes all run on the worker, the latter two as requests it
// serves between batches. A Table therefore has no lock and no atomic on the
// per-packet path. The dataplane makes sure that both directions of a
// connection reach the worker that created it, so that no connection is
// ever looked up in a table it does not live in; the table only demands
// that its owner serialises every call.
//
// How the dataplane does it (dataplane/handoff.go): the owner of a
// connection is hash(client address, client port) % workers — the source of
// a request and the destination of a NAT reply — and for full-NAT replies
// the local port, which the owner allocates so that lport % workers names
// it. AF_XDP cannot redirect a frame to another queue's socket, so a worker
// that receives a frame it does not own passes the descriptor to the owner
// over a lock-free single-producer ring; all sockets share one UMEM, so the
// owner transmits the same frame without a copy. The only shared effects are the
// OnState callbacks, which the dataplane turns into atomic updates of its
// real servers' active/inactive counters.
//
// # Layout
//
// Connections live by value in a slab, a []Conn of Capacity entries
// allocated by New; free slots form an intrusive free list, so Insert and
// Delete are O(1) and never allocate. An open-addressing hash index of
// uint64 cells (a 32-bit hash tag and a 31-bit slot number plus a direction
// bit) points into the slab: one cell for the original tuple and one for the
// reply tuple of each NAT or full-NAT connection (DR and TUN need only the
// first), so one probe answers "which connection, which direction" for any
// packet. The index has 2*Capacity*8/7 cells rounded up to a power of two
// (at most 7/8 full, usually half). It uses linear probing with Robin Hood
// placement and backward-shift deletion: no tombstones, so churn never
// lengthens probes and the index never needs a rebuild. The tuple hash is a
// multiply-fold (wyhash-style) hash keyed with a per-table random seed, so
// remote clients cannot aim collisions at a table.
//
// Memory is allocated up front and never grows: per connection of capacity,
// 144 bytes of slab, 18 to 37 bytes of index (32 at 1M and 4M), and with the
// default template capacity (Capacity/4) 24 bytes of templates: 200 bytes
// in all at 1M and 4M, so the footprint is known when the daemon starts.
// (The dataplane keeps 28 more per slot: how a connection is forwarded.)
// Untouched slab pages are not even resident until connections use them.
// Large slabs and indexes are advised for transparent huge pages (Linux), so
// that a random lookup does not also pay for page-table walks.
//
// # Why the garbage collector does not care
//
// Conn, the template entry and the index cells contain no pointers, so the
// slab and index are allocated as "noscan" memory: the collector never
// looks inside them, however many million connections they hold. Compared
// with a map of *Conn, there are no per-connection objects to allocate, mark
// or free, and GC cost does not grow with the connection count (see
// BenchmarkGCPause4M).
//
// # Expiry
//
// Every connection has an absolute deadline (Expires, monotonic
// nanoseconds) set from the timeout of its state each time Track sees a
// packet. There is no timer or goroutine per connection: Lookup treats an
// entry past its deadline as absent (and Insert reclaims such an entry when
// it finds it in the way), and Expire advances a clock hand over the slab,
// budget slots per call, removing what has expired. The worker calls Expire
// between batches with a budget that sweeps the whole slab every second or
// so; removal reports StateAbsent through OnState and the connection through
// OnRemove. Persistence templates are swept by a second hand at the same
// pace.
//
// # Capacity and SYN floods
//
// Capacity is fixed at New: a SYN flood cannot make the table grow or cost
// more per packet. What a flood creates is half-open connections (SYN_RECV,
// SYN_SENT, SYNACK: State.HalfOpen), and the table gives those up first, so
// that a flood never locks anyone out. IPVS's drop_entry and secure_tcp
// defences (ip_vs_ctl.c, ip_vs_proto_tcp.c) are the reference, with two
// differences: the victim is the oldest half-open connection rather than a
// random entry of a slice of the hash table, and a connection past its
// handshake is never dropped, however idle. Two mechanisms:
//
//   - Eviction. When Insert finds the table full, it evicts the oldest
//     half-open connection (OnState, OnRemove, Stats.EvictedHalfOpen) and
//     takes its slot. "Oldest" is the one that entered a half-open state
//     first: the half-open connections form a FIFO list threaded through
//     the slab (two uint32 links in Conn), joined at the tail on entering a
//     half-open state, kept while moving between them, left on leaving them
//     or the table. Eviction is O(1) and allocation-free, and the list is
//     exact (no stale entries, nothing to overflow or compact; halfopen.go
//     says why not a ring). A legitimate handshake completes within a round
//     trip, so it is the youngest entry while a flood's entries age at the
//     head. Nothing else is ever evicted: a table full of connections past
//     their handshake refuses new connections with ErrFull (Stats.Refused)
//     in O(1), before any hashing, and established connections, which
//     already live in the table, never lose a packet to a flood.
//   - Shorter half-open timeouts under pressure. The table is under
//     pressure (UnderPressure) while it is at least 3/4 full or more than
//     1/8 of its capacity (and more than 16 connections) is half-open;
//     then a connection entering or refreshed in a half-open state (Insert,
//     Track, Touch, Restore) gets at most Config.PressureTimeout
//     (DefaultPressureTimeout, 3 s, instead of SYN_RECV's 60 s), on the
//     model of the shorter timeouts IPVS used under attack (its 2.4
//     secure_tcp timeout table: SYN_RECV 10 s). A flood's entries then
//     leave a few seconds after it ends, not a minute. Entries made before the
//     pressure began keep their deadline, but they are the oldest, so the
//     first to be evicted.
//
// HalfOpen counts the half-open connections exactly, kept up to date by
// every state change and removal, for the dataplane's decision to answer
// SYNs with cookies instead.
//
// # States
//
// TCP follows IPVS's tcp_states tables (ip_vs_proto_tcp.c): NAT and
// full-NAT use the input and output tables, DR and TUN the input-only table
// (they never see the server's packets). Active/inactive accounting follows
// current kernels: ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK count as
// active, the other TCP states and all UDP and ICMP connections as inactive.
// A new SYN on a finished connection is reported by Reusable so that the
// dataplane replaces the connection at once instead of dropping the SYN.
package conntrack
