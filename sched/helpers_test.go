package sched

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/govs/govs/inet"
)

// allNames is every IPVS scheduler plus nothing else, in the order Names
// lists them.
var allNames = []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos"}

// mkDests returns destinations 198.18.0.1, .2, ... port 80 with the given
// weights; the tests call them A, B, C, ... in that order.
func mkDests(weights ...int) []*Dest {
	out := make([]*Dest, len(weights))
	for i, w := range weights {
		out[i] = NewDest(testAddr(i), 80, w)
	}
	return out
}

// testAddr is 198.18.x.y for i (0 -> 198.18.0.1).
func testAddr(i int) inet.Addr {
	n := i + 1
	return inet.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
}

func newSched(t testing.TB, name string, flags Flags, dests []*Dest) Scheduler {
	t.Helper()
	s, err := New(name, flags)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	if dests != nil {
		s.Update(dests)
	}
	return s
}

// setConns sets the counters through Transition, as the connection table does.
func setConns(d *Dest, active, inactive int) {
	for d.ActiveConns() > int64(active) {
		d.Transition(ClassActive, ClassNone)
	}
	for d.ActiveConns() < int64(active) {
		d.Transition(ClassNone, ClassActive)
	}
	for d.InactiveConns() > int64(inactive) {
		d.Transition(ClassInactive, ClassNone)
	}
	for d.InactiveConns() < int64(inactive) {
		d.Transition(ClassNone, ClassInactive)
	}
}

// overload marks d overloaded through its thresholds, as ipvsadm -x does.
func overload(d *Dest) {
	d.SetThresholds(1, 0)
	d.Transition(ClassNone, ClassInactive)
	if !d.Overloaded() {
		panic("overload: not overloaded")
	}
}

// letters names a pick sequence: A for dests[0], ..., '-' for nil.
func letters(dests []*Dest, picks []*Dest) string {
	var b strings.Builder
	for _, p := range picks {
		b.WriteByte(letterOf(dests, p))
	}
	return b.String()
}

func letterOf(dests []*Dest, p *Dest) byte {
	if p == nil {
		return '-'
	}
	for i, d := range dests {
		if d == p {
			return byte('A' + i)
		}
	}
	return '?'
}

func pickSeq(s Scheduler, n int) []*Dest {
	out := make([]*Dest, n)
	for i := range out {
		out[i] = s.Pick(&Key{})
	}
	return out
}

// randomKeys returns n keys with random IPv4 and IPv6 sources and
// destinations and random ports, from a fixed seed.
func randomKeys(n int, seed uint64) []Key {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := make([]Key, n)
	for i := range keys {
		k := &keys[i]
		k.Proto = 6
		if i%4 == 3 {
			for j := range k.Src {
				k.Src[j] = byte(r.Uint32())
				k.Dst[j] = byte(r.Uint32())
			}
			k.Src[0], k.Dst[0] = 0x20, 0x20
		} else {
			k.Src = inet.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			k.Dst = inet.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		k.SrcPort = uint16(r.Uint32())
		k.DstPort = 80
	}
	return keys
}

// shares counts picks per destination index over keys; nil picks go to -1.
func shares(s Scheduler, dests []*Dest, keys []Key) map[int]int {
	idx := make(map[*Dest]int, len(dests))
	for i, d := range dests {
		idx[d] = i
	}
	out := map[int]int{}
	for i := range keys {
		p := s.Pick(&keys[i])
		if p == nil {
			out[-1]++
			continue
		}
		j, ok := idx[p]
		if !ok {
			panic("picked a destination outside the list")
		}
		out[j]++
	}
	return out
}
