package xsk

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one mmapped AF_XDP ring: RX and TX carry Desc entries, fill and
// completion carry UMEM addresses. The same type serves both directions; the
// producer side uses produce and freeSlots, the consumer side consume and
// ready.
type ring[T Desc | uint64] struct {
	producer *atomic.Uint32
	consumer *atomic.Uint32
	flags    *atomic.Uint32
	entries  []T
	mask     uint32
	size     uint32

	// Local copies of the indices. The side we own is authoritative here;
	// the other side is refreshed from shared memory only when the cached
	// value does not satisfy the request, to keep cache-line traffic low.
	cachedProd uint32
	cachedCons uint32

	mapping []byte // the whole mmapped region, for munmap
}

// initRing lays a ring over mapping using the kernel's offsets. It is split
// from mmapRing so that tests can drive a ring over ordinary memory.
func initRing[T Desc | uint64](r *ring[T], mapping []byte, off unix.XDPRingOffset, size uint32) error {
	var zero T
	entrySize := uint64(unsafe.Sizeof(zero))
	if size == 0 || size&(size-1) != 0 {
		return fmt.Errorf("xsk: ring size %d is not a power of two", size)
	}
	need := off.Desc + uint64(size)*entrySize
	for _, word := range []uint64{off.Producer, off.Consumer, off.Flags} {
		if word+4 > uint64(len(mapping)) || word%4 != 0 {
			return fmt.Errorf("xsk: ring offset %d outside mapping of %d bytes", word, len(mapping))
		}
	}
	if need > uint64(len(mapping)) || off.Desc%8 != 0 {
		return fmt.Errorf("xsk: ring needs %d bytes, mapping has %d", need, len(mapping))
	}
	r.producer = (*atomic.Uint32)(unsafe.Pointer(&mapping[off.Producer]))
	r.consumer = (*atomic.Uint32)(unsafe.Pointer(&mapping[off.Consumer]))
	r.flags = (*atomic.Uint32)(unsafe.Pointer(&mapping[off.Flags]))
	r.entries = unsafe.Slice((*T)(unsafe.Pointer(&mapping[off.Desc])), size)
	r.size = size
	r.mask = size - 1
	r.cachedProd = r.producer.Load()
	r.cachedCons = r.consumer.Load()
	r.mapping = mapping
	return nil
}

// mmapRing maps the ring at page offset pgoff of the socket and lays it out.
func mmapRing[T Desc | uint64](r *ring[T], fd int, pgoff int64, off unix.XDPRingOffset, size uint32, name string) error {
	var zero T
	length := int(off.Desc) + int(size)*int(unsafe.Sizeof(zero))
	mapping, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("xsk: mmap %s ring: %w", name, err)
	}
	if err := initRing(r, mapping, off, size); err != nil {
		_ = unix.Munmap(mapping)
		return err
	}
	return nil
}

func (r *ring[T]) unmap() error {
	if r.mapping == nil {
		return nil
	}
	m := r.mapping
	*r = ring[T]{}
	return unix.Munmap(m)
}

// freeSlots returns how many entries the producer may write, refreshing the
// consumer index only when fewer than want are known to be free.
func (r *ring[T]) freeSlots(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free >= want {
		return free
	}
	r.cachedCons = r.consumer.Load()
	return r.size - (r.cachedProd - r.cachedCons)
}

// ready returns how many entries the consumer may read, refreshing the
// producer index only when fewer than want are known to be ready.
func (r *ring[T]) ready(want uint32) uint32 {
	n := r.cachedProd - r.cachedCons
	if n >= want {
		return n
	}
	r.cachedProd = r.producer.Load()
	return r.cachedProd - r.cachedCons
}

// clampLen bounds a caller's slice length to what a ring can ever hold, so
// the uint32 arithmetic below cannot overflow.
func (r *ring[T]) clampLen(n int) uint32 {
	if n > int(r.size) {
		return r.size
	}
	return uint32(n)
}

// produce copies as many entries of src as fit, then publishes them with one
// store to the producer index. The store is the release that makes the
// entries visible to the kernel.
func (r *ring[T]) produce(src []T) int {
	if r.entries == nil {
		return 0
	}
	n := r.clampLen(len(src))
	if n == 0 {
		return 0
	}
	n = min(n, r.freeSlots(n))
	if n == 0 {
		return 0
	}
	start := r.cachedProd & r.mask
	first := copy(r.entries[start:], src[:n])
	copy(r.entries, src[first:n])
	r.cachedProd += n
	r.producer.Store(r.cachedProd)
	return int(n)
}

// consume copies up to len(dst) ready entries out and releases their slots
// with one store to the consumer index. The producer load in ready is the
// acquire that makes the entries' contents visible.
func (r *ring[T]) consume(dst []T) int {
	if r.entries == nil {
		return 0
	}
	n := r.clampLen(len(dst))
	if n == 0 {
		return 0
	}
	n = min(n, r.ready(n))
	if n == 0 {
		return 0
	}
	start := r.cachedCons & r.mask
	first := copy(dst[:n], r.entries[start:])
	copy(dst[first:n], r.entries)
	r.cachedCons += n
	r.consumer.Store(r.cachedCons)
	return int(n)
}

// needWakeup reports the kernel's XDP_RING_NEED_WAKEUP flag for this ring.
func (r *ring[T]) needWakeup() bool {
	return r.flags != nil && r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0
}

// counters samples both indices from shared memory.
func (r *ring[T]) counters() RingCounters {
	if r.producer == nil {
		return RingCounters{}
	}
	return RingCounters{Producer: r.producer.Load(), Consumer: r.consumer.Load()}
}

// RingCounters are the free-running (wrapping) producer and consumer indices
// of one ring. Producer-Consumer is the number of entries in flight; the
// deltas between two samples count entries moved.
type RingCounters struct {
	Producer uint32
	Consumer uint32
}

// Pending is the number of entries produced and not yet consumed.
func (c RingCounters) Pending() uint32 { return c.Producer - c.Consumer }
