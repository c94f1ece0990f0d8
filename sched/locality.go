package sched

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/inet"
)

// The locality schedulers (lblc, lblcr) cache, per destination address, the
// server(s) that address went to. IPVS keeps that cache in a hash table of
// 1024 chains that grows with kmalloc and is trimmed by a timer; here it is a
// fixed table of 1024 buckets of localityWays entries each, allocated once,
// so that Pick never allocates. When a bucket is full the least recently
// used entry makes room, which stands in for IPVS's collection of entries
// unused for 6 minutes once the table holds more than 16 per chain.
const (
	localityTabBits = 10 // IP_VS_LBLC_TAB_BITS, IP_VS_LBLCR_TAB_BITS
	localityTabSize = 1 << localityTabBits
	localityWays    = 8
)

// localityBucketOf is the bucket of a destination address: hash_32 of the
// folded address, as ip_vs_lblcr_hashkey.
func localityBucketOf(a *inet.Addr) uint32 {
	return hash32(fold32(a), localityTabBits)
}

// localityState is an immutable destination list with a membership index, so
// that a cached server removed from the service is recognised and ignored
// (IPVS checks IP_VS_DEST_F_AVAILABLE for the same purpose).
type localityState struct {
	dests  []*Dest
	member map[*Dest]struct{}
}

func newLocalityState(dests []*Dest) *localityState {
	next := compactDests(dests)
	m := make(map[*Dest]struct{}, len(next))
	for _, d := range next {
		m[d] = struct{}{}
	}
	return &localityState{dests: next, member: m}
}

func (st *localityState) has(d *Dest) bool {
	_, ok := st.member[d]
	return ok
}

// localityClock is the clock and expiration shared by lblc and lblcr.
type localityClock struct {
	expiration atomic.Int64 // nanoseconds
	now        func() int64 // monotonic nanoseconds; replaced by tests
}

func (c *localityClock) initClock() {
	c.expiration.Store(int64(defaultLocalityExpiration))
	c.now = monotonicNanos
}

// SetExpiration sets the lblc_expiration / lblcr_expiration time; 0 or less
// restores the default of 24 hours.
func (c *localityClock) SetExpiration(d time.Duration) {
	if d <= 0 {
		d = defaultLocalityExpiration
	}
	c.expiration.Store(int64(d))
}

// localityOverloaded is the lblc/lblcr is_overloaded rule: a server with more
// active connections than its weight is given up only if some server of the
// service is less than half loaded (active*2 < weight).
func localityOverloaded(d *Dest, dests []*Dest) bool {
	if d.ActiveConns() <= int64(d.Weight()) {
		return false
	}
	for _, m := range dests {
		if m.ActiveConns()*2 < int64(m.Weight()) {
			return true
		}
	}
	return false
}

// localityKey is what the entries of both locality caches share.
type localityKey struct {
	addr    inet.Addr
	used    bool
	lastUse int64
}

func (k *localityKey) key() *localityKey { return k }

// localityEntry is a pointer to a cache entry that embeds localityKey.
type localityEntry[E any] interface {
	*E
	key() *localityKey
}

// localityBucket is one bucket of a locality cache; its lock serialises
// the cache updates of the addresses that hash to it.
type localityBucket[E any, P localityEntry[E]] struct {
	mu      sync.Mutex
	entries [localityWays]E
}

// find returns the live entry for addr, or nil; an expired entry is freed.
func (b *localityBucket[E, P]) find(addr *inet.Addr, now, exp int64) P {
	for i := range b.entries {
		k := P(&b.entries[i]).key()
		if !k.used || k.addr != *addr {
			continue
		}
		if now-k.lastUse >= exp {
			var zero E
			b.entries[i] = zero
			return nil
		}
		return &b.entries[i]
	}
	return nil
}

// victim returns a free or expired entry, else the least recently used one,
// emptied.
func (b *localityBucket[E, P]) victim(now, exp int64) P {
	var zero E
	oldest := 0
	for i := range b.entries {
		k := P(&b.entries[i]).key()
		if !k.used || now-k.lastUse >= exp {
			b.entries[i] = zero
			return &b.entries[i]
		}
		if k.lastUse < P(&b.entries[oldest]).key().lastUse {
			oldest = i
		}
	}
	b.entries[oldest] = zero
	return &b.entries[oldest]
}

// localityCache is what lblc and lblcr share: the service's servers, the
// fixed table of cache buckets, and the clock.
type localityCache[E any, P localityEntry[E]] struct {
	state   atomic.Pointer[localityState]
	buckets []localityBucket[E, P]
	localityClock
}

func (c *localityCache[E, P]) init() {
	c.buckets = make([]localityBucket[E, P], localityTabSize)
	c.initClock()
}

// Update implements Scheduler.
func (c *localityCache[E, P]) Update(dests []*Dest) { c.state.Store(newLocalityState(dests)) }

// lock starts a Pick: it returns the servers and the bucket of k's
// destination, locked (the caller unlocks it), with the clock's reading.
// st is nil, and nothing is locked, when the service has no server.
func (c *localityCache[E, P]) lock(k *Key) (st *localityState, b *localityBucket[E, P], key *Key, now, exp int64) {
	st = c.state.Load()
	if st == nil || len(st.dests) == 0 {
		return nil, nil, nil, 0, 0
	}
	key = keyOrZero(k)
	now, exp = c.now(), c.expiration.Load()
	b = &c.buckets[localityBucketOf(&key.Dst)]
	b.mu.Lock()
	return st, b, key, now, exp
}
