package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/pktgen"
)

// sample is one measurement window.
type sample struct {
	rate      uint64  // target rate, 0 = as fast as the generator goes
	offered   float64 // frames per second the generator sent
	delivered float64 // frames per second the real servers counted
	perReal   []float64
}

func (s sample) String() string {
	target := "max"
	if s.rate > 0 {
		target = fmt.Sprintf("%.3f", float64(s.rate)/1e6)
	}
	return fmt.Sprintf("target %s Mpps: offered %.3f Mpps, delivered %.3f Mpps (%.0f%%)",
		target, s.offered/1e6, s.delivered/1e6, 100*s.delivered/max(s.offered, 1))
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

// measure offers traffic at rate (0: as fast as possible) for the warm-up
// and the window, and returns the rates over the window. The generator
// runs on a thread in the client namespace pinned to the generator's CPU.
func (b *bench) measure(cfg pktgen.Config, rate uint64) (sample, error) {
	cfg.Rate = rate
	g, err := pktgen.New(cfg)
	if err != nil {
		return sample{}, err
	}
	defer g.Close()
	runErr := b.generate(g, b.warmup+b.window+100*time.Millisecond)
	read := func() (time.Time, uint64, []uint64, error) {
		st, err := g.Counters()
		if err != nil {
			return time.Time{}, 0, nil, err
		}
		total, per, err := b.lab.delivered()
		return time.Now(), st.Sent, append(per, total), err
	}
	time.Sleep(b.warmup)
	t0, sent0, del0, err0 := read()
	time.Sleep(b.window)
	t1, sent1, del1, err1 := read()
	if err := <-runErr; err != nil {
		return sample{}, err
	}
	if b.ctx.Err() != nil {
		return sample{}, errors.New("interrupted")
	}
	if err0 != nil || err1 != nil {
		return sample{}, fmt.Errorf("read counters: %v %v", err0, err1)
	}
	dt := t1.Sub(t0).Seconds()
	s := sample{rate: rate, offered: float64(sent1-sent0) / dt}
	n := len(del1) - 1
	s.delivered = float64(del1[n]-del0[n]) / dt
	for i := 0; i < n; i++ {
		s.perReal = append(s.perReal, float64(del1[i]-del0[i])/dt)
	}
	return s, nil
}

// generate runs g for d on a thread in the client namespace, pinned to the
// generator's CPU at directorNice, and reports the outcome on the channel.
func (b *bench) generate(g *pktgen.Generator, d time.Duration) <-chan error {
	runErr := make(chan error, 1)
	go func() {
		runErr <- b.lab.client.Do(func() error {
			var set unix.CPUSet
			set.Set(b.lab.genCPU)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				return fmt.Errorf("pin generator: %w", err)
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), directorNice); err != nil {
				return fmt.Errorf("nice generator: %w", err)
			}
			_, err := g.Run(b.ctx, pktgen.RunOptions{Duration: d})
			return err
		})
	}()
	return runErr
}

// record runs `perf record -a -g` for a few seconds while offering rate;
// `perf report --cpu N` then shows the director's CPU. (perf record -C N
// came back nearly empty for the director's CPU here, hence -a.) perf
// takes a while to start on a busy machine, so the traffic starts first
// and outlasts it.
func (b *bench) record(cfg pktgen.Config, rate uint64, file string) error {
	cfg.Rate = rate
	g, err := pktgen.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	runErr := b.generate(g, 8*time.Second)
	time.Sleep(time.Second)
	out, perfErr := exec.Command("perf", "record", "-q", "-a", "-g", "-o", file, "--", "sleep", "3").CombinedOutput()
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
	path    path
	best    sample   // the median run at the best level
	runs    []sample // the runs at that level
	sweep   []sample // the level search
	connsPS float64  // TCP connections per second through the path (0: not measured)
	connRun []float64
	note    string
}

// sweep finds the offered rate at which p delivers the most. First as
// fast as the generator goes; if the path drops part of that, the rate is
// bisected (geometrically) between what it delivered then, which it can
// take, and what was offered: a level it keeps up with (at most 2% lost)
// raises the lower bound, one it drops more of lowers the upper. An
// overloaded path can deliver far less than its peak (receive livelock),
// hence the search rather than taking the full-load figure. The level that
// delivered the most is then run b.runs times and the median kept (see
// below for the loss-free level that may be run too).
func (b *bench) sweep(p path, cfg pktgen.Config) (result, error) {
	r := result{path: p}
	s, err := b.measure(cfg, 0)
	if err != nil {
		return r, err
	}
	b.logf("  %s", s)
	r.sweep = append(r.sweep, s)
	best := s
	keptUp := func(x sample) bool { return x.delivered >= 0.98*x.offered }
	if !keptUp(s) {
		lo, hi := max(s.delivered, 1000), s.offered
		for i := 0; i < b.levels && hi > lo*1.05; i++ {
			rate := math.Sqrt(lo * hi)
			t, err := b.measure(cfg, uint64(rate))
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
	// Repeat the level that delivered the most and, when that one lost
	// more than 2%, also the highest that did not: overloaded runs vary
	// widely (livelock), and the better median of the two is reported.
	candidates := []sample{best}
	var lossFree sample
	for _, x := range r.sweep {
		if keptUp(x) && x.delivered > lossFree.delivered {
			lossFree = x
		}
	}
	if !keptUp(best) && lossFree.delivered > 0 {
		candidates = append(candidates, lossFree)
	}
	for _, c := range candidates {
		runs := []sample{c}
		for len(runs) < b.runs {
			t, err := b.measure(cfg, c.rate)
			if err != nil {
				return r, err
			}
			b.logf("  %s", t)
			runs = append(runs, t)
		}
		if m := median(runs); r.runs == nil || m.delivered > r.best.delivered {
			r.runs, r.best = runs, m
		}
	}
	if b.perfDir != "" {
		if err := b.record(cfg, r.best.rate, filepath.Join(b.perfDir, "perf-"+p.name+".data")); err != nil {
			b.logf("warning: %v", err)
		}
	}
	if r.best.rate == 0 && keptUp(r.best) {
		r.note = "generator-bound: the path kept up with everything offered"
	}
	return r, nil
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

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// connsPerSecond runs wrk from the client, one connection per request,
// b.runs times and returns the median rate and every run's.
func (b *bench) connsPerSecond(url string) (float64, []float64, error) {
	var rates []float64
	for i := 0; i < b.runs; i++ {
		ctx, cancel := context.WithTimeout(b.ctx, b.wrkDuration+20*time.Second)
		cmd := b.lab.client.Command(ctx, "taskset", "-c", strconv.Itoa(b.lab.genCPU),
			"wrk", "-t1", fmt.Sprintf("-c%d", b.wrkConns), fmt.Sprintf("-d%ds", int(b.wrkDuration.Seconds())),
			"--timeout", "2s", "-H", "Connection: close", url)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return 0, rates, fmt.Errorf("wrk %s: %w: %s", url, err, out)
		}
		m := wrkRate.FindSubmatch(out)
		if m == nil {
			return 0, rates, fmt.Errorf("wrk %s: no rate in:\n%s", url, out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		b.logf("  wrk %s: %.0f connections/s", url, v)
		if b.verbose {
			b.logf("%s", out)
		}
		rates = append(rates, v)
		// Let TIME_WAIT and connection entries of this run age a little.
		time.Sleep(200 * time.Millisecond)
	}
	sorted := slices.Clone(rates)
	slices.Sort(sorted)
	return sorted[len(sorted)/2], rates, nil
}

// pinPID sets the CPU affinity of one thread or process.
func pinPID(pid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
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
