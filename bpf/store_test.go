package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// storeDir returns a fresh directory on the BPF filesystem, removed with
// everything pinned in it when the test ends.
func storeDir(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &fs); err != nil || fs.Type != unix.BPF_FS_MAGIC {
		t.Skip("no BPF filesystem mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")
	}
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("govs-test-%s-%d", t.Name(), os.Getpid()))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// storeEntries builds n keys of 8 and values of 12 bytes from their index.
func storeEntries(from, n int) (keys, vals []byte) {
	for i := from; i < from+n; i++ {
		keys = binary.LittleEndian.AppendUint64(keys, uint64(i))
		vals = binary.LittleEndian.AppendUint64(vals, uint64(i)*3)
		vals = binary.LittleEndian.AppendUint32(vals, 0xabcd)
	}
	return keys, vals
}

func storeContents(t *testing.T, s *Store) map[uint64][]byte {
	t.Helper()
	got := map[uint64][]byte{}
	if err := s.Iterate(func(k, v []byte) bool {
		got[binary.LittleEndian.Uint64(k)] = bytes.Clone(v)
		return true
	}); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return got
}

// TestStorePinReopen: entries put in a store survive its Close and are
// found by the next OpenStore of the same pin (another process's, in
// production); Delete ignores missing keys; Unpin removes the pin.
func TestStorePinReopen(t *testing.T) {
	dir := storeDir(t)
	s, err := OpenStore(dir, "conns", 8, 12, 10000)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	keys, vals := storeEntries(0, 5000) // more than one Iterate batch
	if err := s.Put(keys, vals, 5000); err != nil {
		t.Fatalf("put: %v", err)
	}
	// Delete 10 present and 10 missing keys, interleaved.
	var del []byte
	for i := 0; i < 10; i++ {
		del = binary.LittleEndian.AppendUint64(del, uint64(100+i))
		del = binary.LittleEndian.AppendUint64(del, uint64(90000+i))
	}
	if err := s.Delete(del, 20); err != nil {
		t.Fatalf("delete with missing keys: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "conns")); err != nil {
		t.Fatalf("store not pinned: %v", err)
	}

	s, err = OpenStore(dir, "conns", 8, 12, 10000)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	got := storeContents(t, s)
	if len(got) != 4990 {
		t.Errorf("reopened store has %d entries, want 4990", len(got))
	}
	for i := 0; i < 5000; i++ {
		v, ok := got[uint64(i)]
		deleted := i >= 100 && i < 110
		if ok == deleted {
			t.Fatalf("key %d present=%v, want %v", i, ok, !deleted)
		}
		if ok && (binary.LittleEndian.Uint64(v) != uint64(i)*3 || binary.LittleEndian.Uint32(v[8:]) != 0xabcd) {
			t.Fatalf("key %d: value %x", i, v)
		}
	}
	// Iterate stops when told to.
	n := 0
	s.Iterate(func(k, v []byte) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("iterate went on after false: %d calls", n)
	}
	if err := s.Unpin(); err != nil {
		t.Fatalf("unpin: %v", err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "conns")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin still there after Unpin: %v", err)
	}
}

// TestStoreIncompatible: a pinned store of other key or value sizes is
// refused with ErrPinnedIncompatible and left alone; one of another
// capacity is carried over into a store of the new capacity.
func TestStoreIncompatible(t *testing.T) {
	dir := storeDir(t)
	s, err := OpenStore(dir, "conns", 8, 12, 100)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	keys, vals := storeEntries(0, 50)
	if err := s.Put(keys, vals, 50); err != nil {
		t.Fatalf("put: %v", err)
	}
	s.Close()
	for _, sz := range [][2]uint32{{8, 16}, {16, 12}} {
		if _, err := OpenStore(dir, "conns", sz[0], sz[1], 100); !errors.Is(err, ErrPinnedIncompatible) {
			t.Errorf("open with key %d value %d: %v, want an incompatibility error", sz[0], sz[1], err)
		}
	}
	// Smaller: the first 20 entries fit.
	s, err = OpenStore(dir, "conns", 8, 12, 20)
	if err != nil {
		t.Fatalf("open with a smaller capacity: %v", err)
	}
	if s.MaxEntries() != 20 {
		t.Errorf("capacity %d, want 20", s.MaxEntries())
	}
	if got := storeContents(t, s); len(got) != 20 {
		t.Errorf("resized store has %d entries, want 20 (its capacity)", len(got))
	}
	s.Close()
	// Larger again: the 20 kept, and room for more.
	s, err = OpenStore(dir, "conns", 8, 12, 1000)
	if err != nil {
		t.Fatalf("open with a larger capacity: %v", err)
	}
	defer s.Close()
	keys, vals = storeEntries(1000, 500)
	if err := s.Put(keys, vals, 500); err != nil {
		t.Fatalf("put after resize: %v", err)
	}
	if got := storeContents(t, s); len(got) != 520 {
		t.Errorf("store has %d entries, want 520", len(got))
	}
	if _, err := os.Stat(filepath.Join(dir, "conns_resize")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary pin left behind: %v", err)
	}
}

// TestStorePutFull: a Put past the capacity writes what fits and reports
// the rest.
func TestStorePutFull(t *testing.T) {
	dir := storeDir(t)
	s, err := OpenStore(dir, "full", 8, 12, 10)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	keys, vals := storeEntries(0, 15)
	if err := s.Put(keys, vals, 15); err == nil {
		t.Error("put of 15 entries into a store of 10: no error")
	}
	if got := storeContents(t, s); len(got) != 10 {
		t.Errorf("store has %d entries, want 10", len(got))
	}
	// Overwriting present keys needs no room.
	if err := s.Put(keys, vals, 10); err != nil {
		t.Errorf("overwrite: %v", err)
	}
}
