package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/inet"
)

// The XDP fast path (include/fastpath.h): the workers write a flow entry
// per direction of an established connection, and the steering program
// rewrites and forwards that direction's packets itself.

// FastDests is the number of real servers the fast path keeps counters
// for: a real server with a larger id must not get flow entries.
const FastDests = 16384

// Flow names one direction of a connection: a packet's addresses, ports
// (host byte order) and protocol as received.
type Flow struct {
	Src, Dst         inet.Addr
	SrcPort, DstPort uint16
	Proto            uint8
}

// FlowOp says what the fast path does to a flow's packets besides
// decrementing the TTL and setting the MACs.
type FlowOp uint8

const (
	FlowForward FlowOp = 0                       // DR: addresses unchanged
	FlowSetSrc  FlowOp = 1 << 0                  // SNAT: NAT reply
	FlowSetDst  FlowOp = 1 << 1                  // DNAT: NAT request
	FlowFullNAT        = FlowSetSrc | FlowSetDst // both: full-NAT
	FlowEncap   FlowOp = 1 << 2                  // IP-in-IP: LVS-TUN request
)

// flowReply is FLOW_REPLY: the direction is counted as outgoing.
const flowReply = 1 << 3

// flowSeqAdj is FLOW_SEQ_ADJ: the TCP sequence numbers and window are
// translated (SeqAdd, AckAdd, WinShift).
const flowSeqAdj = 1 << 4

// flowSteer is FLOW_STEER: the entry only marks a flow the workers know.
const flowSteer = 1 << 5

// FlowAction is how the fast path forwards a flow's packets.
type FlowAction struct {
	Op FlowOp
	// Src and SrcPort replace the source (FlowSetSrc); Dst and DstPort the
	// destination (FlowSetDst). For FlowEncap they are the outer header's
	// addresses, of the inner packet's family.
	Src, Dst         inet.Addr
	SrcPort, DstPort uint16
	DstMAC, SrcMAC   [6]byte
	Ifindex          int    // egress interface (a redirect, also when it is the ingress one)
	DestID           uint32 // real server, for its counters (< FastDests)
	Reply            bool   // counted as outgoing traffic of DestID
	// MaxL3Len: longer IP packets go to the workers (for FlowEncap, the
	// path MTU less the outer header, so that they answer with
	// "fragmentation needed"); 0 means no limit.
	MaxL3Len  int
	FlowLabel uint32 // outer IPv6 flow label (FlowEncap)
	// IdleTimeout: a packet after this long without one goes to the
	// workers (the connection's timeout in its state); 0 means none.
	IdleTimeout time.Duration
	// Seen is when the worker last forwarded a packet of the flow, in
	// CLOCK_MONOTONIC nanoseconds (0: now): the start of the idle time.
	Seen int64
	// SeqAdd, AckAdd and WinShift translate a SYN-proxied TCP connection
	// as packet.AdjustTCP does: seq += SeqAdd; ack += AckAdd when ACK is
	// set; the window shifted left by WinShift (right when negative). Any
	// of them non-zero sends the flow's segments with TCP options (SACK
	// blocks) to the workers. Only for TCP flows of NAT and full-NAT.
	SeqAdd, AckAdd uint32
	WinShift       int8
	// SteerOnly marks a flow the workers know but forward themselves (the
	// fast path is off, or the egress interface cannot take redirected
	// frames): the program steers its packets to the workers as before,
	// but past the steering meter (SetSteerLimit), and rewrites nothing.
	SteerOnly bool
}

// MonotonicNow returns CLOCK_MONOTONIC in nanoseconds, the clock of
// bpf_ktime_get_ns and so of FlowLastSeen and FlowAction.Seen.
func MonotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// netPort returns port p as the maps hold it: in network byte order.
func netPort(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// is4 reports whether f is an IPv4 flow, whose entry lives in flows4; the
// others' live in flows. The program picks the map by the packet's
// family, and an IPv4 packet's addresses are both IPv4-mapped.
func (f *Flow) is4() bool { return f.Src.Is4() && f.Dst.Is4() }

// key is f's key in flows.
func (f *Flow) key() steerFlowKey {
	return steerFlowKey{Saddr: f.Src, Daddr: f.Dst, Sport: netPort(f.SrcPort), Dport: netPort(f.DstPort), Proto: f.Proto}
}

// key4 is f's key in flows4 (an IPv4 flow).
func (f *Flow) key4() steerFlowKey4 {
	return steerFlowKey4{Saddr: f.Src.As4(), Daddr: f.Dst.As4(), Sport: netPort(f.SrcPort), Dport: netPort(f.DstPort), Proto: f.Proto}
}

// FlowBuf is the memory a goroutine's flow-map calls (InstallFlow,
// DeleteFlow, FlowLastSeen) keep their key and value in. cilium/ebpf takes
// both as interfaces, so a key or value on the caller's stack escapes to
// the heap: an allocation per call, two or three per connection that gets
// flow entries. A worker keeps one FlowBuf, and its calls allocate
// nothing. Not for concurrent use; a nil *FlowBuf allocates one per call.
type FlowBuf struct {
	key  steerFlowKey
	key4 steerFlowKey4
	val  steerFlowAction
	old  steerFlowAction
}

// lookupFlow reads f's entry from the map of its family into b.val.
func (s *Steering) lookupFlow(b *FlowBuf, f *Flow) error {
	if f.is4() {
		b.key4 = f.key4()
		return s.objs.Flows4.Lookup(&b.key4, &b.val)
	}
	b.key = f.key()
	return s.objs.Flows.Lookup(&b.key, &b.val)
}

// SetFastPath turns the fast path on or off. Off, every packet of a
// service goes to the workers; entries stay, and only mark their flows as
// known to the workers (past the steering meter, as SteerOnly entries).
func (s *Steering) SetFastPath(on bool) error {
	s.fastMu.Lock()
	defer s.fastMu.Unlock()
	cfg := steerFastConfig{Gen: s.gen.Load()}
	if on {
		cfg.Enabled = 1
	}
	if err := s.objs.FastCfg.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fast path config: %w", err)
	}
	return nil
}

