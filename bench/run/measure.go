package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/control"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/pktgen"
)

// sample is one measurement window.
type sample struct {
	rate      uint64  // target rate, 0 = as fast as the generator goes
	offered   float64 // frames per second the generator sent
	delivered float64 // frames per second the real servers counted
	perReal   []float64
	// The director's threads over the window, in CPUs (1 = one CPU all
	// the time): each govsd worker, and the director's NAPI threads
	// together (the XDP program, the copy into the AF_XDP rings, or the
	// kernel's whole forwarding).
	workers []threadShare
	napi    float64
	gen     float64    // the generator's threads, in CPUs (-1: not known)
	busy    [2]float64 // the generator's and the director's CPUs: busy share (/proc/stat)
}

// threadShare is one thread's CPU over a window, in CPUs: in all, and
// split into its own code (user) and the kernel's (system: its system
// calls; clock-tick resolution).
type threadShare struct {
	name              string
	cpu, user, system float64
}

// perPacket returns CPU seconds per delivered frame in nanoseconds.
func (s sample) perPacket(cpus float64) float64 {
	if s.delivered == 0 {
		return 0
	}
	return cpus / s.delivered * 1e9
}

// workerTotals sums the workers' shares.
func (s sample) workerTotals() (cpu, user, system float64) {
	for _, w := range s.workers {
		cpu, user, system = cpu+w.cpu, user+w.user, system+w.system
	}
	return
}

// directorThreads finds govsd's workers (b.govsdPID) and the director's
// NAPI threads, to be read again with readThreads: finding them scans
// /proc, which takes too long to do at a window's edges.
func (b *bench) directorThreads() (workers, napi []testutil.ThreadCPU, err error) {
	if b.govsdPID != 0 {
		if workers, err = testutil.Threads(b.govsdPID, "govs-w"); err != nil {
			return nil, nil, err
		}
	}
	for _, dev := range []string{"d0", "d1"} {
		ths, err := testutil.KernelThreads("napi/" + b.lab.dev(dev) + "-")
		if err != nil {
			return nil, nil, err
		}
		napi = append(napi, ths...)
	}
	return workers, napi, nil
}

// readThreads reads the threads found by directorThreads again: the
// workers, and the NAPI threads' CPU time together.
func (b *bench) readThreads(workers, napi []testutil.ThreadCPU) (w []testutil.ThreadCPU, n time.Duration) {
	for _, th := range workers {
		if t, err := testutil.ReadThread(b.govsdPID, th.TID); err == nil {
			w = append(w, t)
		}
	}
	for _, th := range napi {
		if t, err := testutil.ReadThread(th.TID, th.TID); err == nil {
			n += t.CPU
		}
	}
	return w, n
}

// threadShares turns two readings dt apart into shares of a CPU.
func threadShares(before, after []testutil.ThreadCPU, dt time.Duration) []threadShare {
	var out []threadShare
	for _, a := range after {
		for _, b := range before {
			if a.TID == b.TID {
				out = append(out, threadShare{name: a.Name, cpu: float64(a.CPU-b.CPU) / float64(dt),
					user: float64(a.User-b.User) / float64(dt), system: float64(a.System-b.System) / float64(dt)})
			}
		}
	}
	return out
}

func (s sample) String() string {
	target := "max"
	if s.rate > 0 {
		target = fmt.Sprintf("%.3f", float64(s.rate)/1e6)
	}
	w, _, _ := s.workerTotals()
	return fmt.Sprintf("target %s Mpps: offered %.3f Mpps, delivered %.3f Mpps (%.0f%%); CPUs: workers %.2f, director NAPI %.2f, generator %.2f; busy %.0f%%/%.0f%%",
		target, s.offered/1e6, s.delivered/1e6, 100*s.delivered/max(s.offered, 1), w, s.napi, s.gen, 100*s.busy[0], 100*s.busy[1])
}

// generatorConfig resolves the client's interface and the director's MAC
// (the next hop to the path's first destination) for the generator.
func (b *bench) generatorConfig(p path) (pktgen.Config, error) {
	cfg := pktgen.Config{
		Src: netip.MustParseAddr(clientAddr), Proto: pktgen.UDP,
		Flows: b.flows, FrameSize: b.size,
	}
	for _, d := range p.dsts {
		cfg.Dsts = append(cfg.Dsts, netip.MustParseAddrPort(d))
	}
	err := b.lab.client.Do(func() error {
		ifi, err := net.InterfaceByName(b.lab.dev("c"))
		if err != nil {
			return err
		}
		cfg.Ifindex, cfg.SrcMAC = ifi.Index, ifi.HardwareAddr
		cfg.DstMAC, err = pktgen.NeighbourMAC(ifi.Index, cfg.Dsts[0].Addr(), 3*time.Second)
		return err
	})
	return cfg, err
}

