package healthcheck

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock runs timers only when Advance is called, on the caller's
// goroutine, in time order (ties in creation order).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  int
	f    func()
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Advance moves time forward by d, firing the timers that come due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) || t.when.Equal(next.when) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t == next })
		c.now = next.when
		c.mu.Unlock()
		next.f()
	}
}

// Pending returns the due times of the timers not yet fired.
func (c *fakeClock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.timers {
		out = append(out, t.when)
	}
	return out
}

// scriptChecker returns scripted results per key (the last one repeats, OK
// when there is no script) and records when each check ran.
type scriptChecker struct {
	clock Clock
	mu    sync.Mutex
	// script[key][i] is the reason of check i: "ok" passes, others fail.
	script map[string][]string
	calls  map[string][]time.Time
	ports  map[string][]uint16
}

func newScriptChecker(clock Clock) *scriptChecker {
	return &scriptChecker{clock: clock, script: map[string][]string{}, calls: map[string][]time.Time{}, ports: map[string][]uint16{}}
}

func (s *scriptChecker) Check(_ context.Context, t *Target) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.calls[t.Key])
	s.calls[t.Key] = append(s.calls[t.Key], s.clock.Now())
	s.ports[t.Key] = append(s.ports[t.Key], t.Port)
	reason := "ok"
	if sc := s.script[t.Key]; len(sc) > 0 {
		reason = sc[min(n, len(sc)-1)]
	}
	return Result{OK: reason == "ok", Reason: reason}
}

// advanceUntil steps the clock until key has been checked n times.
func (s *scriptChecker) advanceUntil(t *testing.T, clock *fakeClock, key string, n int) {
	t.Helper()
	for range 100000 {
		if len(s.Calls(key)) >= n {
			return
		}
		clock.Advance(10 * time.Millisecond)
	}
	t.Fatalf("%s: %d checks, want %d", key, len(s.Calls(key)), n)
}

func (s *scriptChecker) Calls(key string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls[key])
}

// transitions records onChange calls.
type transitions struct {
	mu   sync.Mutex
	list []Transition
	ch   chan Transition
}

func newTransitions() *transitions { return &transitions{ch: make(chan Transition, 1024)} }

func (r *transitions) add(tr Transition) {
	r.mu.Lock()
	r.list = append(r.list, tr)
	r.mu.Unlock()
	r.ch <- tr
}

func (r *transitions) get() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

func scriptedManager(t *testing.T, seed uint64) (*Manager, *fakeClock, *scriptChecker, *transitions) {
	t.Helper()
	clock := newFakeClock()
	sc := newScriptChecker(clock)
	trs := newTransitions()
	m := NewManager(clock, trs.add, nil,
		WithRand(rand.New(rand.NewPCG(seed, seed))),
		WithCheckers(func(string) Checker { return sc }))
	t.Cleanup(m.Close)
	return m, clock, sc, trs
}

func tcpTarget(key string, iv time.Duration, rise, fall int) Target {
	return Target{Key: key, Service: "svc", Addr: netip.MustParseAddr("198.18.1.1"), Port: 80,
		Check: Spec{Probe: TCPProbe{}, Interval: iv, Timeout: iv / 2, Rise: rise, Fall: fall}}
}

// checkSchedule verifies that the first call is within [0, iv) of start
// and each later one iv ± 10% after the previous.
func checkSchedule(t *testing.T, calls []time.Time, start time.Time, iv time.Duration) {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("no checks ran")
	}
	if d := calls[0].Sub(start); d < 0 || d >= iv {
		t.Errorf("first check %v after start, want within [0, %v)", d, iv)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < iv-iv/10 || gap > iv+iv/10 {
			t.Errorf("check %d came %v after the previous, want %v ± 10%%", i, gap, iv)
		}
	}
}

