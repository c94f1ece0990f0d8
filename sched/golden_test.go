package sched

import (
	"testing"
	"time"

	"github.com/govs/govs/inet"
)

// Golden sequences worked by hand from the kernel's algorithms.

func TestRRGolden(t *testing.T) {
	d := mkDests(1, 1, 1)
	s := newSched(t, "rr", 0, d)
	// From the head: A, then each next one after the last pick.
	if got := letters(d, pickSeq(s, 7)); got != "ABCABCA" {
		t.Fatalf("rr = %s, want ABCABCA", got)
	}

	// Weights other than 0 do not matter; a quiescent B is skipped.
	d = mkDests(5, 0, 1)
	s = newSched(t, "rr", 0, d)
	if got := letters(d, pickSeq(s, 5)); got != "ACACA" {
		t.Fatalf("rr with B quiescent = %s, want ACACA", got)
	}

	// Overloaded C is skipped; when it recovers the walk takes it in turn.
	d = mkDests(1, 1, 1)
	s = newSched(t, "rr", 0, d)
	overload(d[2])
	seq := letters(d, pickSeq(s, 3)) // A B A
	setConns(d[2], 0, 0)
	seq += letters(d, pickSeq(s, 3)) // after A: B C A
	if seq != "ABABCA" {
		t.Fatalf("rr with C overloaded then back = %s, want ABABCA", seq)
	}
}

func TestRRKeepsPositionAcrossUpdate(t *testing.T) {
	d := mkDests(1, 1, 1, 1) // A B C D
	s := newSched(t, "rr", 0, d)
	if got := letters(d, pickSeq(s, 2)); got != "AB" {
		t.Fatalf("got %s", got)
	}
	// Removing B, the last pick: IPVS steps back to A, so C comes next.
	s.Update([]*Dest{d[0], d[2], d[3]})
	if got := letters(d, pickSeq(s, 1)); got != "C" {
		t.Fatalf("after removing the last pick: %s, want C", got)
	}
	// Adding E at the end keeps the position after C.
	e := NewDest(testAddr(4), 80, 1)
	all := append(d[:len(d):len(d)], e)
	s.Update([]*Dest{d[0], d[2], d[3], e})
	if got := letters(all, pickSeq(s, 4)); got != "DEAC" {
		t.Fatalf("after adding E: %s, want DEAC", got)
	}
}

func TestWRRGolden(t *testing.T) {
	cases := []struct {
		weights []int
		want    string
	}{
		// gcd 1, mw 4. cw=4: A | cw=3: A B | cw=2: A B C | cw=1: A B C
		// | cw<=0, back to 4: A ...
		{[]int{4, 3, 2}, "AABABCABC" + "AABABCABC"},
		// gcd 2, mw = 4-(2-1) = 3. cw=3: A | cw=1 (last pass): A B |
		// cw=-1, back to 3: A ...
		{[]int{4, 2}, "AAB" + "AAB" + "AAB"},
		// Equal weights: plain round robin.
		{[]int{3, 3, 3}, "ABCABC"},
		// B quiescent. gcd 1, mw 2. cw=2: A | cw=1: A C | A A C ...
		{[]int{2, 0, 1}, "AAC" + "AAC"},
		// gcd 2, mw = 6-1 = 5. cw=5: A | cw=3: A | cw=1: A B C |
		// back to 5: A ...
		{[]int{6, 2, 2}, "AAABC" + "AAABC"},
	}
	for _, c := range cases {
		d := mkDests(c.weights...)
		s := newSched(t, "wrr", 0, d)
		if got := letters(d, pickSeq(s, len(c.want))); got != c.want {
			t.Errorf("wrr %v = %s, want %s", c.weights, got, c.want)
		}
	}
}

func TestWRRSkipsOverloadedAndRecovers(t *testing.T) {
	d := mkDests(4, 3, 2)
	s := newSched(t, "wrr", 0, d)
	overload(d[0])
	// A out: cw=4: none, cw=3: B, cw=2: B C, cw=1: B C, back to 4 ...
	if got := letters(d, pickSeq(s, 5)); got != "BBCBC" {
		t.Fatalf("wrr with A overloaded = %s, want BBCBC", got)
	}
	for _, x := range d[1:] {
		overload(x)
	}
	if p := s.Pick(nil); p != nil {
		t.Fatal("wrr picked with every server overloaded")
	}
	for _, x := range d {
		setConns(x, 0, 0)
	}
	if p := s.Pick(nil); p == nil {
		t.Fatal("wrr found nothing after recovery")
	}
}