// measure offers p's traffic at rate (0: as fast as possible) for the
// warm-up and the window, and returns the rates over the window. The
// generator runs on a thread in the client namespace pinned to the
// generator's CPU. A multi-queue path gets a generator thread per queue,
// each at its share of rate: a veth puts an XDP frame on the RX queue of
// the sending CPU (smp_processor_id() modulo the queues), so the second
// runs on the director's CPU. Those threads run SCHED_IDLE, in whatever
// time the director (which then has both CPUs) leaves: its own work
// comes first, as on a machine of its own.
func (b *bench) measure(p path, cfg pktgen.Config, rate uint64) (sample, error) {
	n := p.rxQueues()
	cfg.Rate = rate / uint64(n)
	var gens []*pktgen.Generator
	defer func() {
		for _, g := range gens {
			g.Close()
		}
	}()
	for range n {
		g, err := pktgen.New(cfg)
		if err != nil {
			return sample{}, err
		}
		gens = append(gens, g)
	}
	workerThreads, napiThreads, err := b.directorThreads()
	if err != nil {
		return sample{}, err
	}
	// The generators run until the window has been read (cancel), with a
	// long bound in case.
	ctx, cancel := context.WithTimeout(b.ctx, b.warmup+b.window+10*time.Second)
	defer cancel()
	var runErrs []<-chan error
	tids := make([]atomic.Int64, len(gens))
	for i, g := range gens {
		cpu, policy := b.lab.genCPU, genPolicy{nice: directorNice}
		if i > 0 {
			cpu = b.lab.dirCPU
		}
		if n > 1 {
			policy = genPolicy{idle: true}
		}
		policy.tid = &tids[i]
		runErrs = append(runErrs, b.generate(ctx, g, b.warmup+b.window+10*time.Second, cpu, policy))
	}
	type reading struct {
		at      time.Time
		sent    uint64
		del     []uint64
		workers []testutil.ThreadCPU
		napi    time.Duration
		thAt    time.Time // when the threads were read
		gen     time.Duration
		genOK   bool // every generator thread was read
		cpus    [2]cpuTimes
	}
	read := func() (reading, error) {
		r := reading{at: time.Now()}
		for _, g := range gens {
			st, err := g.Counters()
			if err != nil {
				return r, err
			}
			r.sent += st.Sent
		}
		total, per, err := b.lab.delivered()
		if err != nil {
			return r, err
		}
		r.del = append(per, total)
		r.genOK = true
		for i := range tids {
			t := threadTime(int(tids[i].Load()))
			r.gen += t
			r.genOK = r.genOK && t > 0
		}
		for i, cpu := range []int{b.lab.genCPU, b.lab.dirCPU} {
			if r.cpus[i], err = readCPU(cpu); err != nil {
				return r, err
			}
		}
		r.workers, r.napi = b.readThreads(workerThreads, napiThreads)
		r.thAt = time.Now()
		return r, nil
	}
	// The window is read from a SCHED_FIFO thread: on the generator's
	// CPU an ordinary thread waits behind the generator's busy loop, and
	// readings taken late measure a window other than the traffic's.
	type readings struct {
		r0, r1     reading
		err0, err1 error
	}
	done := make(chan readings, 1)
	go func() {
		runtime.LockOSThread() // for good: the thread keeps its policy
		if err := realtime(0); err != nil {
			b.logf("warning: SCHED_FIFO for the measuring thread: %v", err)
		}
		var x readings
		time.Sleep(b.warmup)
		x.r0, x.err0 = read()
		time.Sleep(b.window)
		x.r1, x.err1 = read()
		done <- x
	}()
	x := <-done
	r0, err0, r1, err1 := x.r0, x.err0, x.r1, x.err1
	cancel()
	for _, runErr := range runErrs {
		if err := <-runErr; err != nil {
			return sample{}, err
		}
	}
	if b.ctx.Err() != nil {
		return sample{}, errors.New("interrupted")
	}
	if err0 != nil || err1 != nil {
		return sample{}, fmt.Errorf("read counters: %v %v", err0, err1)
	}
	elapsed := r1.at.Sub(r0.at)
	dt := elapsed.Seconds()
	s := sample{rate: rate, offered: float64(r1.sent-r0.sent) / dt}
	k := len(r1.del) - 1
	s.delivered = float64(r1.del[k]-r0.del[k]) / dt
	for i := 0; i < k; i++ {
		s.perReal = append(s.perReal, float64(r1.del[i]-r0.del[i])/dt)
	}
	thElapsed := r1.thAt.Sub(r0.thAt)
	s.workers = threadShares(r0.workers, r1.workers, thElapsed)
	s.napi = float64(r1.napi-r0.napi) / float64(thElapsed)
	s.gen = -1
	if r0.genOK && r1.genOK {
		s.gen = float64(r1.gen-r0.gen) / float64(elapsed)
	}
	for i := range s.busy {
		if d := r1.cpus[i].total - r0.cpus[i].total; d > 0 {
			s.busy[i] = float64(r1.cpus[i].busy-r0.cpus[i].busy) / float64(d)
		}
	}
	return s, nil
}

