package percpu

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Sum returns counter key of the per-CPU array m, summed over CPUs. K is
// the map's key type: uint32, or the enum type bpf2go exports for its ids.
func Sum[K ~uint32](m *ebpf.Map, key K) (uint64, error) {
	var perCPU []uint64
	return sum(m, uint32(key), &perCPU)
}

// Reader reads many counters of one map, one line per counter:
//
//	r := percpu.NewReader[counterId](m)
//	c.Passed = r.Sum(counterIdPassed)
//	...
//	return c, r.Err()
type Reader[K ~uint32] struct {
	m      *ebpf.Map
	perCPU []uint64 // one buffer for every lookup
	err    error
}

// NewReader returns a Reader of the per-CPU array m.
func NewReader[K ~uint32](m *ebpf.Map) *Reader[K] {
	return &Reader[K]{m: m}
}

// Sum returns counter key summed over CPUs; 0 once a lookup has failed.
func (r *Reader[K]) Sum(key K) uint64 {
	if r.err != nil {
		return 0
	}
	n, err := sum(r.m, uint32(key), &r.perCPU)
	r.err = err
	return n
}

// Err is the first lookup that failed, naming its counter; nil if none did.
func (r *Reader[K]) Err() error { return r.err }

func sum(m *ebpf.Map, key uint32, perCPU *[]uint64) (uint64, error) {
	if err := m.Lookup(key, perCPU); err != nil {
		return 0, fmt.Errorf("read counter %d: %w", key, err)
	}
	var n uint64
	for _, v := range *perCPU {
		n += v
	}
	return n, nil
}
