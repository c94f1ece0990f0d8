package sched

import (
	"math/bits"
	"sync/atomic"

	"github.com/govs/govs/inet"
)

func init() { Register("mh", func(f Flags) Scheduler { return &maglevHash{flags: f} }) }

// Consistent reports whether the scheduler named name picks the same real
// server for a flow on every director that has the same real servers
// (Maglev hashing: mh), so that a director may schedule a flow another
// director started, mid-flow, and keep its server (ECMP scale-out).
func Consistent(name string) bool { return name == "mh" }

const (
	// mhTableSize is the Maglev lookup table size: a prime, so that every
	// skip walks all of it. IPVS's default is 4093 (CONFIG_IP_VS_MH_TAB_INDEX
	// 12), configurable up to 131071; 65537 gives even shares and small
	// disruption up to a few hundred servers, and is the size Katran uses.
	mhTableSize = 65537
	// mhWeightBits bounds a destination's turns per round to this many
	// bits, as IP_VS_MH_TAB_BITS (half the table index) does: weights are
	// reduced by their gcd, then shifted right until the largest fits.
	mhWeightBits = 8

	// Fixed seeds: the table must be a pure function of the config, so that
	// every director of an ECMP group builds the same one.
	mhSeedOffset = 0x2545f4914f6cdd1d
	mhSeedSkip   = 0x9e3779b97f4a7c15
	mhSeedLookup = 0xd6e8feb86659fd93
)

// maglevHash is IPVS's mh, Maglev consistent hashing (Eisenbud et al., NSDI
// 2016, section 3.4). Each destination walks its own permutation of the table
// (offset and skip from a hash of its address and port) and, taking turns in
// list order, claims its next free slot; a destination takes weight/gcd
// slots per turn (shifted to mhWeightBits). The client address (plus its port
// with mh-port) is hashed onto the table. Removing one of N servers moves
// about 1/N of the clients; the same config gives the same table everywhere.
//
// As in the kernel the table is built from each destination's last non-zero
// weight, so quiescing a server (weight 0) keeps every slot where it is: its
// clients become unschedulable, or with mh-fallback are rehashed onto
// another server, while everyone else stays put.
type maglevHash struct {
	flags Flags
	state atomic.Pointer[maglevState]
}

type maglevState struct {
	dests []*Dest
	// table holds indexes into dests; nil when no destination has a
	// positive weight.
	table []int32
}

func (s *maglevHash) Update(dests []*Dest) {
	next := compactDests(dests)
	s.state.Store(&maglevState{dests: next, table: buildMaglev(next)})
}

// buildMaglev populates the lookup table (ip_vs_mh_permutate and _populate).
func buildMaglev(dests []*Dest) []int32 {
	g, maxW := 0, 0
	for _, d := range dests {
		if w := d.LastWeight(); w > 0 {
			g = gcd(w, g)
			maxW = max(maxW, w)
		}
	}
	if g == 0 {
		return nil
	}
	shift := max(bits.Len(uint(maxW/g))-mhWeightBits, 0)

	type setup struct {
		perm, skip uint64
		turns      int
	}
	ds := make([]setup, len(dests))
	for i, d := range dests {
		offset := hashAddrPort(&d.Addr, d.Port, mhSeedOffset) % mhTableSize
		skip := hashAddrPort(&d.Addr, d.Port, mhSeedSkip)%(mhTableSize-1) + 1
		turns := 0
		if w := d.LastWeight(); w > 0 {
			// A small weight that the shift rounds to 0 keeps one turn.
			turns = max((w/g)>>shift, 1)
		}
		ds[i] = setup{perm: offset, skip: skip, turns: turns}
	}

	table := make([]int32, mhTableSize)
	taken := make([]bool, mhTableSize)
	filled := 0
	for filled < mhTableSize {
		for i := range ds {
			for t := 0; t < ds[i].turns && filled < mhTableSize; t++ {
				c := ds[i].perm
				for taken[c] {
					c += ds[i].skip
					if c >= mhTableSize {
						c -= mhTableSize
					}
				}
				ds[i].perm = c
				taken[c] = true
				table[c] = int32(i)
				filled++
			}
		}
	}
	return table
}

func (s *maglevHash) Pick(k *Key) *Dest {
	st := s.state.Load()
	if st == nil || st.table == nil {
		return nil
	}
	k = keyOrZero(k)
	var port uint16
	if s.flags&FlagPort != 0 {
		port = k.SrcPort
	}
	slot := hashAddrPort(&k.Src, port, mhSeedLookup) % mhTableSize
	d := st.dests[st.table[slot]]
	if d.Available() {
		return d
	}
	if s.flags&FlagFallback == 0 || !anyAvailable(st.dests) {
		return nil
	}
	// As ip_vs_mh_get_fallback: rehash with a growing offset until an
	// available server comes up. Some server is available, so each try
	// succeeds with at least its share of the table; the walk is bounded
	// by the table size all the same.
	for off := uint64(0); off < mhTableSize; off++ {
		salt := (off + slot) % mhTableSize
		i := hashAddrPort(&k.Src, port, mhSeedLookup+salt+1) % mhTableSize
		if d := st.dests[st.table[i]]; d.Available() {
			return d
		}
	}
	return nil
}

// MaglevTableSize is the slots of mh's lookup table; the XDP program's
// SYN spreading (bpf.SpreadTableSize) repeats it, and the hash of
// MaglevSlot.
const MaglevTableSize = mhTableSize

// MaglevSlot is the lookup table slot mh hashes a client onto: its address
// and, with mh-port, its port (0 otherwise).
func MaglevSlot(src *inet.Addr, port uint16) int {
	return int(hashAddrPort(src, port, mhSeedLookup) % mhTableSize)
}

// MaglevTable returns mh scheduler s's current lookup table, the index
// into dests of each slot's destination (table is nil when no destination
// has a weight), for a copy that picks as Pick does without its fallback;
// ok is false when s is not mh. Both are the scheduler's own and never
// change: an Update makes new ones, so a caller may tell a new table by
// its first element's address.
func MaglevTable(s Scheduler) (dests []*Dest, table []int32, ok bool) {
	m, ok := s.(*maglevHash)
	if !ok {
		return nil, nil, false
	}
	st := m.state.Load()
	if st == nil {
		return nil, nil, true
	}
	return st.dests, st.table, true
}
