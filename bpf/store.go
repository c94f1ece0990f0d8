package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Store is a pinned BPF hash map of fixed-size byte keys and values that
// no program reads: the kernel keeps it while no process holds it, so state
// written by one govsd survives until the next one reads it (the
// connection mirror, dataplane/mirror.go). It is safe for concurrent use as
// far as the kernel's map operations are; callers keep one writer.
type Store struct {
	m                  *ebpf.Map
	path               string
	keySize, valueSize int
	batch              bool // the kernel takes batch operations (checked by the first one)
}

// storeBatch is how many entries Iterate reads per system call.
const storeBatch = 4096

// OpenStore opens the store pinned at pinPath/name, creating and pinning it
// if there is none. A pinned store with other key or value sizes is an
// error (ErrPinnedIncompatible); one with another capacity is copied into a
// new one of maxEntries (entries beyond it are lost) that replaces it, so a
// changed connection table size does not lose the mirror. The map is
// allocated as it fills (BPF_F_NO_PREALLOC): a mirror sized for a million
// connections costs nothing while few are open.
func OpenStore(pinPath, name string, keySize, valueSize, maxEntries uint32) (*Store, error) {
	if pinPath == "" || name == "" {
		return nil, errors.New("store: no pin path or name")
	}
	if keySize == 0 || valueSize == 0 || maxEntries == 0 {
		return nil, fmt.Errorf("store %s: zero key size, value size or capacity", name)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("store %s: memlock: %w", name, err)
	}
	if err := os.MkdirAll(pinPath, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	path := filepath.Join(pinPath, name)
	spec := &ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: keySize, ValueSize: valueSize,
		MaxEntries: maxEntries, Flags: unix.BPF_F_NO_PREALLOC}
	s := &Store{path: path, keySize: int(keySize), valueSize: int(valueSize), batch: true}
	old, err := ebpf.LoadPinnedMap(path, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if s.m, err = ebpf.NewMap(spec); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		if err := s.m.Pin(path); err != nil {
			s.m.Close()
			return nil, fmt.Errorf("store %s: pin: %w", name, err)
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("store %s: load pinned %s: %w", name, path, err)
	}
	if old.Type() != ebpf.Hash || old.KeySize() != keySize || old.ValueSize() != valueSize {
		old.Close()
		return nil, fmt.Errorf("store %s: pinned at %s with type %s, key %d, value %d bytes, want %s, %d, %d (another govs version; run govsd --cleanup): %w",
			name, path, old.Type(), old.KeySize(), old.ValueSize(), ebpf.Hash, keySize, valueSize, ErrPinnedIncompatible)
	}
	if old.MaxEntries() == maxEntries {
		s.m = old
		return s, nil
	}
	if err := s.resize(old, spec); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return s, nil
}

// resize copies old's entries into a new map of spec and pins it in old's
// place. The new map is pinned under a temporary name and renamed over the
// old pin, so a crash midway leaves one of the two at path, never none.
func (s *Store) resize(old *ebpf.Map, spec *ebpf.MapSpec) error {
	defer old.Close()
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return err
	}
	s.m = m
	from := &Store{m: old, keySize: s.keySize, valueSize: s.valueSize, batch: true}
	err = from.Iterate(func(k, v []byte) bool {
		// Past the new capacity Update fails (E2BIG): those are lost.
		return m.Update(k, v, ebpf.UpdateAny) == nil
	})
	if err != nil {
		m.Close()
		return fmt.Errorf("copy to resized map: %w", err)
	}
	tmp := s.path + "_resize" // bpffs refuses names with a dot
	os.Remove(tmp)
	if err := m.Pin(tmp); err != nil {
		m.Close()
		return fmt.Errorf("pin resized map: %w", err)
	}
	// rename(2) replaces the old pin (ebpf's Pin would refuse to).
	if err := os.Rename(tmp, s.path); err != nil {
		m.Unpin()
		m.Close()
		return fmt.Errorf("replace pin with resized map: %w", err)
	}
	// m still believes it is pinned at tmp: reopen it by its path.
	m.Close()
	if s.m, err = ebpf.LoadPinnedMap(s.path, nil); err != nil {
		return fmt.Errorf("reopen resized map: %w", err)
	}
	return nil
}

// Path is where the store is pinned.
func (s *Store) Path() string { return s.path }

// MaxEntries is the store's capacity.
func (s *Store) MaxEntries() int { return int(s.m.MaxEntries()) }

