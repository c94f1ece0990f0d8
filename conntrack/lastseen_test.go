package conntrack

import (
	"testing"

	"github.com/govs/govs/lvs"
)

// TestLastSeenRevives: a connection whose packets bypass the table (the XDP
// fast path) lives as long as LastSeen reports traffic, in Lookup, Expire
// and Insert's reclaim alike, and ends one timeout after the last report.
func TestLastSeenRevives(t *testing.T) {
	seen := map[Tuple]int64{}
	var removed int
	tbl := New(Config{
		Capacity: 16,
		Timeouts: Timeouts{UDP: 10 * 1e9},
		LastSeen: func(c *Conn) int64 { return seen[c.Orig] },
		OnRemove: func(*Conn) { removed++ },
	})
	conn := natConn(1, lvs.ProtoUDP)
	c, err := tbl.Insert(&conn, 0)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Track(c, DirOriginal, 0, 0) // expires at 10 s

	// Traffic at 8 s, seen only by the fast path: alive at 12 s, expiring at 18 s.
	seen[conn.Orig] = 8 * sec
	if _, _, ok := tbl.Lookup(&conn.Reply, 12*sec); !ok {
		t.Fatal("Lookup at 12 s: connection with fast-path traffic at 8 s is gone")
	}
	if c.Expires != 18*sec {
		t.Errorf("Expires after revive = %d, want %d", c.Expires, 18*sec)
	}
	// Traffic at 17 s: Expire at 19 s keeps it (until 27 s).
	seen[conn.Orig] = 17 * sec
	tbl.Expire(19*sec, 16)
	if tbl.Len() != 1 || removed != 0 {
		t.Fatalf("Expire at 19 s removed a connection seen at 17 s (len %d)", tbl.Len())
	}
	// A new connection on the same tuple is refused while it lives.
	dup := natConn(1, lvs.ProtoUDP)
	if _, err := tbl.Insert(&dup, 26*sec); err != ErrExists {
		t.Errorf("Insert over a live fast-path connection: err %v, want ErrExists", err)
	}
	// No traffic since 17 s: gone at 28 s.
	tbl.Expire(28*sec, 16)
	if tbl.Len() != 0 || removed != 1 {
		t.Errorf("after idle timeout: len %d, removed %d; want 0, 1", tbl.Len(), removed)
	}
	if got := tbl.Stats().Revived; got != 2 { // Lookup at 12 s, Expire at 19 s
		t.Errorf("Revived = %d, want 2", got)
	}
}

func TestTouch(t *testing.T) {
	tbl := New(Config{Capacity: 16, Timeouts: Timeouts{UDP: 10 * 1e9}})
	conn := natConn(2, lvs.ProtoUDP)
	c, err := tbl.Insert(&conn, 0)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Track(c, DirOriginal, 0, 1*sec) // expires at 11 s
	tbl.Touch(c, 5*sec)
	if c.Expires != 15*sec {
		t.Errorf("Touch(5 s): Expires %d, want %d", c.Expires, 15*sec)
	}
	tbl.Touch(c, 2*sec) // older than the last refresh
	if c.Expires != 15*sec {
		t.Errorf("Touch(2 s) moved Expires back to %d", c.Expires)
	}
}
