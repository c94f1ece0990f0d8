package conntrack

import (
	"encoding/binary"
	"math/bits"
)

// index is an open-addressing hash index with linear probing, Robin Hood
// placement and backward-shift deletion (no tombstones, so lookups never
// slow down with churn). Each cell is one uint64:
//
//	bits 63..32  tag: the low 32 bits of the key's hash
//	bits 31..0   ref: what the caller stores (never 0: 0 marks an empty cell)
//
// The home cell of a key is tag & mask, so a cell's probe distance is known
// from the cell alone and the table never has to rehash a key. The tag also
// filters out almost every non-matching cell without touching the slab.
type index struct {
	cells []uint64
	mask  uint64
}

func newIndex(entries int) index {
	// At most 7/8 full; Robin Hood keeps probe sequences short at that load.
	n := uint64(entries)*8/7 + 1
	size := uint64(16)
	for size < n {
		size <<= 1
	}
	return index{cells: make([]uint64, size), mask: size - 1}
}

func cell(tag, ref uint32) uint64 { return uint64(tag)<<32 | uint64(ref) }

func (ix *index) dist(c, pos uint64) uint64 { return (pos - (c >> 32)) & ix.mask }

// insert adds (tag, ref). The caller guarantees there is room.
func (ix *index) insert(tag, ref uint32) {
	e := cell(tag, ref)
	pos := uint64(tag) & ix.mask
	var d uint64
	for {
		cur := ix.cells[pos]
		if cur == 0 {
			ix.cells[pos] = e
			return
		}
		// Robin Hood: the entry further from its home keeps the cell.
		if cd := ix.dist(cur, pos); cd < d {
			ix.cells[pos] = e
			e, d = cur, cd
		}
		pos = (pos + 1) & ix.mask
		d++
	}
}

// remove deletes (tag, ref) and shifts the following cluster back by one.
// It reports whether the cell was found.
func (ix *index) remove(tag, ref uint32) bool {
	e := cell(tag, ref)
	pos := uint64(tag) & ix.mask
	var d uint64
	for {
		cur := ix.cells[pos]
		if cur == e {
			break
		}
		if cur == 0 || ix.dist(cur, pos) < d {
			return false
		}
		pos = (pos + 1) & ix.mask
		d++
	}
	for {
		next := (pos + 1) & ix.mask
		nc := ix.cells[next]
		if nc == 0 || ix.dist(nc, next) == 0 {
			ix.cells[pos] = 0
			return true
		}
		ix.cells[pos] = nc
		pos = next
	}
}

// probe walks the cells a key may occupy; next yields the refs whose tag
// matches, in order, until the key's probe sequence ends.
type probe struct {
	pos, d uint64
	tag    uint32
}

func (ix *index) start(tag uint32) probe {
	return probe{pos: uint64(tag) & ix.mask, tag: tag}
}

func (ix *index) next(p *probe) (ref uint32, ok bool) {
	for {
		cur := ix.cells[p.pos]
		if cur == 0 || ix.dist(cur, p.pos) < p.d {
			return 0, false
		}
		p.pos = (p.pos + 1) & ix.mask
		p.d++
		if uint32(cur>>32) == p.tag {
			return uint32(cur), true
		}
	}
}

// hashSeed is a per-table random key for the tuple hash, so that remote
// clients cannot aim collisions at one table (the hash never leaves the
// process, so a local random seed suffices).
type hashSeed [6]uint64

// mix is a 64x64->128 multiply folded to 64 bits (the wyhash/rapidhash
// primitive): every input bit reaches every output bit.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func hashAddrs(s *hashSeed, a, b *[16]byte) uint64 {
	h := mix(binary.LittleEndian.Uint64(a[0:8])^s[0], binary.LittleEndian.Uint64(a[8:16])^s[1])
	return h ^ mix(binary.LittleEndian.Uint64(b[0:8])^s[2], binary.LittleEndian.Uint64(b[8:16])^s[3])
}

// hashTuple hashes every field of a tuple.
func hashTuple(s *hashSeed, k *Tuple) uint32 {
	h := hashAddrs(s, (*[16]byte)(&k.Src), (*[16]byte)(&k.Dst))
	p := uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32
	h = mix(h^s[4], p^s[5])
	return uint32(h ^ h>>32)
}

// hashTemplate hashes every field of a template key.
func hashTemplate(s *hashSeed, k *TemplateKey) uint32 {
	h := hashAddrs(s, (*[16]byte)(&k.Client), (*[16]byte)(&k.VIP))
	p := uint64(k.VPort) | uint64(k.Proto)<<16 | uint64(k.Service)<<32
	h = mix(h^s[5], p^s[4])
	return uint32(h ^ h>>32)
}

// eqTuple is a == b, word by word: the compiler's generated equality for
// Tuple calls memequal, which costs more than the hash itself.
func eqTuple(a, b *Tuple) bool {
	le := binary.LittleEndian
	x := le.Uint64(a.Src[0:8]) ^ le.Uint64(b.Src[0:8])
	x |= le.Uint64(a.Src[8:16]) ^ le.Uint64(b.Src[8:16])
	x |= le.Uint64(a.Dst[0:8]) ^ le.Uint64(b.Dst[0:8])
	x |= le.Uint64(a.Dst[8:16]) ^ le.Uint64(b.Dst[8:16])
	return x == 0 && a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.Proto == b.Proto
}