func TestHysteresis(t *testing.T) {
	m, clock, sc, trs := scriptedManager(t, 1)
	const iv = time.Second
	// rise 2, fall 3. A blip of two failures (checks 0-1) does not take the
	// target down; three in a row (3-5) do, with the reason of check 5. One
	// success (6) does not bring it up; two in a row (8-9) do.
	sc.script["a"] = []string{"f0", "f1", "ok", "f3", "f4", "f5", "ok", "f7", "ok", "ok", "ok"}
	m.Set([]Target{tcpTarget("a", iv, 2, 3)})
	if up, known := m.State("a"); !up || !known {
		t.Fatalf("new target: up=%v known=%v, want up", up, known)
	}
	states := []bool{}
	for range 12 {
		clock.Advance(iv + iv/10) // at least one check per step
		up, _ := m.State("a")
		states = append(states, up)
	}
	calls := sc.Calls("a")
	checkSchedule(t, calls, epoch, iv)
	if len(calls) < 11 {
		t.Fatalf("only %d checks in 13.2 intervals", len(calls))
	}
	want := []Transition{
		{Key: "a", Up: false, Reason: "f5", At: calls[5]},
		{Key: "a", Up: true, Reason: "ok", At: calls[9]},
	}
	if got := trs.get(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %+v\nwant %+v", got, want)
	}
	if up, _ := m.State("a"); !up {
		t.Error("final state down, want up")
	}
}

func TestRiseFallOne(t *testing.T) {
	m, clock, sc, trs := scriptedManager(t, 2)
	sc.script["a"] = []string{"refused", "ok", "timeout"}
	m.Set([]Target{tcpTarget("a", time.Second, 1, 1)})
	sc.advanceUntil(t, clock, "a", 3)
	calls := sc.Calls("a")
	want := []Transition{
		{Key: "a", Up: false, Reason: "refused", At: calls[0]},
		{Key: "a", Up: true, Reason: "ok", At: calls[1]},
		{Key: "a", Up: false, Reason: "timeout", At: calls[2]},
	}
	if got := trs.get(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %+v\nwant %+v", got, want)
	}
}

func TestRemovalStopsChecks(t *testing.T) {
	m, clock, sc, trs := scriptedManager(t, 3)
	sc.script["a"] = []string{"refused"}
	sc.script["b"] = []string{"refused"}
	m.Set([]Target{tcpTarget("a", time.Second, 1, 2), tcpTarget("b", time.Second, 1, 2)})
	sc.advanceUntil(t, clock, "a", 1) // one failure: still up
	if len(trs.get()) != 0 || len(sc.Calls("a")) != 1 {
		t.Fatalf("transitions after one failure: %+v", trs.get())
	}
	m.Set([]Target{tcpTarget("b", time.Second, 1, 2)})
	if _, known := m.State("a"); known {
		t.Error("removed target still known")
	}
	before := len(sc.Calls("a"))
	clock.Advance(10 * time.Second)
	if n := len(sc.Calls("a")); n != before {
		t.Errorf("removed target checked %d more times", n-before)
	}
	for _, tr := range trs.get() {
		if tr.Key == "a" {
			t.Errorf("transition of a removed target: %+v", tr)
		}
	}
	if up, _ := m.State("b"); up {
		t.Error("b kept up after failing checks")
	}
	// Adding it back starts afresh: up, counters reset.
	m.Set([]Target{tcpTarget("a", time.Second, 1, 2), tcpTarget("b", time.Second, 1, 2)})
	if up, known := m.State("a"); !up || !known {
		t.Errorf("re-added: up=%v known=%v", up, known)
	}
}

// blockingChecker blocks until its context is done, then fails.
type blockingChecker struct {
	entered chan struct{}
	exited  chan error
}

func (b *blockingChecker) Check(ctx context.Context, _ *Target) Result {
	b.entered <- struct{}{}
	<-ctx.Done()
	b.exited <- ctx.Err()
	return Result{Reason: "timeout"}
}

