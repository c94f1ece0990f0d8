package healthcheck

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"
)

// Transition reports that a target changed state.
type Transition struct {
	Key string
	Up  bool
	// Reason is "ok" for a target going up, and the reason of the last
	// failed check for one going down ("refused", "status 503", ...). A
	// target whose check was set to type none comes up with "no check".
	Reason string
	At     time.Time // on the Manager's clock
}

// Option configures a Manager.
type Option func(*Manager)

// WithRand sets the source of the scheduling jitter (a seeded one makes
// schedules reproducible in tests). The Manager serialises its use.
func WithRand(r *rand.Rand) Option { return func(m *Manager) { m.rng = r } }

// WithCheckers replaces the registered checkers (CheckerFor): f returns the
// checker for a kind of probe, nil for an unsupported one.
func WithCheckers(f func(kind string) Checker) Option {
	return func(m *Manager) { m.checkerFor = f }
}

// Manager checks a set of targets on their schedules and reports state
// changes. See the package documentation for the semantics.
type Manager struct {
	clock      Clock
	onChange   func(Transition)
	log        *slog.Logger
	checkerFor func(kind string) Checker

	mu      sync.Mutex
	rng     *rand.Rand
	targets map[string]*entry
	pending []pendingTransition // decided, not yet handed to onChange
	closed  bool
	checks  sync.WaitGroup // running checks; Add only under mu while !closed

	// deliverMu makes onChange calls one at a time and in the order the
	// transitions were decided.
	deliverMu sync.Mutex
}

type pendingTransition struct {
	e  *entry
	tr Transition
}

// entry is the state of one target. All fields are guarded by Manager.mu.
type entry struct {
	target  Target
	checker Checker
	// gen counts (re)starts of the schedule; a timer or a check result
	// from an older generation is dropped.
	gen       uint64
	up        bool
	successes int // consecutive, counted while down
	failures  int // consecutive, counted while up
	timer     Timer
	ctx       context.Context // cancelled when the schedule stops
	cancel    context.CancelFunc
}

// NewManager returns a Manager with no targets. clock nil means the system
// clock; onChange may be nil; log nil discards.
func NewManager(clock Clock, onChange func(Transition), log *slog.Logger, opts ...Option) *Manager {
	if clock == nil {
		clock = SystemClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		clock:      clock,
		onChange:   onChange,
		log:        log,
		checkerFor: CheckerFor,
		targets:    make(map[string]*entry),
	}
	for _, o := range opts {
		o(m)
	}
	if m.rng == nil {
		m.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return m
}

// Set replaces the set of targets. New targets start up and are first
// checked after a random delay in [0, interval). Targets absent from
// targets stop at once: a running check is cancelled, its result dropped,
// and no transition of theirs is delivered from now on (one whose onChange
// call has already begun completes). A target with the same Key and an
// equal Target keeps its state and schedule; one whose Target changed keeps
// its up/down state but restarts its counters and schedule. Targets with an
// empty or repeated Key are ignored (logged). Set never waits for a check.
func (m *Manager) Set(targets []Target) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	seen := make(map[string]bool, len(targets))
	queued := false
	for i := range targets {
		t := targets[i]
		switch {
		case t.Key == "":
			m.log.Warn("health check target without a key ignored", "service", t.Service, "addr", t.Addr)
			continue
		case seen[t.Key]:
			m.log.Warn("health check target repeated, first kept", "key", t.Key)
			continue
		}
		seen[t.Key] = true
		e, ok := m.targets[t.Key]
		switch {
		case !ok:
			e = &entry{up: true}
			m.targets[t.Key] = e
		case reflect.DeepEqual(e.target, t):
			continue
		default:
			m.stop(e)
		}
		queued = m.start(e, t) || queued
	}
	for key, e := range m.targets {
		if !seen[key] {
			m.stop(e)
			delete(m.targets, key)
		}
	}
	m.mu.Unlock()
	if queued {
		go m.deliver() // not on the caller's goroutine: it may hold locks onChange takes
	}
}

// State reports whether the target is up, and whether it is known at all.
func (m *Manager) State(key string) (up, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.targets[key]
	if !ok {
		return false, false
	}
	return e.up, true
}

