package dataplane

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
)

// The SYN-flood defence's control loop. The XDP program answers a service's
// SYNs with cookies when the service's endpoint_value carries
// bpf.VIPSynProxyOn, and, when it carries bpf.VIPSynProxyCapable, answers
// with cookies the SYNs its token bucket refuses to pass to the workers (the
// others are dropped). This file decides those flags: every synGuardEvery it
// reads each service's SYN counter and the workers' half-open counts and
// engages (sets On for) the syn_proxy: auto services under pressure.

const (
	// synGuardEvery is how often the flags are decided: short enough
	// that a flood engages the cookies before the SYN_RECV entries of
	// the first tenth of a second fill much of the table, long enough
	// that reading one per-CPU counter per service costs nothing.
	synGuardEvery = 100 * time.Millisecond
	// SynGuardHold is how long an engaged auto service stays engaged
	// after its SYN rate and the half-open count have both fallen below
	// half their thresholds, so that a flood in bursts does not flap it.
	SynGuardHold = 5 * time.Second
	// DefaultSynProxyMSS is the MSS of cookie SYN-ACKs over IPv4 when
	// SynGuardOptions.MSS is 0; IPv6 gets synProxyMSS6Less less.
	DefaultSynProxyMSS = 1460
	synProxyMSS6Less   = 20 // an IPv6 header is 20 bytes longer
)

// SynGuardOptions configure the SYN-flood defence (config director keys
// syn_proxy_half_open, syn_proxy_syn_rate, syn_limit, syn_limit_burst and
// syn_proxy_mss).
type SynGuardOptions struct {
	// HalfOpen engages every auto service while more half-open
	// connections than this (all workers together) exist; 0: never.
	HalfOpen int
	// SynRate engages an auto service while it receives more SYNs per
	// second than this; 0: never.
	SynRate uint64
	// Limit is the SYNs per second per CPU the XDP program passes to the
	// workers (token bucket of depth Burst); 0: no limit.
	Limit, Burst uint64
	// MSS announced in cookie SYN-ACKs over IPv4 (0: DefaultSynProxyMSS);
	// over IPv6 20 less.
	MSS uint16
	// Hold overrides SynGuardHold (tests); 0: SynGuardHold.
	Hold time.Duration
}

// SynProxyStatus is one TCP service's SYN-proxy state, for listings.
type SynProxyStatus struct {
	Service string
	Mode    SynProxyMode
	// Capable: the service may be answered with cookies (NAT or full-NAT
	// for every real server, mode not off).
	Capable bool
	// Engaged: every SYN of the service is answered with a cookie now
	// (always for mode on).
	Engaged bool
	SYNs    uint64 // SYNs the XDP program counted for the service
}

// ConnPressure is the connection tables' half-open state, summed over the
// workers.
type ConnPressure struct {
	HalfOpen        int    // SYN_RECV, SYN_SENT and SYNACK entries now
	EvictedHalfOpen uint64 // half-open entries evicted to make room
}

// ctPressure is what a worker publishes of its table for the SYN guard and
// the counters: the table is the worker's alone, these are atomics.
type ctPressure struct {
	halfOpen atomic.Int64
	evicted  atomic.Uint64
}

// publish is called by the worker that owns t, next to its connCount.
func (p *ctPressure) publish(t *conntrack.Table) {
	p.halfOpen.Store(int64(t.HalfOpen()))
	p.evicted.Store(t.Stats().EvictedHalfOpen)
}

// ConnPressure sums the workers' half-open counts, as they published them
// at their last expiry pass (every few milliseconds).
func (d *Director) ConnPressure() ConnPressure {
	var p ConnPressure
	for _, w := range d.workers {
		p.HalfOpen += int(w.pressure.halfOpen.Load())
		p.EvictedHalfOpen += w.pressure.evicted.Load()
	}
	return p
}

// synSteering is what the guard needs of the steering program; tests fake it.
type synSteering interface {
	ServiceSYNs(serviceID uint32) (uint64, error)
	SetVIPFlags(e bpf.Endpoint, f bpf.VIPFlags) error
}

// synGuard holds the engagement state of every service.
type synGuard struct {
	log   *slog.Logger
	steer synSteering

	mu       sync.Mutex // tick, reapply and status
	opts     SynGuardOptions
	svcs     map[uint32]*guardState // by service ID
	readErrs int                    // ServiceSYNs failures, logged once
}

