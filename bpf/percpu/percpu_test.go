package percpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/govs/govs/internal/testutil"
)

type counterID uint32

// TestSum: a counter is the sum of every CPU's value, by Sum and Reader
// alike; a key the map lacks is an error that names it, and a Reader keeps
// the first.
func TestSum(t *testing.T) {
	testutil.RequireRoot(t, "creates a BPF map")
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	perCPU := make([]uint64, cpus)
	var want uint64
	for i := range perCPU {
		perCPU[i] = uint64(i + 1)
		want += uint64(i + 1)
	}
	if err := m.Put(uint32(1), perCPU); err != nil {
		t.Fatal(err)
	}

	if n, err := Sum(m, counterID(1)); err != nil || n != want {
		t.Errorf("Sum = %d, %v; want %d", n, err, want)
	}
	r := NewReader[counterID](m)
	if zero, one := r.Sum(0), r.Sum(1); zero != 0 || one != want || r.Err() != nil {
		t.Errorf("Reader: %d %d %v; want 0 %d nil", zero, one, r.Err(), want)
	}

	if _, err := Sum(m, counterID(2)); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("Sum of a missing key: %v", err)
	}
	r = NewReader[counterID](m)
	if n := r.Sum(2) + r.Sum(1); n != 0 || !errors.Is(r.Err(), ebpf.ErrKeyNotExist) || !strings.HasPrefix(r.Err().Error(), "read counter 2: ") {
		t.Errorf("Reader after a missing key: %d, %v", n, r.Err())
	}
}