// rows views b, n rows of size bytes each, as a slice of n byte arrays:
// the batch calls count entries by slice length and use the slice's memory
// in place.
func rows(b []byte, size, n int) any {
	if n == 0 {
		return reflect.MakeSlice(reflect.SliceOf(reflect.ArrayOf(size, reflect.TypeFor[byte]())), 0, 0).Interface()
	}
	arr := reflect.ArrayOf(n, reflect.ArrayOf(size, reflect.TypeFor[byte]()))
	return reflect.NewAt(arr, unsafe.Pointer(&b[0])).Elem().Slice(0, n).Interface()
}

// Put writes n entries: keys holds n keys and values n values, each
// contiguous. It uses one batch update where the kernel has them, else one
// update per entry; an entry that fails (the store is full) does not stop
// the others, and the first error is returned with how many failed.
func (s *Store) Put(keys, values []byte, n int) error {
	if n <= 0 {
		return nil
	}
	if len(keys) < n*s.keySize || len(values) < n*s.valueSize {
		return fmt.Errorf("store put: %d entries need %d key and %d value bytes, have %d and %d",
			n, n*s.keySize, n*s.valueSize, len(keys), len(values))
	}
	done := 0
	if s.batch {
		k, err := s.m.BatchUpdate(rows(keys, s.keySize, n), rows(values, s.valueSize, n), nil)
		if err == nil {
			return nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			s.batch = false
		} else {
			done = k // entry k failed; the ones after it were not tried
		}
	}
	var first error
	failed := 0
	for i := done; i < n; i++ {
		err := s.m.Update(keys[i*s.keySize:(i+1)*s.keySize], values[i*s.valueSize:(i+1)*s.valueSize], ebpf.UpdateAny)
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return fmt.Errorf("store put: %d of %d entries: %w", failed, n, first)
	}
	return nil
}

// Delete removes n entries by their contiguous keys; keys that are not in
// the store are ignored.
func (s *Store) Delete(keys []byte, n int) error {
	if len(keys) < n*s.keySize {
		return fmt.Errorf("store delete: %d keys need %d bytes, have %d", n, n*s.keySize, len(keys))
	}
	for i := 0; i < n; {
		if s.batch {
			// A batch stops at the first missing key: skip it and go on.
			k, err := s.m.BatchDelete(rows(keys[i*s.keySize:], s.keySize, n-i), nil)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, ebpf.ErrKeyNotExist):
				i += k + 1
				continue
			case errors.Is(err, ebpf.ErrNotSupported):
				s.batch = false
			default:
				return fmt.Errorf("store delete: %w", err)
			}
		}
		err := s.m.Delete(keys[i*s.keySize : (i+1)*s.keySize])
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("store delete: %w", err)
		}
		i++
	}
	return nil
}

// Iterate calls fn for every entry until fn returns false. The slices are
// valid only during the call. Entries written meanwhile may or may not be
// seen; fn may Put and Delete.
func (s *Store) Iterate(fn func(key, value []byte) bool) error {
	if s.batch {
		err := s.iterateBatch(fn)
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return err
		}
		s.batch = false
	}
	k := make([]byte, s.keySize)
	v := make([]byte, s.valueSize)
	it := s.m.Iterate()
	for it.Next(&k, &v) {
		if !fn(k, v) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("store iterate: %w", err)
	}
	return nil
}

func (s *Store) iterateBatch(fn func(key, value []byte) bool) error {
	keys := make([]byte, storeBatch*s.keySize)
	vals := make([]byte, storeBatch*s.valueSize)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := s.m.BatchLookup(&cursor, rows(keys, s.keySize, storeBatch), rows(vals, s.valueSize, storeBatch), nil)
		for i := 0; i < n; i++ {
			if !fn(keys[i*s.keySize:(i+1)*s.keySize], vals[i*s.valueSize:(i+1)*s.valueSize]) {
				return nil
			}
		}
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return nil // the end
		case errors.Is(err, ebpf.ErrNotSupported):
			return err
		case err != nil:
			return fmt.Errorf("store iterate: %w", err)
		}
	}
}

// Unpin removes the store's pin: it is freed once closed. For good stops
// (govsadm --shutdown).
func (s *Store) Unpin() error {
	if err := s.m.Unpin(); err != nil {
		return fmt.Errorf("store unpin: %w", err)
	}
	return nil
}

// Close releases the store's descriptor; a pinned store stays in the
// kernel with its entries.
func (s *Store) Close() error { return s.m.Close() }