// FastPathEnabled reports whether the fast path is on.
func (s *Steering) FastPathEnabled() bool {
	var cfg steerFastConfig
	if err := s.objs.FastCfg.Lookup(uint32(0), &cfg); err != nil {
		return false
	}
	return cfg.Enabled != 0
}

// FlowGeneration is the generation that InstallFlow stamps entries with;
// InvalidateFlows moves it on.
func (s *Steering) FlowGeneration() uint32 { return s.gen.Load() }

// InvalidateFlows makes every flow entry written so far stale at once: the
// program ignores them and the workers write fresh ones. It returns the new
// generation.
func (s *Steering) InvalidateFlows() (uint32, error) {
	s.fastMu.Lock()
	defer s.fastMu.Unlock()
	var cfg steerFastConfig
	if err := s.objs.FastCfg.Lookup(uint32(0), &cfg); err != nil {
		return s.gen.Load(), fmt.Errorf("fast path config: %w", err)
	}
	cfg.Gen = s.gen.Load() + 1
	if err := s.objs.FastCfg.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		return s.gen.Load(), fmt.Errorf("fast path config: %w", err)
	}
	s.gen.Store(cfg.Gen)
	return cfg.Gen, nil
}

// ErrFlowsFull is returned by InstallFlow when the flow map of the flow's
// family is full: the connection stays on the workers.
var ErrFlowsFull = errors.New("fast path flow map full")

// InstallFlow writes (or replaces) the entry of flow f, stamped with
// generation gen (from FlowGeneration, read before the action was built,
// so that an invalidation in between makes the entry stale rather than
// wrong).
func (s *Steering) InstallFlow(b *FlowBuf, f Flow, a *FlowAction, gen uint32) error {
	if b == nil {
		b = new(FlowBuf)
	}
	var err error
	if b.val, err = flowEntry(&f, a, gen); err != nil {
		return err
	}
	if f.is4() {
		b.key4 = f.key4()
		err = s.objs.Flows4.Update(&b.key4, &b.val, ebpf.UpdateAny)
	} else {
		b.key = f.key()
		err = s.objs.Flows.Update(&b.key, &b.val, ebpf.UpdateAny)
	}
	if err != nil {
		if errors.Is(err, unix.E2BIG) {
			return ErrFlowsFull
		}
		return fmt.Errorf("install flow: %w", err)
	}
	return nil
}

// flowEntry builds the map entry of flow f forwarded by a.
func flowEntry(f *Flow, a *FlowAction, gen uint32) (steerFlowAction, error) {
	if a.DestID >= FastDests {
		return steerFlowAction{}, fmt.Errorf("install flow: real server id %d has no fast-path counters", a.DestID)
	}
	if a.Ifindex <= 0 {
		return steerFlowAction{}, fmt.Errorf("install flow: invalid ifindex %d", a.Ifindex)
	}
	// The program builds the outer header of the inner packet's family.
	if a.Op&FlowEncap != 0 && (a.Src.Is4() != f.Dst.Is4() || a.Dst.Is4() != f.Dst.Is4()) {
		return steerFlowAction{}, errors.New("install flow: tunnel addresses of another family than the packet's")
	}
	seqAdj := a.SeqAdd != 0 || a.AckAdd != 0 || a.WinShift != 0
	if seqAdj && f.Proto != unix.IPPROTO_TCP {
		return steerFlowAction{}, errors.New("install flow: sequence translation of a flow that is not TCP")
	}
	v := steerFlowAction{
		Saddr:     a.Src,
		Daddr:     a.Dst,
		Sport:     netPort(a.SrcPort),
		Dport:     netPort(a.DstPort),
		Dmac:      a.DstMAC,
		Smac:      a.SrcMAC,
		Ifindex:   uint32(a.Ifindex),
		DestId:    a.DestID,
		Gen:       gen,
		FlowLabel: a.FlowLabel & 0xfffff,
		MaxL3Len:  0xffff,
		Flags:     uint8(a.Op),
	}
	if a.MaxL3Len > 0 && a.MaxL3Len < 0xffff {
		v.MaxL3Len = uint16(a.MaxL3Len)
	}
	if a.Reply {
		v.Flags |= flowReply
	}
	if a.SteerOnly {
		v.Flags |= flowSteer
	}
	if seqAdj {
		v.Flags |= flowSeqAdj
		v.SeqAdd, v.AckAdd, v.WinShift = a.SeqAdd, a.AckAdd, a.WinShift
	}
	v.LastSeen = uint64(a.Seen)
	if a.Seen <= 0 {
		v.LastSeen = uint64(MonotonicNow())
	}
	v.IdleTimeout = math.MaxInt64
	if a.IdleTimeout > 0 {
		v.IdleTimeout = uint64(a.IdleTimeout)
	}
	return v, nil
}

