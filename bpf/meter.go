package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// The steering meter (steer.c, steer_admit): a packet the program is about
// to steer to the AF_XDP socket in xsks slot base+q passes that slot's
// token bucket first, unless it belongs to a flow the workers know (an
// entry in a flow map, SteerOnly or not), is a SYN the SYN budget
// admitted, or is an ICMP error. Over the rate it is dropped
// (Counters.SteerMetered) instead of being copied into a ring the worker
// cannot empty fast enough.

// MaxSteerLimit bounds SetSteerLimit's rate and burst: burst * 1e9 must
// fit the program's 64-bit credit.
const MaxSteerLimit = 1 << 30

// XSKSlots is the number of slots of the xsks map (XSK_SLOTS in maps.h),
// and so of the steering meter's buckets.
const XSKSlots = 256

// SteerMeter is one slot's meter: its rate and the packets it admitted and
// dropped since the program was loaded.
type SteerMeter struct {
	Rate     uint64 // packets per second admitted; 0: unlimited
	Burst    uint64 // the bucket's depth in packets
	Admitted uint64 // metered packets let through (counted while unlimited too)
	Dropped  uint64 // metered packets dropped over the rate
}

// SetSteerLimit sets the rate (packets per second, 0: unlimited) and burst
// (packets; 0: a hundredth of a second's worth, at least 64) of slot's
// steering meter. Both are at most MaxSteerLimit.
func (s *Steering) SetSteerLimit(slot uint32, perSecond, burst uint64) error {
	if slot >= XSKSlots {
		return fmt.Errorf("set steer limit: slot %d out of range", slot)
	}
	if perSecond > MaxSteerLimit || burst > MaxSteerLimit {
		return fmt.Errorf("set steer limit %d/s burst %d: above %d", perSecond, burst, MaxSteerLimit)
	}
	if burst == 0 {
		burst = max(perSecond/100, 64)
	}
	v := steerSteerLimit{Rate: perSecond, Burst: burst}
	if err := s.objs.SteerLimits.Update(slot, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set steer limit of slot %d: %w", slot, err)
	}
	return nil
}

// SteerMeter returns slot's meter settings and counters.
func (s *Steering) SteerMeter(slot uint32) (SteerMeter, error) {
	var l steerSteerLimit
	if err := s.objs.SteerLimits.Lookup(slot, &l); err != nil {
		return SteerMeter{}, fmt.Errorf("steer limit of slot %d: %w", slot, err)
	}
	var b steerSteerBucket
	if err := s.objs.SteerBuckets.Lookup(slot, &b); err != nil {
		return SteerMeter{}, fmt.Errorf("steer meter of slot %d: %w", slot, err)
	}
	return SteerMeter{Rate: l.Rate, Burst: l.Burst, Admitted: b.Admitted, Dropped: b.Dropped}, nil
}
