package sched

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/govs/govs/inet"
)

// destList is a service's destination list in config order, held as an
// immutable snapshot that Update replaces atomically, so that Pick reads it
// without a lock while the control plane swaps it.
type destList struct {
	p atomic.Pointer[[]*Dest]
}

// store copies dests (dropping nil entries), publishes the copy and returns it.
func (l *destList) store(dests []*Dest) []*Dest {
	cp := compactDests(dests)
	l.p.Store(&cp)
	return cp
}

// load returns the current snapshot; nil before the first Update.
func (l *destList) load() []*Dest {
	if p := l.p.Load(); p != nil {
		return *p
	}
	return nil
}

// compactDests copies dests without nil entries, so that no scheduler has to
// guard against a nil *Dest in its hot loop.
func compactDests(dests []*Dest) []*Dest {
	out := make([]*Dest, 0, len(dests))
	for _, d := range dests {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// connOverhead is IPVS's ip_vs_dest_conn_overhead: an active connection costs
// 256 times an inactive one.
func connOverhead(d *Dest) int64 {
	return d.ActiveConns()<<8 + d.InactiveConns()
}

// pickWeightedLeastConn is the wlc choice (also lblc's and lblcr's fallback): the
// available destination with the least overhead/weight, compared by
// cross-multiplication; on a tie the first in list order wins, as in the
// kernel's loop, which replaces its candidate only on a strictly smaller load.
func pickWeightedLeastConn(dests []*Dest) *Dest {
	var least *Dest
	var loh, lw int64
	for _, d := range dests {
		w := int64(d.Weight())
		if w <= 0 || d.Overloaded() {
			continue
		}
		doh := connOverhead(d)
		if least == nil || loh*w > doh*lw {
			least, loh, lw = d, doh, w
		}
	}
	return least
}

// anyAvailable reports whether some destination may take a new connection; the
// fallback walks of sh and mh use it to give up at once when none can.
func anyAvailable(dests []*Dest) bool {
	for _, d := range dests {
		if d.Available() {
			return true
		}
	}
	return false
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// keyOrZero lets Pick accept a nil key: hashing schedulers then hash zeros.
var zeroKey Key

func keyOrZero(k *Key) *Key {
	if k == nil {
		return &zeroKey
	}
	return k
}

// fold32 folds an address to 32 bits as IPVS's hashing schedulers do: the
// IPv4 address itself, or the XOR of the four 32-bit words of an IPv6 one.
func fold32(a *inet.Addr) uint32 {
	if a.Is4() {
		return binary.BigEndian.Uint32(a[12:16])
	}
	return binary.BigEndian.Uint32(a[0:4]) ^ binary.BigEndian.Uint32(a[4:8]) ^
		binary.BigEndian.Uint32(a[8:12]) ^ binary.BigEndian.Uint32(a[12:16])
}

// goldenRatio32 is the multiplier of the kernel's hash_32 (Fibonacci hashing).
const goldenRatio32 = 0x61C88647

// hash32 is the kernel's hash_32: multiply by the golden ratio and keep the
// top bits, which are the well-mixed ones.
func hash32(v uint32, bits uint) uint32 {
	return (v * goldenRatio32) >> (32 - bits)
}

// mix64 is the splitmix64 finaliser: a fixed bijection with full avalanche.
// It has no seed of its own, so every process hashes alike.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashAddrPort hashes a full 128-bit address and a port under a fixed seed.
// mh uses it for its permutations and lookups; being a pure function of its
// inputs, it yields identical tables on every director with the same config.
func hashAddrPort(a *inet.Addr, port uint16, seed uint64) uint64 {
	h := mix64(seed ^ binary.BigEndian.Uint64(a[0:8]))
	h = mix64(h ^ binary.BigEndian.Uint64(a[8:16]))
	return mix64(h ^ uint64(port)<<32 ^ 0x9e3779b97f4a7c15)
}

// monoStart anchors monotonicNanos; time.Since reads the monotonic clock.
var monoStart = time.Now()

// monotonicNanos is the default clock of the locality schedulers.
func monotonicNanos() int64 { return int64(time.Since(monoStart)) }

// Expirer is implemented by the locality schedulers (lblc, lblcr). It sets
// what IPVS's lblc_expiration / lblcr_expiration sysctls set: how long an
// unused cache entry lives (lblc, lblcr) and how long a server set must stay
// unchanged before lblcr drops its most loaded member. The default is 24h.
type Expirer interface {
	SetExpiration(d time.Duration)
}

// defaultLocalityExpiration is IPVS's DEFAULT_EXPIRATION (24 hours).
const defaultLocalityExpiration = 24 * time.Hour