type guardState struct {
	name     string
	ep       bpf.Endpoint
	syns     uint64    // last ServiceSYNs reading
	read     time.Time // when syns was read; zero before the first reading
	rate     uint64    // SYNs per second over the last interval
	engaged  bool      // auto: On is set (on: always true)
	since    time.Time // when engaged
	calm     time.Time // auto, engaged: since when both signals are below half; zero when not
	flags    bpf.VIPFlags
	written  bool // flags are in the map
	mode     SynProxyMode
	capable  bool
	lastSeen bool // present in the last snapshot
}

func newSynGuard(log *slog.Logger, steer synSteering, opts SynGuardOptions) *synGuard {
	return &synGuard{log: log, steer: steer, opts: opts, svcs: map[uint32]*guardState{}}
}

// synProxyCapable reports whether the director can answer svc's SYNs with
// cookies: TCP, and every real server reached by NAT or full-NAT (with DR
// and TUN the server's SYN-ACK bypasses the director, so nobody could
// translate its sequence numbers), and not switched off.
func synProxyCapable(svc *Service) bool {
	if svc.Proto != 6 || svc.SynProxy == SynProxyOff {
		return false
	}
	if !viaDirector(svc.Fwd) {
		return false
	}
	for _, dst := range svc.Dests {
		if !viaDirector(dst.Fwd) {
			return false
		}
	}
	return true
}

func (g *synGuard) setOptions(o SynGuardOptions) {
	g.mu.Lock()
	g.opts = o
	g.mu.Unlock()
}

// tick reads the SYN counters and decides the flags of every TCP service.
// With reapply (after Apply) it measures nothing and decides nothing new
// for auto services, but rewrites every service's flags, changed or not: a
// new service's endpoint starts without flags, and a changed one may have
// a new mode.
func (g *synGuard) tick(now time.Time, services []*Service, halfOpen int, reapply bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.svcs {
		st.lastSeen = false
	}
	hold := g.opts.Hold
	if hold <= 0 {
		hold = SynGuardHold
	}
	for _, svc := range services {
		if svc == nil || svc.Proto != 6 {
			continue
		}
		st := g.svcs[svc.ID]
		if st == nil {
			st = &guardState{}
			g.svcs[svc.ID] = st
		}
		st.lastSeen = true
		ep := bpf.Endpoint{Addr: svc.VIP, Port: svc.Port, Proto: uint8(svc.Proto)}
		if st.ep != ep {
			st.written = false // a new endpoint carries no flags yet
		}
		st.name, st.ep, st.mode, st.capable = svc.Name, ep, svc.SynProxy, synProxyCapable(svc)
		if !reapply {
			g.readRate(st, svc.ID, now)
		}

		var want bpf.VIPFlags
		switch {
		case !st.capable:
			g.setEngaged(st, false, now, halfOpen, "")
		case st.mode == SynProxyOn:
			want = bpf.VIPSynProxyCapable | bpf.VIPSynProxyOn
			st.engaged, st.calm = true, time.Time{}
		default: // auto
			want = bpf.VIPSynProxyCapable
			if !reapply {
				g.decide(st, now, halfOpen, hold)
			}
			if st.engaged {
				want |= bpf.VIPSynProxyOn
			}
		}
		if want != st.flags || !st.written || reapply {
			if err := g.steer.SetVIPFlags(ep, want); err != nil {
				g.log.Warn("syn proxy: set vip flags", "service", st.name, "err", err)
				st.written = false
				continue
			}
			st.flags, st.written = want, true
		}
	}
	for id, st := range g.svcs {
		if !st.lastSeen {
			delete(g.svcs, id) // the service is gone; its VIP with it
		}
	}
}

// readRate updates st.rate from the service's SYN counter.
func (g *synGuard) readRate(st *guardState, id uint32, now time.Time) {
	n, err := g.steer.ServiceSYNs(id)
	if err != nil {
		if g.readErrs == 0 {
			g.log.Warn("syn proxy: cannot read the SYN counters; the SYN-rate trigger is off", "err", err)
		}
		g.readErrs++
		st.rate = 0
		return
	}
	if !st.read.IsZero() && n >= st.syns {
		if dt := now.Sub(st.read); dt > 0 {
			st.rate = uint64(float64(n-st.syns) / dt.Seconds())
		}
	} else {
		st.rate = 0 // first reading, or the counter restarted
	}
	st.syns, st.read = n, now
}