func TestRemovalCancelsInFlightCheck(t *testing.T) {
	clock := newFakeClock()
	bc := &blockingChecker{entered: make(chan struct{}, 1), exited: make(chan error, 1)}
	trs := newTransitions()
	m := NewManager(clock, trs.add, nil, WithRand(rand.New(rand.NewPCG(4, 4))),
		WithCheckers(func(string) Checker { return bc }))
	defer m.Close()
	tg := tcpTarget("a", time.Minute, 1, 1)
	tg.Check.Timeout = time.Minute // only the removal can end this check
	m.Set([]Target{tg})

	advanced := make(chan struct{})
	go func() { clock.Advance(time.Minute); close(advanced) }()
	<-bc.entered

	// Neither Set nor State waits for the running check.
	done := make(chan struct{})
	go func() {
		m.State("a")
		m.Set([]Target{tg}) // unchanged: keeps running
		m.State("a")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Set or State blocked on a running check")
	}
	select {
	case err := <-bc.exited:
		t.Fatalf("unchanged Set cancelled the check: %v", err)
	default:
	}

	m.Set(nil)
	if err := <-bc.exited; err != context.Canceled {
		t.Errorf("check ended with %v, want cancelled", err)
	}
	<-advanced
	clock.Advance(time.Hour)
	if got := trs.get(); len(got) != 0 {
		t.Errorf("transitions after removal: %+v", got)
	}
}

func TestSetKeepsUnchangedSchedule(t *testing.T) {
	m, clock, sc, _ := scriptedManager(t, 5)
	m.Set([]Target{tcpTarget("a", time.Second, 2, 2)})
	clock.Advance(1500 * time.Millisecond)
	pending := clock.Pending()
	m.Set([]Target{tcpTarget("a", time.Second, 2, 2)})
	if got := clock.Pending(); !slices.Equal(got, pending) {
		t.Errorf("identical Set rescheduled: timers %v, were %v", got, pending)
	}
	clock.Advance(10 * time.Second)
	checkSchedule(t, sc.Calls("a"), epoch, time.Second)
}

func TestConfigChangeKeepsState(t *testing.T) {
	m, clock, sc, trs := scriptedManager(t, 6)
	sc.script["a"] = []string{"refused", "refused", "ok", "ok", "ok"}
	m.Set([]Target{tcpTarget("a", time.Second, 2, 2)})
	sc.advanceUntil(t, clock, "a", 2) // two failures: down
	if up, _ := m.State("a"); up || len(sc.Calls("a")) != 2 {
		t.Fatalf("after two failures: up=%v, %d checks", up, len(sc.Calls("a")))
	}
	// A new check port restarts the schedule (first check within the new
	// interval), keeps down, and needs rise fresh successes.
	changed := tcpTarget("a", 2*time.Second, 2, 2)
	changed.Port = 8080
	restart := clock.Now()
	m.Set([]Target{changed})
	if up, known := m.State("a"); up || !known {
		t.Fatalf("after config change: up=%v known=%v, want down", up, known)
	}
	if p := clock.Pending(); len(p) != 1 || p[0].Sub(restart) >= 2*time.Second {
		t.Errorf("timers after restart %v, want one within 2s of %v", p, restart)
	}
	clock.Advance(8 * time.Second)
	calls := sc.Calls("a")
	checkSchedule(t, calls[2:], restart, 2*time.Second)
	if ports := sc.ports["a"]; ports[1] != 80 || ports[2] != 8080 {
		t.Errorf("checked ports %v, want 80 then 8080", ports)
	}
	want := []Transition{
		{Key: "a", Up: false, Reason: "refused", At: calls[1]},
		{Key: "a", Up: true, Reason: "ok", At: calls[3]},
	}
	if got := trs.get(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %+v\nwant %+v", got, want)
	}
}

