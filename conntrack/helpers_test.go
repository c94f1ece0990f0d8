package conntrack

import (
	"testing"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/sched"
)

const sec = int64(time.Second)

var (
	vip  = inet.AddrFrom4([4]byte{198, 18, 255, 1})
	rip  = inet.AddrFrom4([4]byte{198, 19, 0, 10})
	lip  = inet.AddrFrom4([4]byte{198, 19, 255, 1})
	vip6 = inet.AddrFromSlice16([]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
)

// clientAddr returns a distinct client address for every i < 2^17.
func clientAddr(i int) inet.Addr {
	return inet.AddrFrom4([4]byte{198, 18 | byte(i>>16&1), byte(i >> 8), byte(i)})
}

// natConn returns a NAT connection whose tuples are unique for every i < 2^22.
func natConn(i int, proto uint8) Conn {
	src := clientAddr(i % (1 << 17))
	sport := uint16(1024 + i/(1<<17))
	return Conn{
		Orig:  Tuple{Src: src, Dst: vip, SrcPort: sport, DstPort: 80, Proto: proto},
		Reply: Tuple{Src: rip, Dst: src, SrcPort: 8080, DstPort: sport, Proto: proto},
		Dest:  uint32(i % 4),
		Fwd:   FwdNAT,
	}
}

// drConn returns a DR connection (original tuple only).
func drConn(i int, proto uint8) Conn {
	c := natConn(i, proto)
	c.Reply = Tuple{}
	c.Fwd = FwdDR
	return c
}

// classCounter keeps per-destination active/inactive counts from OnClass.
type classCounter struct {
	active, inactive map[uint32]int
	t                *testing.T
}

func newClassCounter(t *testing.T) *classCounter {
	return &classCounter{active: map[uint32]int{}, inactive: map[uint32]int{}, t: t}
}

func (cc *classCounter) onClass(dest uint32, from, to sched.ConnClass) {
	if from == to {
		cc.t.Errorf("OnClass(%d) called with from == to == %d", dest, from)
	}
	switch from {
	case sched.ClassActive:
		cc.active[dest]--
	case sched.ClassInactive:
		cc.inactive[dest]--
	}
	switch to {
	case sched.ClassActive:
		cc.active[dest]++
	case sched.ClassInactive:
		cc.inactive[dest]++
	}
	if cc.active[dest] < 0 || cc.inactive[dest] < 0 {
		cc.t.Errorf("dest %d count went negative: active %d inactive %d", dest, cc.active[dest], cc.inactive[dest])
	}
}

// check compares the counts with a census of the table.
func (cc *classCounter) check(t *testing.T, tb *Table) {
	t.Helper()
	act, inact := map[uint32]int{}, map[uint32]int{}
	tb.Walk(func(c *Conn) bool {
		if c.State.Class() == sched.ClassActive {
			act[c.Dest]++
		} else {
			inact[c.Dest]++
		}
		return true
	})
	for d := range uint32(8) {
		if cc.active[d] != act[d] || cc.inactive[d] != inact[d] {
			t.Fatalf("dest %d: callbacks say active %d inactive %d, table holds %d/%d",
				d, cc.active[d], cc.inactive[d], act[d], inact[d])
		}
	}
}