// genPolicy is how a generator thread is scheduled: at a nice value, or
// SCHED_IDLE (only when nothing else wants the CPU).
type genPolicy struct {
	nice int
	idle bool
	tid  *atomic.Int64 // if set, receives the thread's id
}

// threadTime is how long thread tid of this process has run (0 if it
// cannot tell).
func threadTime(tid int) time.Duration {
	if tid == 0 {
		return 0
	}
	th, err := testutil.ReadThread(os.Getpid(), tid)
	if err != nil {
		return 0
	}
	return th.CPU
}

// generate runs g for d (or until ctx is done) on a thread in the client
// namespace, pinned to cpu under policy, and reports the outcome on the
// channel.
func (b *bench) generate(ctx context.Context, g *pktgen.Generator, d time.Duration, cpu int, policy genPolicy) <-chan error {
	runErr := make(chan error, 1)
	go func() {
		// Locked for good: the thread, with its CPU and policy, ends with
		// the goroutine rather than run the bench's other goroutines.
		runtime.LockOSThread()
		runErr <- b.lab.client.Do(func() error {
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				return fmt.Errorf("pin generator: %w", err)
			}
			if policy.tid != nil {
				policy.tid.Store(int64(unix.Gettid()))
			}
			if policy.idle {
				attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
				if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
					return fmt.Errorf("generator SCHED_IDLE: %w", err)
				}
			} else if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), policy.nice); err != nil {
				return fmt.Errorf("nice generator: %w", err)
			}
			_, err := g.Run(ctx, pktgen.RunOptions{Duration: d})
			return err
		})
	}()
	return runErr
}

// record runs `perf record -a -g` for a few seconds while offering rate;
// `perf report --cpu N` then shows the director's CPU. (perf record -C N
// came back nearly empty for the director's CPU here, hence -a.) perf
// takes a while to start on a busy machine (seconds, with both CPUs
// taken), so the traffic starts first and stops only once perf is done.
func (b *bench) record(cfg pktgen.Config, rate uint64, file string) error {
	cfg.Rate = rate
	g, err := pktgen.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	runErr := b.generate(ctx, g, time.Minute, b.lab.genCPU, genPolicy{nice: directorNice})
	time.Sleep(time.Second)
	out, perfErr := exec.Command("perf", "record", "-q", "-a", "-g", "-o", file, "--", "sleep", "3").CombinedOutput()
	cancel()
	if err := <-runErr; err != nil {
		return err
	}
	if perfErr != nil {
		return fmt.Errorf("perf record: %w: %s", perfErr, out)
	}
	b.logf("  perf record at %.3f Mpps offered: %s (perf report -i %[2]s --cpu %d)", float64(rate)/1e6, file, b.lab.dirCPU)
	return nil
}

// result is the best delivered rate of one path.
type result struct {
	path  path
	best  sample   // the median run at the best level
	runs  []sample // the runs at that level
	sweep []sample // the level search
	// levels are the levels the sweep chose to repeat, each with its runs
	// (the sweep's own first); rounds add one run to each (repeat).
	levels []level
	// full is the median of b.runs runs with the generator unpaced (the
	// first is the sweep's first level): what the path delivers when
	// offered more than it can take.
	full     sample
	fullRuns []sample
	connsPS  float64 // TCP connections per second through the path (0: not measured)
	connRun  []float64
	// flood is the connection rate during a SYN flood (nil: not measured).
	flood *floodResult
	note  string
}