func TestWRRUpdateRecomputes(t *testing.T) {
	d := mkDests(1, 1)
	s := newSched(t, "wrr", 0, d)
	pickSeq(s, 3) // A B A, cw stays 1
	d[0].SetWeight(2)
	s.Update(d)
	// As ip_vs_wrr_dest_changed: back to the head, mw becomes 2, but cw (1)
	// is kept as it is neither above mw nor 0. So cw=1: A B | cw=2: A |
	// cw=1: A B | cw=2: A ...
	if got := letters(d, pickSeq(s, 6)); got != "ABAABA" {
		t.Fatalf("after weight change = %s, want ABAABA", got)
	}
}

func TestLCGolden(t *testing.T) {
	d := mkDests(1, 5, 1)
	s := newSched(t, "lc", 0, d)
	// Overheads: A 1*256 = 256, B 300, C 256: tie A/C, first wins.
	setConns(d[0], 1, 0)
	setConns(d[1], 0, 300)
	setConns(d[2], 0, 256)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("lc = %c, want A", letterOf(d, p))
	}
	// B 255 < 256; weights are ignored.
	setConns(d[1], 0, 255)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("lc = %c, want B", letterOf(d, p))
	}
	// A quiescent B: next least is A (tie with C, first wins).
	d[1].SetWeight(0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("lc = %c, want A", letterOf(d, p))
	}
}

func TestWLCGolden(t *testing.T) {
	d := mkDests(1, 2, 3)
	s := newSched(t, "wlc", 0, d)
	// Overhead/weight: 256/1, 512/2, 768/3: all 256. The kernel keeps A
	// (loh*w > doh*lw is false on equality).
	setConns(d[0], 1, 0)
	setConns(d[1], 2, 0)
	setConns(d[2], 3, 0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("wlc tie = %c, want A", letterOf(d, p))
	}
	// C at 512/3 < 256: C.
	setConns(d[2], 2, 0)
	if p := s.Pick(nil); p != d[2] {
		t.Fatalf("wlc = %c, want C", letterOf(d, p))
	}
	// Inactive connections count 1/256 of an active one: A 10/1 = 10,
	// B 30/2 = 15, C 3*256/3 = 256: A.
	setConns(d[0], 0, 10)
	setConns(d[1], 0, 30)
	setConns(d[2], 3, 0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("wlc = %c, want A", letterOf(d, p))
	}
	// First available is B when A is quiescent; B 15 vs C 256: B.
	d[0].SetWeight(0)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("wlc = %c, want B", letterOf(d, p))
	}
}

func TestSEDGolden(t *testing.T) {
	d := mkDests(1, 3)
	s := newSched(t, "sed", 0, d)
	// (0+1)/1 = 1 vs (2+1)/3 = 1: tie, A. Inactive conns do not count.
	setConns(d[0], 0, 1000)
	setConns(d[1], 2, 0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("sed tie = %c, want A", letterOf(d, p))
	}
	// (1+1)/3 < 1: B.
	setConns(d[1], 1, 0)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("sed = %c, want B", letterOf(d, p))
	}
}

func TestNQGolden(t *testing.T) {
	d := mkDests(1, 5, 1)
	s := newSched(t, "nq", 0, d)
	// C is idle: taken at once although B's (3+1)/5 is the least delay.
	setConns(d[0], 1, 0)
	setConns(d[1], 3, 0)
	setConns(d[2], 0, 50)
	if p := s.Pick(nil); p != d[2] {
		t.Fatalf("nq = %c, want idle C", letterOf(d, p))
	}
	// Nobody idle: sed. A 2/1, B 4/5, C 3/1: B.
	setConns(d[2], 2, 0)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("nq = %c, want B", letterOf(d, p))
	}
	// Tie: A 2/2 vs B 5/5: A, the first.
	d[0].SetWeight(2)
	setConns(d[1], 4, 0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("nq tie = %c, want A", letterOf(d, p))
	}
	// Two idle servers: the first in list order.
	setConns(d[1], 0, 0)
	setConns(d[2], 0, 0)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("nq = %c, want first idle B", letterOf(d, p))
	}
}

func TestFOGolden(t *testing.T) {
	d := mkDests(3, 5, 5)
	s := newSched(t, "fo", 0, d)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("fo = %c, want B (first of the highest)", letterOf(d, p))
	}
	overload(d[1])
	if p := s.Pick(nil); p != d[2] {
		t.Fatalf("fo = %c, want C", letterOf(d, p))
	}
	d[2].SetWeight(0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("fo = %c, want A", letterOf(d, p))
	}
}

