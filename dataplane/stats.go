package dataplane

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a real server's (or a service's) traffic counters, as
// ipvsadm --stats shows them.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

func (s *Stats) add(o Stats) {
	s.Conns += o.Conns
	s.InPkts += o.InPkts
	s.OutPkts += o.OutPkts
	s.InBytes += o.InBytes
	s.OutBytes += o.OutBytes
}

func (s Stats) sub(o Stats) Stats {
	return Stats{s.Conns - o.Conns, s.InPkts - o.InPkts, s.OutPkts - o.OutPkts, s.InBytes - o.InBytes, s.OutBytes - o.OutBytes}
}

// Rates are per-second rates (ipvsadm --rate).
type Rates struct {
	CPS, InPPS, OutPPS, InBPS, OutBPS uint64
}

// destCounters is one worker's slot of a real server's counters. Each worker
// writes only its own slot, on its own cache line.
type destCounters struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
	_                                         [24]byte
}

// destStats holds a real server's counters for every worker, the baseline
// that -Z set, and the estimated rates.
type destStats struct {
	perWorker []destCounters
	// fast, when set, reads what the XDP fast path forwarded for this
	// real server (its conns are counted by the workers).
	fast func() Stats

	mu    sync.Mutex
	base  Stats
	rates Rates
	// estimator state
	last   Stats
	avg    [5]float64
	primed bool
}

func newDestStats(workers int) *destStats {
	return &destStats{perWorker: make([]destCounters, max(workers, 1))}
}

func (s *destStats) total() Stats {
	var t Stats
	for i := range s.perWorker {
		c := &s.perWorker[i]
		t.Conns += c.conns.Load()
		t.InPkts += c.inPkts.Load()
		t.OutPkts += c.outPkts.Load()
		t.InBytes += c.inBytes.Load()
		t.OutBytes += c.outBytes.Load()
	}
	if s.fast != nil {
		t.add(s.fast())
	}
	return t
}

// Stats returns the counters since start or the last Zero.
func (d *Dest) Stats() Stats {
	d.stats.mu.Lock()
	defer d.stats.mu.Unlock()
	return d.stats.total().sub(d.stats.base)
}

// Rates returns the estimated per-second rates.
func (d *Dest) Rates() Rates {
	d.stats.mu.Lock()
	defer d.stats.mu.Unlock()
	return d.stats.rates
}

// Zero resets the counters (ipvsadm -Z); rates decay on their own.
func (d *Dest) Zero() {
	d.stats.mu.Lock()
	defer d.stats.mu.Unlock()
	d.stats.base = d.stats.total()
}

// estimateEvery is the rate estimator's tick, as IPVS's (2 s).
const estimateEvery = 2 * time.Second

// estimate updates the rates from the counters' growth over dt, smoothed
// like IPVS's estimator (an exponentially weighted moving average).
func (s *destStats) estimate(dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.total()
	delta := cur.sub(s.last)
	s.last = cur
	if !s.primed {
		s.primed = true
		return
	}
	sec := dt.Seconds()
	sample := [5]float64{
		float64(delta.Conns) / sec, float64(delta.InPkts) / sec, float64(delta.OutPkts) / sec,
		float64(delta.InBytes) / sec, float64(delta.OutBytes) / sec,
	}
	for i := range s.avg {
		// IPVS weighs new samples by 1/4 for every rate.
		s.avg[i] += (sample[i] - s.avg[i]) / 4
	}
	s.rates = Rates{uint64(s.avg[0] + 0.5), uint64(s.avg[1] + 0.5), uint64(s.avg[2] + 0.5), uint64(s.avg[3] + 0.5), uint64(s.avg[4] + 0.5)}
}