// level is an offered rate repeated in every round, and its runs.
type level struct {
	rate uint64
	runs []sample
}

func keptUp(x sample) bool { return x.delivered >= 0.98*x.offered }

// sweep finds the offered rate at which p delivers the most. First as
// fast as the generator goes; if the path drops part of that, the rate is
// bisected (geometrically) between what it delivered then, which it can
// take, and what was offered: a level it keeps up with (at most 2% lost)
// raises the lower bound, one it drops more of lowers the upper. An
// overloaded path can deliver far less than its peak (receive livelock),
// hence the search rather than taking the full-load figure. The level that
// delivered the most, and when that one lost more than 2% also the highest
// that did not, are kept in r.levels, to be run again in each later round
// (repeat) with the unpaced level; finish then takes the medians.
func (b *bench) sweep(p path, cfg pktgen.Config) (result, error) {
	r := result{path: p}
	s, err := b.measure(p, cfg, 0)
	if err != nil {
		return r, err
	}
	b.logf("  %s", s)
	r.sweep = append(r.sweep, s)
	best := s
	if !keptUp(s) {
		lo, hi := max(s.delivered, 1000), s.offered
		for i := 0; i < b.levels && hi > lo*1.05; i++ {
			rate := math.Sqrt(lo * hi)
			t, err := b.measure(p, cfg, uint64(rate))
			if err != nil {
				return r, err
			}
			b.logf("  %s", t)
			r.sweep = append(r.sweep, t)
			if t.delivered > best.delivered {
				best = t
			}
			if keptUp(t) {
				lo = rate
			} else {
				hi = rate
			}
		}
	}
	// Overloaded runs vary widely (livelock): the level that delivered
	// the most and, when it lost more than 2%, the highest that did not;
	// the better median of the two is reported.
	r.levels = []level{{rate: best.rate, runs: []sample{best}}}
	var lossFree sample
	for _, x := range r.sweep {
		if keptUp(x) && x.delivered > lossFree.delivered {
			lossFree = x
		}
	}
	if !keptUp(best) && lossFree.delivered > 0 {
		r.levels = append(r.levels, level{rate: lossFree.rate, runs: []sample{lossFree}})
	}
	// At full load: the unpaced level, repeated like the best one, so
	// that the report can set its median against the best (livelock
	// shows as a fraction of it).
	r.fullRuns = []sample{r.sweep[0]}
	if b.perfDir != "" {
		if err := b.record(cfg, best.rate, filepath.Join(b.perfDir, "perf-"+p.name+".data")); err != nil {
			b.logf("warning: %v", err)
		}
	}
	return r, nil
}

// repeat runs each of r's levels once more, and the unpaced level unless
// it is one of them, with r's path set up afresh: one round.
func (b *bench) repeat(r *result) error {
	teardown, err := b.setUp(r.path)
	if err != nil {
		return err
	}
	defer teardown()
	cfg, err := b.generatorConfig(r.path)
	if err != nil {
		return err
	}
	unpaced := false
	for i := range r.levels {
		t, err := b.measure(r.path, cfg, r.levels[i].rate)
		if err != nil {
			return err
		}
		b.logf("  %s %s", r.path.name, t)
		r.levels[i].runs = append(r.levels[i].runs, t)
		if r.levels[i].rate == 0 {
			unpaced = true
			r.fullRuns = append(r.fullRuns, t)
		}
	}
	if !unpaced {
		t, err := b.measure(r.path, cfg, 0)
		if err != nil {
			return err
		}
		b.logf("  %s %s", r.path.name, t)
		r.fullRuns = append(r.fullRuns, t)
	}
	return nil
}

// finish takes the medians of r's rounds: the best level's, and the
// unpaced one's.
func (r *result) finish() {
	r.runs, r.best = nil, sample{}
	for _, l := range r.levels {
		if m := median(l.runs); r.runs == nil || m.delivered > r.best.delivered {
			r.runs, r.best = l.runs, m
		}
	}
	r.full = median(r.fullRuns)
	if r.full.delivered > r.best.delivered {
		// The unpaced runs did better than the level the sweep chose
		// (one run per level is noisy): they are the best.
		r.best, r.runs = r.full, r.fullRuns
	}
	if r.best.rate == 0 && keptUp(r.best) {
		r.note = "generator-bound: the path kept up with everything offered"
	}
}