func TestOVFGolden(t *testing.T) {
	d := mkDests(3, 5)
	s := newSched(t, "ovf", 0, d)
	// B takes connections while active <= weight (the kernel skips only
	// active > weight).
	setConns(d[1], 5, 0)
	if p := s.Pick(nil); p != d[1] {
		t.Fatalf("ovf = %c, want B", letterOf(d, p))
	}
	setConns(d[1], 6, 0)
	if p := s.Pick(nil); p != d[0] {
		t.Fatalf("ovf = %c, want A (overflow)", letterOf(d, p))
	}
	setConns(d[0], 4, 0)
	if p := s.Pick(nil); p != nil {
		t.Fatalf("ovf = %c, want none", letterOf(d, p))
	}
}

// fakeClock drives the locality schedulers' expiration.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64              { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t += int64(d) }

func TestLBLCGolden(t *testing.T) {
	d := mkDests(4, 4, 4)
	s := newSched(t, "lblc", 0, d).(*localityLeastConn)
	clk := &fakeClock{t: 1}
	s.now = clk.now
	s.SetExpiration(time.Hour)
	x := &Key{Dst: testAddr(100)}
	y := &Key{Dst: testAddr(101)}

	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblc first pick = %c, want A (wlc, all idle)", letterOf(d, p))
	}
	// X stays on A although A is now the most loaded, as long as A has no
	// more active conns than its weight.
	setConns(d[0], 4, 0)
	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblc = %c, want cached A", letterOf(d, p))
	}
	// Y is new: wlc, B.
	if p := s.Pick(y); p != d[1] {
		t.Fatalf("lblc new address = %c, want B", letterOf(d, p))
	}
	// A over its weight while B is under half loaded: X moves to B (wlc
	// over B, C: tie, first) and stays there.
	setConns(d[0], 5, 0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblc overloaded = %c, want B", letterOf(d, p))
	}
	setConns(d[0], 0, 0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblc = %c, want cached B", letterOf(d, p))
	}
	// Over its weight but nobody under half loaded: keep B.
	setConns(d[1], 5, 0)
	setConns(d[0], 2, 0)
	setConns(d[2], 2, 0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblc = %c, want B (no lighter server)", letterOf(d, p))
	}
	// B removed from the service: X goes to wlc (A, C tie: A).
	setConns(d[1], 0, 0)
	s.Update([]*Dest{d[0], d[2]})
	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblc after removal = %c, want A", letterOf(d, p))
	}
	// Quiescent or threshold-overloaded cached server: rescheduled.
	s.Update(d)
	d[0].SetWeight(0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblc quiescent cached = %c, want B", letterOf(d, p))
	}
	overload(d[1])
	if p := s.Pick(x); p != d[2] {
		t.Fatalf("lblc overloaded cached = %c, want C", letterOf(d, p))
	}
	// Expiry: X unused for an hour is forgotten; A back and idle wins.
	d[0].SetWeight(4)
	setConns(d[0], 0, 0)
	setConns(d[2], 1, 0)
	clk.advance(59 * time.Minute)
	if p := s.Pick(x); p != d[2] {
		t.Fatalf("lblc before expiry = %c, want cached C", letterOf(d, p))
	}
	clk.advance(time.Hour)
	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblc after expiry = %c, want A", letterOf(d, p))
	}
}

func TestLBLCRGolden(t *testing.T) {
	d := mkDests(4, 4, 4)
	s := newSched(t, "lblcr", 0, d).(*localityReplicated)
	clk := &fakeClock{t: 1}
	s.now = clk.now
	s.SetExpiration(time.Hour)
	x := &Key{Dst: testAddr(200)}
	entry := func() *lblcrEntry {
		b := &s.buckets[localityBucketOf(&x.Dst)]
		return b.find(&x.Dst, clk.t, int64(time.Hour))
	}

	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblcr first pick = %c, want A", letterOf(d, p))
	}
	// A over its weight while B is under half loaded: B joins the set.
	setConns(d[0], 5, 0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblcr = %c, want B added", letterOf(d, p))
	}
	if e := entry(); e.n != 2 || e.set[0] != d[1] || e.set[1] != d[0] {
		t.Fatalf("set = %d members, want [B A]", e.n)
	}
	// The least loaded member serves: B, even as C is idle too.
	setConns(d[1], 1, 0)
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblcr = %c, want B from the set", letterOf(d, p))
	}
	// Load on A falls: set_min picks by overhead/weight, A 0 vs B 256.
	setConns(d[0], 0, 0)
	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblcr = %c, want A from the set", letterOf(d, p))
	}
	// Used regularly but unchanged for longer than the expiration: the
	// most loaded member (B) is dropped.
	clk.advance(40 * time.Minute)
	s.Pick(x)
	clk.advance(40 * time.Minute)
	if p := s.Pick(x); p != d[0] {
		t.Fatalf("lblcr = %c, want A", letterOf(d, p))
	}
	if e := entry(); e.n != 1 || e.set[0] != d[0] {
		t.Fatalf("set has %d members after shrink, want [A]", e.n)
	}
	// Every member quiescent: wlc over the service, added to the set.
	d[0].SetWeight(0)
	if p := s.Pick(x); p != d[2] {
		t.Fatalf("lblcr = %c, want C (B has 1 active)", letterOf(d, p))
	}
	// Removed members are forgotten.
	s.Update([]*Dest{d[1]})
	if p := s.Pick(x); p != d[1] {
		t.Fatalf("lblcr after removal = %c, want B", letterOf(d, p))
	}
	if e := entry(); e.n != 1 || e.set[0] != d[1] {
		t.Fatalf("set has %d members, want [B]", e.n)
	}
}

