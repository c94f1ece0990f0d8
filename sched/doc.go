// Package sched holds the connection schedulers: every IPVS scheduler (rr,
// wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos) behind one
// Scheduler interface, registered by name so that a new scheduler is one file
// whose init calls Register.
//
// A scheduler is asked once per new connection (never per packet) and reads the
// live per-destination connection counts that the connection table keeps in
// each Dest. Weight 0 makes a destination quiescent; the upper and lower
// connection thresholds mark it overloaded, as ipvsadm's -x and -y do. Neither
// kind of destination gets a new connection from any scheduler, and when no
// destination can take one Pick returns nil for the data path to drop and
// count; no scheduler loops for longer than a bounded walk of its list or
// table.
//
// Each scheduler follows the kernel's net/netfilter/ipvs/ip_vs_<name>.c:
// the same formulas (overhead = active*256 + inactive, loads compared by
// cross-multiplication), the same list-order tie-breaking, the same wrr
// sequence, the same lblc/lblcr overload rule and the same sh hash. Where this
// package departs from the kernel it says so on the scheduler's type:
// dh fills its table by weight, mh uses a 65537-slot table, lblc also honours
// the threshold overload of a cached server, and lblc/lblcr caches are fixed
// tables (LRU within a bucket, lblcr sets of at most 8) so that Pick never
// allocates.
//
// Concurrency: Pick runs on several worker goroutines at once and alongside
// Update. Destination lists and hash tables are immutable snapshots swapped
// with atomic.Pointer; only rr and wrr (the round-robin position) and
// lblc/lblcr (one of 1024 cache buckets) take a mutex, where IPVS takes its
// sched_lock. Every hash is a fixed function of the config and the key (no
// map order, no random seed), so directors with the same config build the
// same tables; the Dest order given to Update is the config order. Only twos
// draws random numbers, as its kernel counterpart does.
package sched
