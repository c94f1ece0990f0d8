package dataplane

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeMeterSteering records the limits the meter sets, by slot.
type fakeMeterSteering struct {
	limits map[uint32]uint64
	writes int
}

func (f *fakeMeterSteering) SetSteerLimit(slot uint32, pps, burst uint64) error {
	f.limits[slot] = pps
	f.writes++
	return nil
}

// meterHarness runs the meter on a fake clock, one queue (slot 3, eth0
// queue 1), with counters the test advances per tick.
type meterHarness struct {
	t     *testing.T
	m     *steerMeter
	steer *fakeMeterSteering
	log   *bytes.Buffer
	now   time.Time
	r     meterReading
}

func newMeterHarness(t *testing.T, mode SteerLimit) *meterHarness {
	h := &meterHarness{t: t, steer: &fakeMeterSteering{limits: map[uint32]uint64{}}, log: &bytes.Buffer{},
		now: time.Unix(1000, 0), r: meterReading{Slot: 3, Iface: "eth0", Queue: 1}}
	h.m = newSteerMeter(slog.New(slog.NewTextHandler(h.log, nil)), h.steer)
	if err := h.m.setMode(mode, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	h.m.tick(h.now, []meterReading{h.r}) // the first reading only
	return h
}

// step advances the clock by 100 ms, during which the queue's ring
// overflowed full times and its meter admitted and dropped packets.
func (h *meterHarness) step(full, admitted, dropped uint64) uint64 {
	h.now = h.now.Add(100 * time.Millisecond)
	h.r.RingFull += full
	h.r.Admitted += admitted
	h.r.Dropped += dropped
	h.m.tick(h.now, []meterReading{h.r})
	return h.steer.limits[3]
}

func (h *meterHarness) lines(msg string) int {
	return strings.Count(h.log.String(), `msg="`+msg+`"`)
}

func TestSteerMeterAIMD(t *testing.T) {
	h := newMeterHarness(t, SteerLimit{Auto: true})
	if l := h.step(0, 50_000, 0); l != 0 {
		t.Fatalf("no overflow: limit %d, want unlimited", l)
	}
	// The ring overflows while 200k packets/s get through: 0.8 x 200k.
	if l := h.step(500, 20_000, 0); l != 160_000 {
		t.Fatalf("overflow at 200k/s: limit %d, want 160000", l)
	}
	if h.lines("steer meter engaged") != 1 {
		t.Fatalf("engage log lines:\n%s", h.log)
	}
	// Still overflowing at the limit: cut again, from the admitted rate.
	if l := h.step(10, 16_000, 4_000); l != 128_000 {
		t.Fatalf("second overflow: limit %d, want 128000", l)
	}
	// A cut never raises the limit, even if the interval admitted more.
	if l := h.step(1, 30_000, 0); l != 128_000 {
		t.Fatalf("overflow with more admitted: limit %d, want 128000 (never raised by a cut)", l)
	}
	// The meter drops, the ring holds: +10% per interval.
	l := h.step(0, 12_800, 3_000)
	if l != 140_801 {
		t.Fatalf("drops without overflow: limit %d, want 140801", l)
	}
	l = h.step(0, 14_000, 1_000)
	if l != 154_882 {
		t.Fatalf("drops without overflow: limit %d, want 154882", l)
	}
	// Calm: neither overflow nor drops. The limit holds for SteerLimitHold,
	// then goes.
	for i := 0; i < int(SteerLimitHold/(100*time.Millisecond))-1; i++ {
		if l := h.step(0, 1_000, 0); l != 154_882 {
			t.Fatalf("calm interval %d: limit %d, want it held", i, l)
		}
	}
	if l := h.step(0, 1_000, 0); l != 0 {
		t.Fatalf("calm for %v: limit %d, want unlimited", SteerLimitHold, l)
	}
	if h.lines("steer meter engaged") != 1 || h.lines("steer meter disengaged") != 1 {
		t.Fatalf("one line each way, got:\n%s", h.log)
	}
	if !strings.Contains(h.log.String(), "dropped=8000") {
		t.Errorf("disengage line lacks the meter's drops while engaged:\n%s", h.log)
	}
	// Unlimited and calm: nothing is written.
	w := h.steer.writes
	h.step(0, 1_000, 0)
	if h.steer.writes != w {
		t.Errorf("calm and unlimited: %d writes", h.steer.writes-w)
	}
}

func TestSteerMeterFloor(t *testing.T) {
	h := newMeterHarness(t, SteerLimit{Auto: true})
	// The known flows alone overflow the ring: nothing metered got
	// through, and the limit stays at the floor while it lasts.
	for i := 0; i < 100; i++ {
		if l := h.step(1000, 0, 0); l != SteerLimitFloor {
			t.Fatalf("interval %d: limit %d, want the floor %d", i, l, SteerLimitFloor)
		}
	}
	if n := h.lines("steer meter engaged"); n != 1 {
		t.Errorf("%d engage lines, want 1 (overflows keep it engaged):\n%s", n, h.log)
	}
	if n := h.lines("steer meter disengaged"); n != 0 {
		t.Errorf("disengaged while the ring overflowed:\n%s", h.log)
	}
}

func TestSteerMeterCountersBack(t *testing.T) {
	h := newMeterHarness(t, SteerLimit{Auto: true})
	h.step(0, 10_000, 0)
	// A new socket: its counters start again from 0. No overflow is
	// invented from the difference.
	h.r = meterReading{Slot: 3, Iface: "eth0", Queue: 1}
	if l := h.step(0, 0, 0); l != 0 {
		t.Fatalf("counters went back: limit %d, want unlimited", l)
	}
}

func TestSteerMeterFixedAndOff(t *testing.T) {
	h := newMeterHarness(t, SteerLimit{PPS: 50_000})
	if l := h.steer.limits[3]; l != 50_000 {
		t.Fatalf("fixed: limit %d, want 50000", l)
	}
	// A fixed limit never moves.
	if l := h.step(1000, 5_000, 0); l != 50_000 {
		t.Fatalf("fixed after overflow: limit %d", l)
	}
	if h.log.Len() != 0 {
		t.Errorf("fixed mode logged:\n%s", h.log)
	}
	// Off, then auto: every queue starts unlimited.
	if err := h.m.setMode(SteerLimit{}, []uint32{3, 4}); err != nil {
		t.Fatal(err)
	}
	if h.steer.limits[3] != 0 || h.steer.limits[4] != 0 {
		t.Errorf("off: limits %v", h.steer.limits)
	}
	if err := h.m.setMode(SteerLimit{PPS: 1 << 31}, []uint32{3}); err == nil {
		t.Error("a limit above 2^30 was accepted")
	}
	if got := (SteerLimit{Auto: true}).String() + " " + (SteerLimit{PPS: 7}).String(); got != "auto 7" {
		t.Errorf("String: %q", got)
	}
}