// DeleteFlow removes the entry of f; a missing entry is not an error.
func (s *Steering) DeleteFlow(b *FlowBuf, f Flow) error {
	if b == nil {
		b = new(FlowBuf)
	}
	var err error
	if f.is4() {
		b.key4 = f.key4()
		err = ignoreMissing(s.objs.Flows4.Delete(&b.key4))
		// The previous govsd's program, attached until the swap, reads
		// its copy in flows (moveFlows4): it must stop too.
		if s.moving4.Load() {
			b.key = f.key()
			err = errors.Join(err, ignoreMissing(s.objs.Flows.Delete(&b.key)))
		}
	} else {
		b.key = f.key()
		err = ignoreMissing(s.objs.Flows.Delete(&b.key))
	}
	if err != nil {
		return fmt.Errorf("delete flow: %w", err)
	}
	return nil
}

// ignoreMissing is err, but nil for a key that is not in the map.
func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// FlowLastSeen returns when the program last forwarded a packet of f, or
// the entry's Seen if it has forwarded none, in CLOCK_MONOTONIC
// nanoseconds (bpf_ktime_get_coarse_ns: a tick behind at most), updated at most every ~67 ms; ok is false
// when f has no entry.
func (s *Steering) FlowLastSeen(b *FlowBuf, f Flow) (ns int64, ok bool) {
	if b == nil {
		b = new(FlowBuf)
	}
	if err := s.lookupFlow(b, &f); err != nil || b.val.LastSeen == 0 {
		return 0, false
	}
	seen := b.val.LastSeen
	// Until the swap the previous govsd's program stamps its copy.
	if f.is4() && s.moving4.Load() {
		b.key = f.key()
		if s.objs.Flows.Lookup(&b.key, &b.old) == nil && int64(b.old.LastSeen-seen) > 0 {
			seen = b.old.LastSeen
		}
	}
	return int64(seen), true
}

// FlowCurrent reports whether f has an entry of the current generation:
// one the program acts on.
func (s *Steering) FlowCurrent(f Flow) bool {
	b := new(FlowBuf)
	return s.lookupFlow(b, &f) == nil && b.val.Gen == s.gen.Load()
}

// FlowCount counts the entries of the flow maps (for tests and listings;
// it walks them), each flow once while IPv4 ones are being moved
// (moveFlows4).
func (s *Steering) FlowCount() int {
	var (
		k  steerFlowKey
		k4 steerFlowKey4
		v  steerFlowAction
		n  int
	)
	moving := s.moving4.Load()
	it := s.objs.Flows.Iterate()
	for it.Next(&k, &v) {
		if !moving || !(inet.Addr(k.Saddr).Is4() && inet.Addr(k.Daddr).Is4()) {
			n++
		}
	}
	it = s.objs.Flows4.Iterate()
	for it.Next(&k4, &v) {
		n++
	}
	return n
}

// DestCounters are the fast path's packet and byte counters of a real
// server, summed over CPUs.
type DestCounters struct {
	InPkts, InBytes, OutPkts, OutBytes uint64
}

// ResetFastDestCounters zeroes the fast path's counters of real server id,
// whose id is being given to another.
func (s *Steering) ResetFastDestCounters(id uint32) error {
	if id >= FastDests {
		return nil
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if err := s.objs.FastStats.Put(id, make([]steerDestCounters, n)); err != nil {
		return fmt.Errorf("reset fast path counters of %d: %w", id, err)
	}
	return nil
}

// FastDestCounters returns the fast path's counters of real server id.
func (s *Steering) FastDestCounters(id uint32) (DestCounters, error) {
	if id >= FastDests {
		return DestCounters{}, nil
	}
	var perCPU []steerDestCounters
	if err := s.objs.FastStats.Lookup(id, &perCPU); err != nil {
		return DestCounters{}, fmt.Errorf("fast path counters of %d: %w", id, err)
	}
	var c DestCounters
	for _, v := range perCPU {
		c.InPkts += v.InPkts
		c.InBytes += v.InBytes
		c.OutPkts += v.OutPkts
		c.OutBytes += v.OutBytes
	}
	return c, nil
}