func TestLBLCRSetIsBounded(t *testing.T) {
	d := mkDests(make([]int, 20)...)
	for _, x := range d {
		x.SetWeight(2)
	}
	s := newSched(t, "lblcr", 0, d).(*localityReplicated)
	x := &Key{Dst: testAddr(300)}
	// Make every pick overloaded (active 3 > weight 2) while an untouched
	// server stays under half loaded, so each Pick adds a new member.
	for i := 0; i < 19; i++ {
		p := s.Pick(x)
		if p == nil {
			t.Fatal("no pick")
		}
		setConns(p, 3, 0)
	}
	e := s.buckets[localityBucketOf(&x.Dst)].find(&x.Dst, s.now(), s.expiration.Load())
	if e == nil || e.n != lblcrSetCap {
		t.Fatalf("set size %v, want %d", e, lblcrSetCap)
	}
}

// TestSHAndDHMatchKernelBuckets: with weights 1,1,1 bucket b holds server
// b mod 3, so a client's server shows its bucket. The buckets are worked from
// the kernel's formulas:
//
//	sh: hash_32(port + addr, 8) = ((port + addr) * 0x61C88647 mod 2^32) >> 24
//	dh: (addr * 2654435761) mod 256
//
// 198.18.0.1 = 0xC6120001: sh bucket 188 (C), with port 8080 bucket 5 (C);
// dh bucket 177 (A). 198.18.7.42: sh 225 (A), port 8080 42 (A); dh 10 (B).
// 10.0.0.1: sh 39 (A), port 8080 112 (B); dh 177 (A).
func TestSHAndDHMatchKernelBuckets(t *testing.T) {
	d := mkDests(1, 1, 1)
	sh := newSched(t, "sh", 0, d)
	shPort := newSched(t, "sh", FlagPort, d)
	dh := newSched(t, "dh", 0, d)
	for _, c := range []struct {
		addr              [4]byte
		sh, shPort, dhDst byte
	}{
		{[4]byte{198, 18, 0, 1}, 'C', 'C', 'A'},
		{[4]byte{198, 18, 7, 42}, 'A', 'A', 'B'},
		{[4]byte{10, 0, 0, 1}, 'A', 'B', 'A'},
	} {
		a := inet.AddrFrom4(c.addr)
		k := &Key{Src: a, Dst: a, SrcPort: 8080}
		if got := letterOf(d, sh.Pick(k)); got != c.sh {
			t.Errorf("sh %v = %c, want %c", c.addr, got, c.sh)
		}
		if got := letterOf(d, shPort.Pick(k)); got != c.shPort {
			t.Errorf("sh-port %v = %c, want %c", c.addr, got, c.shPort)
		}
		if got := letterOf(d, dh.Pick(k)); got != c.dhDst {
			t.Errorf("dh %v = %c, want %c", c.addr, got, c.dhDst)
		}
	}
}

// TestSHFillsByWeight: buckets go in runs of each weight, cycling in list
// order (ip_vs_sh_reassign); weight 0 still takes one bucket.
func TestSHFillsByWeight(t *testing.T) {
	d := mkDests(2, 0, 3)
	tab := fillBuckets(d)
	want := "AABCCC" // then again from A
	for i := 0; i < 12; i++ {
		if got := letterOf(d, tab[i]); got != want[i%len(want)] {
			t.Fatalf("bucket %d = %c, want %c", i, got, want[i%len(want)])
		}
	}
}