// median returns the run with the median delivered rate.
func median(runs []sample) sample {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(x, y sample) int {
		switch {
		case x.delivered < y.delivered:
			return -1
		case x.delivered > y.delivered:
			return 1
		}
		return 0
	})
	return sorted[len(sorted)/2]
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs wrk once from the client for d, one connection per request, and
// returns its rate and its socket-error line ("" when it had none).
func (b *bench) wrk(url string, d time.Duration) (float64, string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, d+20*time.Second)
	defer cancel()
	cmd := b.lab.client.Command(ctx, "taskset", "-c", strconv.Itoa(b.lab.genCPU),
		"wrk", fmt.Sprintf("-t%d", b.wrkThreads), fmt.Sprintf("-c%d", b.wrkConns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--timeout", "2s", "-H", "Connection: close", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return 0, "", fmt.Errorf("wrk %s: no rate in:\n%s", url, out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	if b.verbose {
		b.logf("%s", out)
	}
	return v, string(wrkErrors.Find(out)), nil
}

// connsPerSecond runs wrk from the client, one connection per request,
// b.runs times and returns the median rate and every run's.
func (b *bench) connsPerSecond(url string) (float64, []float64, error) {
	var rates []float64
	for i := 0; i < b.runs; i++ {
		v, _, err := b.wrk(url, b.wrkDuration)
		if err != nil {
			return 0, rates, err
		}
		b.logf("  wrk %s: %.0f connections/s", url, v)
		rates = append(rates, v)
		// Let TIME_WAIT and connection entries of this run age a little.
		time.Sleep(200 * time.Millisecond)
	}
	return medianOf(rates), rates, nil
}

func medianOf(v []float64) float64 {
	sorted := slices.Clone(v)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// The SYN flood of the connection-rate measurement: spoofed sources from
// 198.19.0.0/16 (inside 198.18.0.0/15, apart from the topology's own
// addresses), 1024 ports each, flows that do not repeat within a run.
const (
	floodSrc      = "198.19.0.0"
	floodSrcCount = 1 << 16
	floodSrcPorts = 1024
	floodFlows    = 1 << 25
	// floodNice is the generator's nice value during the flood: the
	// lowest weight, so that it takes the CPU wrk and the real servers
	// leave idle (they share the generator's CPU) rather than starving
	// them, which would measure the client rather than the director.
	floodNice = 19
)

// floodResult is the connection rate measured during a SYN flood.
type floodResult struct {
	connsPS float64   // median of the runs
	runs    []float64 // connections per second, each run
	offered []float64 // SYNs per second the generator sent, each run
	errors  []string  // wrk's socket errors, each run ("" for none)
	// synVerdicts is what the XDP program did with the VIP's packets,
	// each run, in Mpps over the run (synVerdictCounters; "" when govsd's
	// counters could not be read).
	synVerdicts []string
}

// synVerdictCounters are the XDP counters of what became of the packets to
// the VIP during a flood (govsadm --counters names): steered to the
// workers (the SYNs within the SYN budget, and wrk's segments), answered
// with a cookie, spread (DR/TUN mh), dropped over the SYN budget, dropped
// by the steering meter.
var synVerdictCounters = []string{"steered_vip", "syncookies_sent", "syn_spread", "syn_throttled", "steer_metered"}

// xdpCounters reads the running govsd's XDP counters (nil if it cannot).
func (b *bench) xdpCounters() map[string]uint64 {
	if b.govsdSocket == "" {
		return nil
	}
	c, err := control.NewClient(b.govsdSocket).Counters()
	if err != nil {
		b.logf("warning: govsd counters: %v", err)
		return nil
	}
	return c.XDP
}

// floodConfig is the SYN generator's configuration toward the path's HTTP
// VIP (port 80), from the client to the director's MAC.
func (b *bench) floodConfig(p path) (pktgen.Config, error) {
	u, err := url.Parse(p.httpURL)
	if err != nil {
		return pktgen.Config{}, err
	}
	dst, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		return pktgen.Config{}, fmt.Errorf("flood destination %q: %w", u.Host, err)
	}
	cfg := pktgen.Config{
		Src: netip.MustParseAddr(floodSrc), SrcCount: floodSrcCount, SrcPortMin: 1024, SrcPorts: floodSrcPorts,
		Dsts: []netip.AddrPort{dst}, Proto: pktgen.TCPSyn, Flows: floodFlows, FrameSize: b.size,
	}
	if err := pktgen.CheckDestinations(cfg.Dsts); err != nil {
		return cfg, err
	}
	err = b.lab.client.Do(func() error {
		ifi, err := net.InterfaceByName(b.lab.dev("c"))
		if err != nil {
			return err
		}
		cfg.Ifindex, cfg.SrcMAC = ifi.Index, ifi.HardwareAddr
		cfg.DstMAC, err = pktgen.NeighbourMAC(ifi.Index, dst.Addr(), 3*time.Second)
		return err
	})
	return cfg, err
}

