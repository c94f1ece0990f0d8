package dataplane

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/govs/govs/bpf"
)

// Overload protection: the steering meter's control loop. The XDP program
// passes every packet it would steer to a worker's AF_XDP socket through
// a token bucket of that socket's RX queue (bpf.Steering.SetSteerLimit),
// except the packets of flows the workers know (a flow entry, forwarding or
// SteerOnly: fastpath.go), SYNs the SYN budget admitted and ICMP errors.
// A worker that falls behind would otherwise get a full RX ring: the kernel
// still copies every frame, NAPI takes the CPU the worker needs, and the
// worker never writes the flow entries that would let the known flows past
// (receive livelock). Dropping new flows' packets in XDP, before the copy,
// keeps the worker's CPU for the traffic it can carry.
//
// With SteerLimit.Auto, every synGuardEvery the loop reads each queue's
// rx_ring_full counter and its meter's admitted and dropped counts, and
// sets the queue's limit by AIMD:
//   - the ring overflowed: limit = steerCut x the admitted rate of the last
//     interval (never above the current limit, never below
//     SteerLimitFloor);
//   - the meter dropped but the ring did not overflow: limit x steerRaise;
//   - neither for SteerLimitHold: unlimited again.
//
// It logs one line when a queue starts being metered and one when it stops.

const (
	// SteerLimitFloor is the lowest limit the auto meter sets, in packets
	// per second per queue: new flows always get in at this rate.
	SteerLimitFloor = 10_000
	// SteerLimitHold is how long a metered queue must see neither a ring
	// overflow nor a meter drop before its limit is lifted.
	SteerLimitHold = 3 * time.Second
	steerCut       = 0.8
	steerRaise     = 1.1
)

// SteerLimit configures the steering meter (config director.steer_limit).
// The zero value is off.
type SteerLimit struct {
	// Auto adapts each queue's limit to what its worker can take.
	Auto bool
	// PPS, without Auto, is a fixed limit per RX queue in packets per
	// second; 0 meters nothing.
	PPS uint64
}

func (l SteerLimit) String() string {
	switch {
	case l.Auto:
		return "auto"
	default:
		return fmt.Sprint(l.PPS)
	}
}

// meterReading is one queue's counters at one time.
type meterReading struct {
	Slot     uint32 // xsks slot: the interface's base + the queue
	Iface    string
	Queue    int
	RingFull uint64 // the socket's rx_ring_full
	Admitted uint64 // the meter's admitted packets
	Dropped  uint64 // the meter's dropped packets
}

// meterSteering is what the meter needs of the steering program; tests
// fake it.
type meterSteering interface {
	SetSteerLimit(slot uint32, perSecond, burst uint64) error
}

type steerMeter struct {
	log   *slog.Logger
	steer meterSteering

	mu     sync.Mutex
	mode   SteerLimit
	queues map[uint32]*meterState
	errs   int // SetSteerLimit failures, logged once
}

type meterState struct {
	prev    meterReading
	at      time.Time // when prev was read; zero before the first reading
	limit   uint64    // current limit; 0: unlimited
	since   time.Time // metered since
	calm    time.Time // since when neither overflow nor drops were seen
	dropped uint64    // Dropped when metering started
}

func newSteerMeter(log *slog.Logger, steer meterSteering) *steerMeter {
	return &steerMeter{log: log, steer: steer, queues: map[uint32]*meterState{}}
}

// setMode applies a new mode to the given slots: a fixed limit (or none) at
// once; auto starts unlimited and measures from the next tick.
func (m *steerMeter) setMode(mode SteerLimit, slots []uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mode.PPS > bpf.MaxSteerLimit {
		return fmt.Errorf("steer limit %d: above %d", mode.PPS, bpf.MaxSteerLimit)
	}
	m.mode = mode
	m.queues = map[uint32]*meterState{}
	pps := mode.PPS
	if mode.Auto {
		pps = 0
	}
	for _, s := range slots {
		if err := m.steer.SetSteerLimit(s, pps, 0); err != nil {
			return err
		}
	}
	return nil
}