// decide engages an auto service when either signal passes its threshold
// and disengages it once both have stayed below half their thresholds for
// hold. A threshold of 0 is a trigger switched off.
func (g *synGuard) decide(st *guardState, now time.Time, halfOpen int, hold time.Duration) {
	o := &g.opts
	overRate := o.SynRate > 0 && st.rate > o.SynRate
	overHalf := o.HalfOpen > 0 && halfOpen > o.HalfOpen
	if !st.engaged {
		switch {
		case overRate:
			g.setEngaged(st, true, now, halfOpen, "syn_rate")
		case overHalf:
			g.setEngaged(st, true, now, halfOpen, "half_open")
		}
		return
	}
	calm := (o.SynRate == 0 || st.rate < o.SynRate/2) && (o.HalfOpen == 0 || halfOpen < o.HalfOpen/2)
	switch {
	case !calm:
		st.calm = time.Time{}
	case st.calm.IsZero():
		st.calm = now
	case now.Sub(st.calm) >= hold:
		g.setEngaged(st, false, now, halfOpen, "")
	}
}

// setEngaged changes st.engaged, logging the change.
func (g *synGuard) setEngaged(st *guardState, on bool, now time.Time, halfOpen int, reason string) {
	if st.engaged == on {
		return
	}
	st.engaged, st.calm = on, time.Time{}
	if on {
		st.since = now
		g.log.Info("syn proxy engaged", "service", st.name, "rate", st.rate, "half_open", halfOpen, "reason", reason)
		return
	}
	if st.mode == SynProxyAuto && st.capable {
		g.log.Info("syn proxy disengaged", "service", st.name, "rate", st.rate, "half_open", halfOpen,
			"engaged_for", now.Sub(st.since).Round(time.Millisecond).String())
	} else {
		// syn_proxy changed to off, or a dr/tun server joined: no
		// longer proxied at all.
		g.log.Info("syn proxy disengaged", "service", st.name, "rate", st.rate, "half_open", halfOpen, "reason", "not_capable")
	}
}

// status lists the TCP services' state as of the last tick.
func (g *synGuard) status(services []*Service) []SynProxyStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []SynProxyStatus
	for _, svc := range services {
		if svc == nil || svc.Proto != 6 {
			continue
		}
		s := SynProxyStatus{Service: svc.Name, Mode: svc.SynProxy, Capable: synProxyCapable(svc)}
		if st := g.svcs[svc.ID]; st != nil {
			s.Engaged, s.SYNs = st.engaged, st.syns
		}
		out = append(out, s)
	}
	return out
}

// SynProxyStatus lists every TCP service's SYN-proxy state.
func (d *Director) SynProxyStatus() []SynProxyStatus {
	if d.guard == nil {
		return nil
	}
	return d.guard.status(d.Services())
}

// guardTick runs the SYN guard once (from housekeeping, every synGuardEvery).
// It holds d.mu so that it never writes the flags of a snapshot that Apply
// has just replaced.
func (d *Director) guardTick(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.guard.tick(now, d.state.Load().services, d.ConnPressure().HalfOpen, false)
}

// reapplySynFlags writes every service's VIP flags after Apply (d.mu held).
func (d *Director) reapplySynFlags(s *snapshot) {
	if d.guard != nil {
		d.guard.tick(time.Now(), s.services, d.ConnPressure().HalfOpen, true)
	}
}

// SetSynGuard changes the SYN-flood defence's settings (at start and on
// reload): thresholds for the next tick, and the XDP program's token bucket
// and cookie MSS at once.
func (d *Director) SetSynGuard(o SynGuardOptions) error {
	if o.MSS == 0 {
		o.MSS = DefaultSynProxyMSS
	}
	d.guard.setOptions(o)
	if err := d.steer.SetSynLimit(o.Limit, o.Burst); err != nil {
		return fmt.Errorf("syn limit: %w", err)
	}
	mss6 := o.MSS
	if mss6 >= synProxyMSS6Less+536 {
		mss6 -= synProxyMSS6Less
	}
	if err := d.steer.SetSynProxyMSS(o.MSS, mss6); err != nil {
		return fmt.Errorf("syn proxy mss: %w", err)
	}
	return nil
}
