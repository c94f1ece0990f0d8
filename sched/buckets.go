package sched

// bucketTabBits is IPVS's CONFIG_IP_VS_SH_TAB_BITS and _DH_TAB_BITS default:
// sh and dh map keys onto 256 buckets.
const (
	bucketTabBits = 8
	bucketTabSize = 1 << bucketTabBits
	bucketTabMask = bucketTabSize - 1
)

// bucketTable is the static table of sh and dh. Update builds a new one and
// swaps it in; Pick only reads.
type bucketTable [bucketTabSize]*Dest

// fillBuckets assigns the buckets in order, cycling through the destinations
// in list order and giving each as many consecutive buckets as its weight
// (ip_vs_sh_reassign). A destination of weight 0 still gets one bucket, as in
// the kernel, where it makes its keys unschedulable (or fall back) instead of
// moving them. The shares follow the weights while their sum is well below
// 256; only the first 256 buckets' worth of weight is ever placed, so with
// more than 256 destinations the later ones get none (a kernel limit too).
func fillBuckets(dests []*Dest) *bucketTable {
	t := new(bucketTable)
	if len(dests) == 0 {
		return t
	}
	p, filled := 0, 0
	for i := range t {
		t[i] = dests[p]
		filled++
		if filled >= dests[p].Weight() {
			p = (p + 1) % len(dests)
			filled = 0
		}
	}
	return t
}

// lookupBuckets returns the destination of bucket b, or, with fallback, the
// first available one on IPVS's deterministic walk around the table (bucket
// (offset + 2b) mod 256 for offset 0..255, as ip_vs_sh_get_fallback does).
func lookupBuckets(t *bucketTable, b uint32, fallback bool, dests []*Dest) *Dest {
	d := t[b&bucketTabMask]
	if d == nil {
		return nil
	}
	if d.Available() {
		return d
	}
	if !fallback || !anyAvailable(dests) {
		return nil
	}
	for off := uint32(0); off < bucketTabSize; off++ {
		if d := t[(off+2*b)&bucketTabMask]; d.Available() {
			return d
		}
	}
	return nil
}