func TestCheckNone(t *testing.T) {
	m, clock, sc, trs := scriptedManager(t, 7)
	none := Target{Key: "n", Addr: netip.MustParseAddr("198.18.1.2"), Check: Spec{Interval: time.Second}}
	m.Set([]Target{none})
	if up, known := m.State("n"); !up || !known {
		t.Errorf("none: up=%v known=%v", up, known)
	}
	if p := clock.Pending(); len(p) != 0 {
		t.Errorf("none scheduled timers %v", p)
	}
	clock.Advance(time.Minute)
	if len(sc.Calls("n")) != 0 {
		t.Error("none was checked")
	}

	// A down target whose check is switched off comes up.
	sc.script["n"] = []string{"refused"}
	checked := tcpTarget("n", time.Second, 1, 1)
	m.Set([]Target{checked})
	sc.advanceUntil(t, clock, "n", 1)
	if up, _ := m.State("n"); up {
		t.Fatal("not down after a failure")
	}
	<-trs.ch
	m.Set([]Target{none})
	select {
	case tr := <-trs.ch:
		if tr.Key != "n" || !tr.Up || tr.Reason != "no check" {
			t.Errorf("transition %+v", tr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no transition when the check was switched off")
	}
	if p := clock.Pending(); len(p) != 0 {
		t.Errorf("timers left after switching to none: %v", p)
	}
}

func TestJitterSpreadsChecks(t *testing.T) {
	m, clock, sc, _ := scriptedManager(t, 8)
	const n, iv = 1000, 10 * time.Second
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = tcpTarget("t"+strconv.Itoa(i), iv, 1, 1)
	}
	m.Set(targets)
	clock.Advance(5 * iv)
	var buckets [10]int
	for i := range targets {
		calls := sc.Calls(targets[i].Key)
		checkSchedule(t, calls, epoch, iv)
		if t.Failed() {
			return
		}
		buckets[calls[0].Sub(epoch)*10/iv]++
	}
	// 1000 uniform draws: each tenth of the interval gets about 100.
	for i, b := range buckets {
		if b < 50 || b > 150 {
			t.Errorf("first checks per tenth of the interval: %v (tenth %d is off)", buckets, i)
			break
		}
	}
}

func TestSeededScheduleIsReproducible(t *testing.T) {
	run := func() []time.Time {
		m, clock, sc, _ := scriptedManager(t, 9)
		m.Set([]Target{tcpTarget("a", time.Second, 1, 1), tcpTarget("b", time.Second, 1, 1)})
		clock.Advance(5 * time.Second)
		return append(sc.Calls("a"), sc.Calls("b")...)
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Errorf("same seed, different schedules:\n%v\n%v", a, b)
	}
}

func TestBadTargetsIgnored(t *testing.T) {
	m, _, _, _ := scriptedManager(t, 10)
	first := tcpTarget("dup", time.Second, 1, 1)
	second := tcpTarget("dup", time.Second, 1, 1)
	second.Port = 9
	m.Set([]Target{{Key: ""}, first, second})
	if _, known := m.State(""); known {
		t.Error("empty key accepted")
	}
	m.mu.Lock()
	port := m.targets["dup"].target.Port
	m.mu.Unlock()
	if port != 80 {
		t.Errorf("repeated key: port %d kept, want the first (80)", port)
	}
}

func TestUnsupportedTypeFails(t *testing.T) {
	clock := newFakeClock()
	trs := newTransitions()
	m := NewManager(clock, trs.add, nil, WithCheckers(func(string) Checker { return nil }))
	defer m.Close()
	m.Set([]Target{tcpTarget("a", time.Second, 1, 1)})
	clock.Advance(time.Second) // the first check is within [0, 1s)
	if got := trs.get(); len(got) != 1 || got[0].Up || got[0].Reason != "unsupported check type tcp" {
		t.Errorf("transitions %+v", got)
	}
}

func TestOnChangeMayCallManager(t *testing.T) {
	clock := newFakeClock()
	sc := newScriptChecker(clock)
	sc.script["a"] = []string{"refused"}
	var m *Manager
	var states []bool
	m = NewManager(clock, func(tr Transition) {
		up, _ := m.State(tr.Key)
		states = append(states, up)
		m.Set(nil)
		m.Close()
	}, nil, WithCheckers(func(string) Checker { return sc }))
	m.Set([]Target{tcpTarget("a", time.Second, 1, 1)})
	clock.Advance(time.Second)
	if !slices.Equal(states, []bool{false}) {
		t.Errorf("State from onChange: %v", states)
	}
}

// TestManagerRealChecks runs real TCP checks on the system clock: a
// listening server stays up, a closed port goes down with "refused".
func TestManagerRealChecks(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	acceptAll(t, ln)
	trs := newTransitions()
	m := NewManager(nil, trs.add, nil)
	defer m.Close()
	mk := func(key string, ap netip.AddrPort) Target {
		return Target{Key: key, Addr: ap.Addr(), Port: ap.Port(), Check: Spec{
			Probe: TCPProbe{}, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 2}}
	}
	m.Set([]Target{mk("up", addrPort(t, ln.Addr())), mk("down", closedPort(t, "tcp"))})
	select {
	case tr := <-trs.ch:
		if tr.Key != "down" || tr.Up || tr.Reason != "refused" {
			t.Errorf("transition %+v", tr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closed port never went down")
	}
	if up, _ := m.State("up"); !up {
		t.Error("listening server down")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	acceptAll(t, ln)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	before := runtime.NumGoroutine()

	m := NewManager(nil, func(Transition) {}, nil)
	ap := addrPort(t, ln.Addr())
	var targets []Target
	add := func(hc Spec, ap netip.AddrPort) {
		hc.Interval, hc.Timeout, hc.Rise, hc.Fall = 20*time.Millisecond, 200*time.Millisecond, 1, 1
		targets = append(targets, Target{Key: strconv.Itoa(len(targets)), Addr: ap.Addr(), Port: ap.Port(), Check: hc})
	}
	for range 5 {
		add(Spec{Probe: TCPProbe{}}, ap)
		add(Spec{Probe: HTTPProbe{Method: "GET", Path: "/"}}, ap) // never answered
		add(Spec{Probe: TCPProbe{}}, closedPort(t, "tcp"))
		add(Spec{Probe: UDPProbe{Send: "x", Expect: "y"}}, addrPort(t, udp.LocalAddr()))
		add(Spec{Probe: ExecProbe{Command: []string{"/bin/sleep", "10"}}}, ap)
		add(Spec{}, ap)
	}
	m.Set(targets)
	time.Sleep(300 * time.Millisecond)
	m.Set(targets[:10]) // removals mid-check
	time.Sleep(100 * time.Millisecond)
	m.Close()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRemovalDropsQueuedTransition: a transition decided but still waiting
// for its onChange turn is dropped when its target is removed.
func TestRemovalDropsQueuedTransition(t *testing.T) {
	clock := newFakeClock()
	sc := newScriptChecker(clock)
	sc.script["a"] = []string{"refused"}
	sc.script["b"] = []string{"refused"}
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var got []Transition
	m := NewManager(clock, func(tr Transition) {
		mu.Lock()
		got = append(got, tr)
		mu.Unlock()
		if tr.Key == "b" {
			entered <- struct{}{}
			<-release
		}
	}, nil, WithCheckers(func(string) Checker { return sc }))
	defer m.Close()

	a := tcpTarget("a", time.Second, 1, 1)
	m.Set([]Target{a})
	sc.advanceUntil(t, clock, "a", 1) // a down
	b := tcpTarget("b", time.Second, 1, 1)
	m.Set([]Target{a, b})
	advanced := make(chan struct{})
	go func() { clock.Advance(time.Second); close(advanced) }()
	<-entered // b's down is being delivered
	aNone := a
	aNone.Check = Spec{}
	m.Set([]Target{aNone, b}) // a comes up: queued behind b's delivery
	m.Set([]Target{b})        // and removed before its turn
	close(release)
	<-advanced // the delivery loop of b's check has drained the queue

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Key != "a" || got[1].Key != "b" {
		t.Errorf("transitions %+v, want a down then b down only", got)
	}
}
