package conntrack

import (
	"testing"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
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
func natConn(i int, proto lvs.Proto) Conn {
	src := clientAddr(i % (1 << 17))
	sport := uint16(1024 + i/(1<<17))
	return Conn{
		Orig:  Tuple{Src: src, Dst: vip, SrcPort: sport, DstPort: 80, Proto: proto},
		Reply: Tuple{Src: rip, Dst: src, SrcPort: 8080, DstPort: sport, Proto: proto},
		Dest:  uint32(i % 4),
		Fwd:   lvs.FwdNAT,
	}
}

// drConn returns a DR connection (original tuple only).
func drConn(i int, proto lvs.Proto) Conn {
	c := natConn(i, proto)
	c.Reply = Tuple{}
	c.Fwd = lvs.FwdDR
	return c
}

// activeInTest is the dataplane's mapping of states to IPVS's active and
// inactive connections (dataplane/class.go), for tests that count them
// from OnState.
func activeInTest(s State) bool {
	return s == StateEstablished || s == StateSynSent || s == StateSynRecv || s == StateSynAck
}

// classCounter keeps per-destination active/inactive counts from OnState.
type classCounter struct {
	active, inactive map[uint32]int
	t                *testing.T
}

func newClassCounter(t *testing.T) *classCounter {
	return &classCounter{active: map[uint32]int{}, inactive: map[uint32]int{}, t: t}
}

func (cc *classCounter) onState(dest uint32, from, to State) {
	if from == to {
		cc.t.Errorf("OnState(%d) called with from == to == %s", dest, from)
	}
	switch {
	case from == StateAbsent:
	case activeInTest(from):
		cc.active[dest]--
	default:
		cc.inactive[dest]--
	}
	switch {
	case to == StateAbsent:
	case activeInTest(to):
		cc.active[dest]++
	default:
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
		if activeInTest(c.State) {
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