// connsPerSecondFlood is connsPerSecond while the generator floods the
// path's HTTP VIP with spoofed SYNs, unpaced, at floodNice: the flood
// starts a second before each wrk run and ends with it.
func (b *bench) connsPerSecondFlood(p path) (*floodResult, error) {
	cfg, err := b.floodConfig(p)
	if err != nil {
		return nil, err
	}
	g, err := pktgen.New(cfg)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	// The answers to the spoofed sources (SYN cookies, the real servers'
	// SYN-ACKs) would all come back to the client, whose NAPI thread runs
	// SCHED_FIFO on wrk's CPU: dropped in XDP, as if routed elsewhere.
	filter, err := pktgen.LoadReplyFilter(netip.PrefixFrom(cfg.Src, 16))
	if err != nil {
		return nil, err
	}
	defer filter.Close()
	if err := b.lab.client.Do(func() error { return filter.Attach(cfg.Ifindex) }); err != nil {
		return nil, err
	}
	if err := b.lab.pinNAPI(); err != nil { // the client's NAPI came with the program
		return nil, err
	}
	r := &floodResult{}
	for i := 0; i < b.runs; i++ {
		ctx, stop := context.WithCancel(b.ctx)
		before, err := g.Counters()
		if err != nil {
			stop()
			return nil, err
		}
		xdpBefore := b.xdpCounters()
		start := time.Now()
		runErr := b.generate(ctx, g, b.wrkDuration+30*time.Second, b.lab.genCPU, genPolicy{nice: floodNice})
		time.Sleep(time.Second)
		v, sockErrs, wrkErr := b.wrk(p.httpURL, b.wrkDuration)
		stop()
		genErr := <-runErr
		after, err := g.Counters()
		if wrkErr != nil {
			return nil, wrkErr
		}
		if genErr != nil {
			return nil, fmt.Errorf("flood: %w", genErr)
		}
		if err != nil {
			return nil, err
		}
		took := time.Since(start).Seconds()
		offered := float64(after.Sent-before.Sent) / took
		verdicts := ""
		if xdpAfter := b.xdpCounters(); xdpBefore != nil && xdpAfter != nil {
			var parts []string
			for _, name := range synVerdictCounters {
				parts = append(parts, fmt.Sprintf("%.3f", float64(xdpAfter[name]-xdpBefore[name])/took/1e6))
			}
			verdicts = strings.Join(parts, " / ")
		}
		r.synVerdicts = append(r.synVerdicts, verdicts)
		b.logf("  wrk %s during a SYN flood of %.3f Mpps: %.0f connections/s %s; XDP: to the workers / cookies / spread / over the SYN budget / metered %s Mpps",
			p.httpURL, offered/1e6, v, sockErrs, verdicts)
		r.runs = append(r.runs, v)
		r.offered = append(r.offered, offered)
		r.errors = append(r.errors, sockErrs)
		time.Sleep(200 * time.Millisecond)
	}
	r.connsPS = medianOf(r.runs)
	return r, nil
}

// pinPID sets the CPU affinity of one thread or process.
func pinPID(pid int, cpus ...int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(pid, &set)
}

// realtime gives a thread SCHED_FIFO priority 50.
func realtime(pid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 50}
	return unix.SchedSetAttr(pid, &attr, 0)
}

// pinSelf pins every thread of this process to cpu; threads created later
// inherit it.
func pinSelf(cpu int) error {
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(filepath.Base(t))
		if err != nil {
			continue
		}
		if err := pinPID(tid, cpu); err != nil && err != unix.ESRCH {
			return err
		}
	}
	return nil
}