// Close stops every schedule, cancels running checks and waits for them to
// return (exec checks have their process group killed). No onChange call
// starts after Close returns. It may be called from onChange.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for key, e := range m.targets {
		m.stop(e)
		delete(m.targets, key)
	}
	m.pending = nil
	m.mu.Unlock()
	m.checks.Wait()
}

// start begins e's schedule for t; it reports whether it queued a
// transition. m.mu is held.
func (m *Manager) start(e *entry, t Target) bool {
	e.target = t
	e.gen++
	e.successes, e.failures = 0, 0
	if t.Check.Probe == nil {
		e.checker = nil
		if !e.up {
			e.up = true
			m.pending = append(m.pending, pendingTransition{e, Transition{Key: t.Key, Up: true, Reason: "no check", At: m.clock.Now()}})
			return true
		}
		return false
	}
	e.checker = m.checkerFor(t.Check.Probe.Kind())
	e.ctx, e.cancel = context.WithCancel(context.Background())
	gen := e.gen
	e.timer = m.clock.AfterFunc(time.Duration(m.rng.Int64N(int64(checkInterval(&t.Check)))), func() { m.run(e, gen) })
	return false
}

// stop ends e's schedule and cancels its running check. m.mu is held.
func (m *Manager) stop(e *entry) {
	e.gen++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if e.cancel != nil {
		e.cancel()
		e.cancel, e.ctx = nil, nil
	}
}

// run performs one scheduled check of e and schedules the next.
func (m *Manager) run(e *entry, gen uint64) {
	m.mu.Lock()
	if m.closed || e.gen != gen {
		m.mu.Unlock()
		return
	}
	m.checks.Add(1)
	t := e.target // a copy: Set may replace e.target while the check runs
	ctx, checker := e.ctx, e.checker
	m.mu.Unlock()

	res := m.check(ctx, checker, &t)
	m.checks.Done()

	m.mu.Lock()
	if m.closed || e.gen != gen {
		m.mu.Unlock()
		return // removed or restarted meanwhile: the result is stale
	}
	queued := m.record(e, res)
	e.timer = m.clock.AfterFunc(m.nextDelay(checkInterval(&t.Check)), func() { m.run(e, gen) })
	m.mu.Unlock()
	if queued {
		m.deliver()
	}
}

func (m *Manager) check(ctx context.Context, checker Checker, t *Target) Result {
	if checker == nil {
		return Result{Reason: "unsupported check type " + t.Check.Probe.Kind()}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout(&t.Check))
	defer cancel()
	return checker.Check(ctx, t)
}

// record applies the rise/fall hysteresis to one result and queues a
// transition when the state flips; it reports whether it did. m.mu is held.
func (m *Manager) record(e *entry, res Result) bool {
	t := &e.target
	if res.OK {
		e.failures = 0
		if e.up {
			return false
		}
		e.successes++
		if e.successes < max(t.Check.Rise, 1) {
			return false
		}
		e.up, e.successes = true, 0
		res.Reason = reasonOK
	} else {
		m.log.Debug("health check failed", "service", t.Service, "key", t.Key, "reason", res.Reason, "latency", res.Latency)
		e.successes = 0
		if !e.up {
			return false
		}
		e.failures++
		if e.failures < max(t.Check.Fall, 1) {
			return false
		}
		e.up, e.failures = false, 0
	}
	m.pending = append(m.pending, pendingTransition{e, Transition{Key: t.Key, Up: e.up, Reason: res.Reason, At: m.clock.Now()}})
	return true
}

// deliver hands queued transitions to onChange, one at a time, dropping
// those whose target was removed (or the Manager closed) before their turn.
func (m *Manager) deliver() {
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	for {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.mu.Unlock()
			return
		}
		p := m.pending[0]
		m.pending[0] = pendingTransition{}
		m.pending = m.pending[1:]
		current := !m.closed && m.targets[p.tr.Key] == p.e
		m.mu.Unlock()
		if current && m.onChange != nil {
			m.onChange(p.tr)
		}
	}
}

// nextDelay is interval ± up to 10%, so checks that started together drift
// apart instead of staying in step. m.mu is held (for m.rng).
func (m *Manager) nextDelay(iv time.Duration) time.Duration {
	spread := iv / 10
	return iv - spread + time.Duration(m.rng.Int64N(int64(2*spread)+1))
}
