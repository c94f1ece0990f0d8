package connsync

import (
	"errors"
	"testing"
)

func TestReplay(t *testing.T) {
	type step struct {
		sender, seq uint64
		want        error
	}
	const a, b = 0xaaaa, 0xbbbb
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{a, 1, nil}, {a, 2, nil}, {a, 3, nil}}},
		{"repeat", []step{{a, 1, nil}, {a, 2, nil}, {a, 2, ErrDuplicate}, {a, 1, ErrDuplicate}}},
		{"first seen anywhere", []step{{a, 1 << 40, nil}, {a, 1<<40 + 1, nil}}},
		{"reordered within window", []step{{a, 10, nil}, {a, 8, nil}, {a, 9, nil}, {a, 7, nil}, {a, 9, ErrDuplicate}}},
		{"window edge", []step{{a, 1000, nil}, {a, 1000 - (ReplayWindow - 1), nil}, {a, 1000 - ReplayWindow, ErrStale}}},
		{"stale after jump", []step{{a, 1, nil}, {a, 1 + ReplayWindow, nil}, {a, 1, ErrStale}, {a, 2, nil}, {a, 2, ErrDuplicate}}},
		{"jump clears window", []step{{a, 5, nil}, {a, 5 + 10*ReplayWindow, nil}, {a, 5 + 10*ReplayWindow - 1, nil}}},
		// Advancing by less than the window forgets exactly the slots that
		// now stand for new sequence numbers.
		{"ring reuse", []step{{a, 100, nil}, {a, 100 + ReplayWindow - 1, nil}, {a, 100, ErrDuplicate},
			{a, 100 + ReplayWindow, nil}, {a, 100, ErrStale}, {a, 101, nil}, {a, 101, ErrDuplicate}}},
		{"senders independent", []step{{a, 5, nil}, {b, 5, nil}, {a, 5, ErrDuplicate}, {b, 6, nil}}},
		// A restarted master draws a new id and starts again from 1.
		{"restart with new id", []step{{a, 5000, nil}, {b, 1, nil}, {b, 2, nil}, {a, 5000, ErrDuplicate}}},
		{"seq zero", []step{{a, 0, nil}, {a, 0, ErrDuplicate}, {a, 1, nil}}},
		{"max seq", []step{{a, ^uint64(0) - 1, nil}, {a, ^uint64(0), nil}, {a, ^uint64(0), ErrDuplicate}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReplay(0)
			for i, s := range tc.steps {
				if err := r.Check(s.sender, s.seq); !errors.Is(err, s.want) {
					t.Fatalf("step %d (sender %x seq %d): err %v, want %v", i, s.sender, s.seq, err, s.want)
				}
			}
		})
	}
}

// Every sequence number in a long, locally shuffled stream is accepted
// exactly once.
func TestReplayShuffledStream(t *testing.T) {
	r := NewReplay(1)
	const n = 10 * ReplayWindow
	for base := uint64(1); base < n; base += 64 {
		// Deliver each block of 64 backwards: reordering within the window.
		for i := uint64(63); i < 64; i-- {
			if err := r.Check(1, base+i); err != nil {
				t.Fatalf("seq %d: %v", base+i, err)
			}
		}
		for i := range uint64(64) {
			if err := r.Check(1, base+i); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("seq %d again: %v", base+i, err)
			}
		}
	}
}

func TestReplayEviction(t *testing.T) {
	r := NewReplay(2)
	for _, s := range []uint64{1, 2} {
		if err := r.Check(s, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Check(1, 11); err != nil { // 1 is now the most recently used
		t.Fatal(err)
	}
	if err := r.Check(3, 10); err != nil { // evicts 2
		t.Fatal(err)
	}
	if r.Senders() != 2 {
		t.Fatalf("%d senders remembered, want 2", r.Senders())
	}
	if err := r.Check(1, 11); !errors.Is(err, ErrDuplicate) {
		t.Errorf("sender 1 was forgotten: %v", err)
	}
	if err := r.Check(2, 10); err != nil {
		t.Errorf("sender 2 should have been forgotten and start afresh: %v", err)
	}
}

func BenchmarkReplayCheck(b *testing.B) {
	r := NewReplay(0)
	for i := range b.N {
		_ = r.Check(1, uint64(i))
	}
}