// tick takes one reading of every queue and, in auto mode, adjusts their
// limits.
func (m *steerMeter) tick(now time.Time, rs []meterReading) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mode.Auto {
		return
	}
	for _, r := range rs {
		st := m.queues[r.Slot]
		if st == nil {
			st = &meterState{}
			m.queues[r.Slot] = st
		}
		if st.at.IsZero() {
			st.prev, st.at = r, now
			continue
		}
		dt := now.Sub(st.at).Seconds()
		if dt <= 0 {
			continue
		}
		full := delta(r.RingFull, st.prev.RingFull)
		admitted := delta(r.Admitted, st.prev.Admitted)
		dropped := delta(r.Dropped, st.prev.Dropped)
		st.prev, st.at = r, now
		rate := float64(admitted) / dt
		switch {
		case full > 0:
			limit := max(uint64(steerCut*rate), SteerLimitFloor)
			if st.limit != 0 {
				limit = min(limit, st.limit)
			}
			if st.limit == 0 {
				st.since, st.dropped = now, r.Dropped
				m.log.Info("steer meter engaged", "iface", r.Iface, "queue", r.Queue, "limit", limit,
					"rx_ring_full", full, "admitted_rate", uint64(rate))
			}
			m.set(st, r.Slot, limit)
			st.calm = now
		case dropped > 0 && st.limit != 0:
			m.set(st, r.Slot, min(uint64(float64(st.limit)*steerRaise)+1, bpf.MaxSteerLimit))
			st.calm = now
		case st.limit != 0 && now.Sub(st.calm) >= SteerLimitHold:
			m.set(st, r.Slot, 0)
			m.log.Info("steer meter disengaged", "iface", r.Iface, "queue", r.Queue,
				"metered_for", now.Sub(st.since).Round(100*time.Millisecond).String(),
				"dropped", delta(r.Dropped, st.dropped))
		}
	}
}

func (m *steerMeter) set(st *meterState, slot uint32, limit uint64) {
	if err := m.steer.SetSteerLimit(slot, limit, 0); err != nil {
		if m.errs == 0 {
			m.log.Warn("steer meter: set limit", "slot", slot, "err", err)
		}
		m.errs++
		return
	}
	st.limit = limit
}

// delta is a counter's growth, 0 when it went backwards (a new socket).
func delta(now, before uint64) uint64 {
	if now < before {
		return 0
	}
	return now - before
}

// meterSlots returns the xsks slots of every worker's sockets.
func (d *Director) meterSlots() []uint32 {
	var out []uint32
	for i, ifc := range d.ifaces {
		for _, w := range d.workers {
			if i < len(w.socks) && w.socks[i] != nil {
				out = append(out, ifc.base+uint32(w.q))
			}
		}
	}
	return out
}

// meterReadings reads every queue's ring and meter counters; a queue that
// cannot be read is left out.
func (d *Director) meterReadings() []meterReading {
	var out []meterReading
	for i, ifc := range d.ifaces {
		for _, w := range d.workers {
			if i >= len(w.socks) || w.socks[i] == nil {
				continue
			}
			st, err := w.socks[i].Stats()
			if err != nil {
				continue
			}
			slot := ifc.base + uint32(w.q)
			sm, err := d.steer.SteerMeter(slot)
			if err != nil {
				continue
			}
			out = append(out, meterReading{Slot: slot, Iface: ifc.Name, Queue: w.q,
				RingFull: st.RxRingFull, Admitted: sm.Admitted, Dropped: sm.Dropped})
		}
	}
	return out
}

// meterTick runs the steering meter's loop once (from housekeeping).
func (d *Director) meterTick(now time.Time) {
	if d.meter == nil {
		return
	}
	d.meter.mu.Lock()
	auto := d.meter.mode.Auto
	d.meter.mu.Unlock()
	if auto {
		d.meter.tick(now, d.meterReadings())
	}
}

// SetSteerLimit changes the steering meter's mode (at start and on reload):
// a fixed limit or none at once on every queue; auto starts unlimited.
func (d *Director) SetSteerLimit(l SteerLimit) error {
	if err := d.meter.setMode(l, d.meterSlots()); err != nil {
		return fmt.Errorf("steer limit: %w", err)
	}
	d.meterOn.Store(l.Auto || l.PPS > 0)
	return nil
}
