// Command run is `make bench`: it measures what the director delivers on
// one namespace topology, in one run, for the kernel's own paths and for
// govs in each forwarding mode, and writes the table to bench/results.md.
//
//	client ── director ── bridge ── 4 real servers
//
// The client sends 64-byte UDP frames over many flows with the XDP
// live-frames generator (package pktgen), pinned to one CPU; the director
// (govsd, or the kernel's forwarding and its NAPI threads) is pinned to the
// other; the rest of the topology (bridge, real servers) runs on the
// generator's CPU, as if on other machines. Every real server counts the
// UDP (and IP-in-IP) packets it receives with an XDP program and drops
// them; delivered = those counts per second.
//
// Paths: kernel (IP forwarding to the real servers' addresses, no load
// balancing), nftables (DNAT of the VIP, numgen random mod 4), stateless
// (pktgen's minimal stateless XDP balancer: hash of the source modulo 4,
// DNAT, redirect; the reference, the most an XDP balancer delivers here),
// and govs nat, fullnat, dr and tun, and govs nat with two RX queues. For
// each, the offered load is swept to find the best delivered rate; that
// level is run again in two more rounds, interleaved with the other paths
// (each round sets every path up in turn), and the median kept, with the
// CPU time of the director's threads (govsd's workers, its NAPI threads).
// With wrk installed, TCP connections per second (one request per
// connection, nginx real servers when nginx is installed) are measured
// directly to a real server, through nftables and through govs nat,
// fullnat, dr and nat-workers, in interleaved rounds, with the director
// CPU's busy time per connection (connrate.go); for govs also during a SYN
// flood (spoofed sources from 198.19.0.0/16) against the same VIP, so that
// the report sets the rate during a flood against the rate without one.
//
// At full load: the median of --runs runs with the generator unpaced, set
// against the path's best rate, shows whether the path holds its rate when
// offered more than it can take (issue #13 asks for at least 0.9 of the
// best) or livelocks.
//
// It needs root and at least two CPUs, runs the govsd given with --govsd
// (or builds one), and removes everything it creates.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/testutil"
)

// bench holds the options and the topology of one run.
type bench struct {
	ctx           context.Context // cancelled by SIGINT, SIGTERM, SIGHUP
	lab           *lab
	govsdBin      string
	directorExtra []string // further director settings of govsd (--director)
	flows         uint32
	size          int
	runs          int
	levels        int
	warmup        time.Duration
	window        time.Duration
	wrkDuration   time.Duration
	wrkConns      int
	wrkThreads    int
	flood         bool // connections per second during a SYN flood too
	verbose       bool
	cpuProfileDir string
	perfDir       string
	countAt       string
	out           io.Writer
	govsdPID      int    // the running govsd (setUp), 0 for none
	govsdSocket   string // its control socket
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	// Interrupted, it still removes its namespaces; a closed stdout (| head)
	// is an error on write rather than a silent death.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	b := &bench{out: os.Stdout, ctx: ctx}
	pathList := fs.String("paths", "kernel,nftables,stateless,nat,fullnat,dr,tun,nat-workers,nat-2q,nat-workers-2q", "paths to measure, comma-separated")
	flows := fs.Uint("flows", 1024, "flows (source ports) the generator cycles through")
	fs.IntVar(&b.size, "size", 64, "frame size in bytes")
	fs.IntVar(&b.runs, "runs", 3, "runs at the best level (the median is reported)")
	fs.IntVar(&b.levels, "levels", 6, "paced levels tried at most when a path drops part of the full load")
	fs.DurationVar(&b.warmup, "warmup", 500*time.Millisecond, "traffic before each measurement window")
	fs.DurationVar(&b.window, "window", 1500*time.Millisecond, "measurement window")
	fs.DurationVar(&b.wrkDuration, "wrk-duration", 4*time.Second, "length of each wrk run")
	fs.IntVar(&b.wrkConns, "wrk-connections", 32, "wrk's concurrent connections")
	fs.IntVar(&b.wrkThreads, "wrk-threads", 1, "wrk's threads (the client has one CPU)")
	connPathList := fs.String("conn-paths", "kernel,direct,nftables,nat,fullnat,dr,nat-workers", "paths whose connection rate is measured (interleaved), comma-separated")
	connsOnly := fs.Bool("conns-only", false, "measure only the connection rate (no UDP sweep, no SYN flood)")
	goServers := fs.Bool("go-servers", false, "Go HTTP servers on the real servers instead of nginx")
	countAt := fs.String("count-at", "switch", "where delivered frames are counted: switch (its port facing the director) or servers (each real server's interface, behind the bridge)")
	noTCP := fs.Bool("no-tcp", false, "skip the wrk connection-rate measurements")
	noFlood := fs.Bool("no-flood", false, "skip the connection rate during a SYN flood")
	genCPU := fs.Int("gen-cpu", 0, "CPU of the generator and the rest of the topology")
	dirCPU := fs.Int("dir-cpu", 1, "CPU of the director")
	out := fs.String("out", "bench/results.md", "where to write the results table (\"\" for nowhere)")
	fs.StringVar(&b.cpuProfileDir, "cpuprofile", "", "directory for govsd CPU profiles (govsd -cpuprofile), one per mode")
	fs.StringVar(&b.perfDir, "perf", "", "directory for a `perf record -a -g` (3 s at the best level) per path; read the director with perf report --cpu")
	fs.StringVar(&b.govsdBin, "govsd", "", "govsd binary to run (default: build one from ./cmd/govsd)")
	fs.BoolVar(&b.verbose, "v", false, "print wrk output and govsd logs")
	groFlush := fs.Duration("gro-flush-timeout", 0, "deferred NAPI on the director's interfaces: napi_defer_hard_irqs 2 and this gro_flush_timeout (for experiments; with --director 'busy_poll: true', preferred busy polling)")
	fs.Func("director", "a further `line` of govsd's director settings (\"busy_poll: true\"; repeatable): for experiments, the report says which", func(v string) error {
		b.directorExtra = append(b.directorExtra, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	b.flows = uint32(*flows)
	b.flood = !*noFlood
	if !testutil.IsRoot() {
		return errors.New("needs root (network namespaces, XDP)")
	}
	if runtime.NumCPU() < 2 || *genCPU == *dirCPU {
		return fmt.Errorf("needs two distinct CPUs for the generator and the director (have %d)", runtime.NumCPU())
	}
	paths, err := selectPaths(*pathList)
	if err != nil {
		return err
	}
	connPaths, err := selectPaths(*connPathList)
	if err != nil {
		return err
	}
	if *connsOnly {
		paths = nil
		b.flood = false
	}
	for _, d := range []string{b.cpuProfileDir, b.perfDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	wrk := !*noTCP
	if _, err := exec.LookPath("wrk"); wrk && err != nil {
		b.logf("wrk is not installed: skipping connections per second (apt-get install wrk)")
		wrk = false
	}

	// This process (the real servers' HTTP handlers, the sampling) lives on
	// the generator's CPU; the director's CPU is the director's.
	if err := pinSelf(*genCPU); err != nil {
		return fmt.Errorf("pin to cpu %d: %w", *genCPU, err)
	}
	if b.govsdBin == "" {
		binDir, err := os.MkdirTemp("", "govs-bench-bin")
		if err != nil {
			return err
		}
		defer os.RemoveAll(binDir)
		b.govsdBin = filepath.Join(binDir, "govsd")
		if err := testutil.Build(binDir, "govsd"); err != nil {
			return err
		}
	} else if b.govsdBin, err = filepath.Abs(b.govsdBin); err != nil {
		return err
	}

	prefix := fmt.Sprintf("gbn%d", os.Getpid()%10000)
	if *countAt != "switch" && *countAt != "servers" {
		return fmt.Errorf("--count-at %q: want switch or servers", *countAt)
	}
	b.countAt = *countAt
	server := "nginx"
	nginxBin := nginxBinary()
	if *goServers || nginxBin == "" {
		if !*goServers {
			b.logf("nginx is not installed: Go HTTP servers on the real servers, which limit the connection rate (apt-get install nginx-light)")
		}
		server, nginxBin = "Go HTTP servers", ""
	}
	b.lab, err = newLab(prefix, *genCPU, *dirCPU, *countAt == "switch", nginxBin, b.logf)
	if err != nil {
		return fmt.Errorf("build topology: %w", err)
	}
	defer b.lab.close()
	b.lab.groFlush = *groFlush

	start := time.Now()
	var results []result
	for _, p := range paths {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		b.logf("%s: %s", p.name, p.desc)
		r, err := b.measurePath(p, wrk)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		results = append(results, r)
	}
	// The repeats of each path's chosen levels, in interleaved rounds:
	// every round sets each path up in turn, so that a slow phase of the
	// VM is spread over every path rather than over whichever was being
	// measured then.
	for round := 1; round < b.runs && len(results) > 0; round++ {
		b.logf("round %d of %d: every path's chosen levels again", round+1, b.runs)
		for i := range results {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			if err := b.repeat(&results[i]); err != nil {
				return fmt.Errorf("%s: %w", results[i].path.name, err)
			}
		}
	}
	for i := range results {
		results[i].finish()
	}
	var conns []connRow
	if wrk {
		var withURL []path
		for _, p := range connPaths {
			if p.httpURL != "" {
				withURL = append(withURL, p)
			}
		}
		b.logf("connections per second, %d interleaved rounds: %d paths", b.runs, len(withURL))
		if conns, err = b.connRate(withURL); err != nil {
			return fmt.Errorf("connection rate: %w", err)
		}
	}
	table := report(results, conns, server, b, time.Since(start))
	fmt.Fprint(b.out, "\n"+table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			return err
		}
		b.logf("written to %s", *out)
	}
	return nil
}

func selectPaths(list string) ([]path, error) {
	all := allPaths()
	var out []path
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, p := range all {
			if p.name == name {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			var names []string
			for _, p := range all {
				names = append(names, p.name)
			}
			return nil, fmt.Errorf("unknown path %q (have %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// measurePath sets p up, sweeps it, measures connections per second, and
// takes it down again.
func (b *bench) measurePath(p path, wrk bool) (result, error) {
	teardown, err := b.setUp(p)
	if err != nil {
		return result{}, err
	}
	defer teardown()
	cfg, err := b.generatorConfig(p)
	if err != nil {
		return result{}, err
	}
	r, err := b.sweep(p, cfg)
	if err != nil {
		return r, err
	}
	if wrk && p.httpURL != "" && b.flood && p.mode != "" {
		// The connection rate through govs while a SYN flood hits the
		// same VIP, and just before it, with the same govsd (last: the
		// flood leaves the connection table full of half-open entries).
		if r.connsPS, r.connRun, err = b.connsPerSecond(p.httpURL); err != nil {
			b.logf("warning: %v", err)
			r.connsPS = 0
		}
		if r.connsPS > 0 {
			if r.flood, err = b.connsPerSecondFlood(p); err != nil {
				b.logf("warning: %v", err)
				r.flood = nil
			}
		}
	}
	return r, nil
}

// report renders the results as Markdown.
func report(results []result, conns []connRow, server string, b *bench, took time.Duration) string {
	var nft, stateless float64
	for _, r := range results {
		switch r.path.name {
		case "nftables":
			nft = r.best.delivered
		case "stateless":
			stateless = r.best.delivered
		}
	}
	ratio := func(v, base float64) string {
		if base == 0 || v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", v/base)
	}
	var s strings.Builder
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&s, "# govs benchmark results\n\n")
	fmt.Fprintf(&s, "`make bench` (`go run ./bench/run`) on %s, kernel %s, %d CPUs (%s), %s. Took %s.\n\n",
		host, strings.TrimSpace(string(kernel)), runtime.NumCPU(), cpuModel(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	if len(results) > 0 {
		where := "where they enter the real servers' network (an XDP program on the switch port facing the director counts and drops them)"
		if b.countAt == "servers" {
			where = "at the real servers (an XDP program on each counts and drops them)"
		}
		fmt.Fprintf(&s, "UDP, %d-byte frames, %d flows, from the XDP live-frames generator (CPU %d) through the director (CPU %d) "+
			"toward %d real servers. Delivered: frames counted %s, per second; median of %d runs of %s, one per round in interleaved rounds (each round sets every path up in turn), "+
			"at the offered rate that delivered the most in the sweep (or, when that rate lost more than 2%%, at the highest "+
			"rate that did not, if its median is higher; or unpaced, when the full-load median is higher still). Loss-free: the highest rate of the sweep delivered with at most 2%% lost (one run). "+
			"At full load: delivered of offered with the generator unpaced, median of %d runs (each run's delivered Mpps in brackets): "+
			"an overloaded director can deliver far less than its best (receive livelock); vs best: that median as a share of the path's "+
			"best (the delivered column; the full-load median itself when it is the highest), 1.00× when nothing is lost to overload. "+
			"vs nftables, vs stateless: the delivered column as a share of the nftables row's and of the stateless reference balancer's "+
			"(a minimal XDP balancer without state: the ceiling for an XDP balancer on this topology).\n\n",
			b.size, b.flows, b.lab.genCPU, b.lab.dirCPU, numReals, where, b.runs, b.window, b.runs)
		s.WriteString("| path | delivered Mpps | offered Mpps | vs nftables | vs stateless | runs (Mpps) | loss-free Mpps | at full load Mpps | at full load vs best |\n|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
		for _, r := range results {
			var runs []string
			for _, x := range r.runs {
				runs = append(runs, fmt.Sprintf("%.3f", x.delivered/1e6))
			}
			name := r.path.desc
			if r.note != "" {
				name += " ¹"
			}
			var lossFree float64
			for _, x := range r.sweep {
				if x.delivered >= 0.98*x.offered {
					lossFree = max(lossFree, x.delivered)
				}
			}
			var fullRuns []string
			for _, x := range r.fullRuns {
				fullRuns = append(fullRuns, fmt.Sprintf("%.3f", x.delivered/1e6))
			}
			fmt.Fprintf(&s, "| %s | %.3f | %.3f | %s | %s | %s | %.3f | %.3f of %.3f (%s) | %s |\n", name, r.best.delivered/1e6, r.best.offered/1e6,
				ratio(r.best.delivered, nft), ratio(r.best.delivered, stateless), strings.Join(runs, ", "), lossFree/1e6, r.full.delivered/1e6, r.full.offered/1e6,
				strings.Join(fullRuns, ", "), ratio(r.full.delivered, r.best.delivered))
		}
		for _, r := range results {
			if r.note != "" {
				fmt.Fprintf(&s, "\n¹ %s: the generator's limit, not the path's.\n", r.path.name)
				break
			}
		}
	}
	if len(results) > 0 {
		s.WriteString(cpuReport(results))
		s.WriteString(queueReport(results))
	}
	s.WriteString("\nOn a small shared VM the figures move by 20–30% from one `make bench` to the next; compare paths within one run.\n")
	if len(b.directorExtra) > 0 {
		fmt.Fprintf(&s, "\ngovsd ran with these further director settings (--director): %s.\n", strings.Join(b.directorExtra, "; "))
	}
	if b.lab.groFlush > 0 {
		fmt.Fprintf(&s, "\nThe director's interfaces had deferred NAPI (--gro-flush-timeout): napi_defer_hard_irqs 2, gro_flush_timeout %v.\n", b.lab.groFlush)
	}
	fmt.Fprintf(&s, "\nSetup: the generator's thread, the bridge and the real servers' NAPI threads (SCHED_FIFO, so that nothing is lost "+
		"past the director) share CPU %d; the director's NAPI threads (threaded veth NAPI) and govsd (taskset) have CPU %d, "+
		"govsd at nice %d against whatever else runs on the machine, the NAPI threads at nice %d (ksoftirqd's weight: a director "+
		"gives the load balancer its core before receive work it cannot take; at equal weights workers-only NAT collapsed at full load). The kernel paths get a pass-through XDP program on both of the director's "+
		"interfaces, as govs has its steering program there (a veth receives XDP_TX frames only with XDP or GRO on, and receives in the sender's context, on the other CPU, without NAPI). "+
		"Caveat: the generator's frames come from a page pool of CPU %d; a path that frees them on the director's CPU (govs: "+
		"AF_XDP copy mode copies and frees at once) pays a cross-CPU, locked return that a NIC's local page pool would not cost.\n",
		b.lab.genCPU, b.lab.dirCPU, directorNice, napiNice, b.lab.genCPU)
	if len(conns) > 0 {
		s.WriteString(connReport(conns, b, server))
	}
	var flood []result
	for _, r := range results {
		if r.flood != nil {
			flood = append(flood, r)
		}
	}
	if len(flood) > 0 {
		fmt.Fprintf(&s, "\nTCP connections per second during a SYN flood: the same wrk runs while the generator sends spoofed SYNs "+
			"(sources %s/16, %d ports each, %d flows that do not repeat, %d-byte frames) to the same VIP and port, unpaced, "+
			"on the generator's CPU at nice %d: it takes the time wrk and the real servers leave idle, so the flood's rate varies; "+
			"each wrk run starts 1 s into the flood; median of %d runs. Without: %[6]d wrk runs with the same govsd just before the flood. "+
			"The director's XDP verdicts, in Mpps over each run: packets to the VIP steered to the workers (SYNs within the SYN budget and "+
			"wrk's segments), SYNs answered with a cookie (nat, fullnat), spread by the service's Maglev table (dr with mh), dropped over "+
			"the SYN budget, and packets dropped by the steering meter; what the flood offered beyond their sum never reached the "+
			"program (the veth's ring was full).\n\n",
			floodSrc, floodSrcPorts, floodFlows, b.size, floodNice, b.runs)
		s.WriteString("| path | connections/s during the flood | without | during vs without | SYN flood Mpps | director's XDP verdicts: to the workers / cookies / spread / over the SYN budget / metered, Mpps | runs | wrk socket errors |\n|---|---:|---:|---:|---|---|---|---|\n")
		for _, r := range flood {
			var runs, offered, errs []string
			for i, x := range r.flood.runs {
				runs = append(runs, fmt.Sprintf("%.0f", x))
				offered = append(offered, fmt.Sprintf("%.3f", r.flood.offered[i]/1e6))
				if e := r.flood.errors[i]; e != "" {
					errs = append(errs, strings.TrimPrefix(e, "Socket errors: "))
				} else {
					errs = append(errs, "none")
				}
			}
			verdicts := make([]string, len(r.flood.synVerdicts))
			for i, v := range r.flood.synVerdicts {
				verdicts[i] = cmp.Or(v, "–")
			}
			fmt.Fprintf(&s, "| %s | %.0f | %.0f | %s | %s | %s | %s | %s |\n", r.path.desc, r.flood.connsPS, r.connsPS,
				ratio(r.flood.connsPS, r.connsPS), strings.Join(offered, ", "), strings.Join(verdicts, "; "), strings.Join(runs, ", "), strings.Join(errs, "; "))
		}
	}
	if len(results) > 0 {
		s.WriteString("\nSweep (one run per level):\n\n")
	}
	for _, r := range results {
		fmt.Fprintf(&s, "- %s:", r.path.name)
		for _, x := range r.sweep {
			fmt.Fprintf(&s, " [%s]", x)
		}
		s.WriteString("\n")
	}
	return s.String()
}

// cpuReport renders where the director's CPU went at each path's best
// level (the median run): govsd's workers, split into their Go code and
// the kernel's work in their system calls (sendto's transmit, poll), and
// the director's NAPI threads (the XDP program and the copy into the
// AF_XDP rings, or the kernel's whole forwarding), per delivered packet.
func cpuReport(results []result) string {
	var s strings.Builder
	s.WriteString("\nWhere the director's CPU goes, at each path's best level (the median run; per delivered packet, ns): " +
		"govsd's worker threads (`govs-w<queue>`, schedstat), split by their utime and stime (10 ms ticks) into their own Go code and the kernel's " +
		"work in their system calls (the AF_XDP transmit behind sendto, poll); and the director's NAPI threads (schedstat: the XDP program, " +
		"the copy into the AF_XDP rings, or for the kernel's paths their whole forwarding). CPUs: share of one CPU over the window.\n\n")
	s.WriteString("| path | delivered Mpps | workers CPUs | NAPI CPUs | workers: Go ns/pkt | workers: kernel ns/pkt | NAPI ns/pkt | director ns/pkt |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		x := r.best
		cpu, user, system := x.workerTotals()
		goNs, kernNs := "–", "–"
		if len(x.workers) > 0 && user+system > 0 {
			// The tick split, scaled to schedstat's exact total.
			goNs = fmt.Sprintf("%.0f", x.perPacket(cpu*user/(user+system)))
			kernNs = fmt.Sprintf("%.0f", x.perPacket(cpu*system/(user+system)))
		}
		fmt.Fprintf(&s, "| %s | %.3f | %.2f | %.2f | %s | %s | %.0f | %.0f |\n", r.path.name, x.delivered/1e6, cpu, x.napi,
			goNs, kernNs, x.perPacket(x.napi), x.perPacket(cpu+x.napi))
	}
	return s.String()
}

// queueReport sets each multi-queue path against its one-queue row.
func queueReport(results []result) string {
	byName := map[string]result{}
	for _, r := range results {
		byName[r.path.name] = r
	}
	var s strings.Builder
	for _, r := range results {
		if r.path.rxQueues() < 2 {
			continue
		}
		one, ok := byName[strings.TrimSuffix(r.path.name, fmt.Sprintf("-%dq", r.path.rxQueues()))]
		if !ok {
			continue
		}
		if s.Len() == 0 {
			s.WriteString("\nScaling with RX queues: the director's links with 2 RX queues, so govsd runs 2 workers, and the director has both CPUs; " +
				"a generator thread per queue (a veth puts an XDP frame on the RX queue of the sending CPU), each at half the offered rate, " +
				"SCHED_IDLE, so that it takes the time the director leaves. On 2 CPUs the generator shares the director's cores, and its pacing " +
				"waits busily inside BPF_PROG_RUN, where it yields the CPU late: the delivered rate is then the generator's and the director's " +
				"contention, not a scaling figure (see the generator's CPUs). The director's CPU per packet is: flat from 1 to 2 queues means " +
				"nothing the workers share costs more per packet with two of them.\n\n")
			s.WriteString("| path | 1 queue Mpps | 2 queues Mpps | 2 vs 1 | per-worker CPUs, 2 queues | generator CPUs, 2 queues | director ns/pkt, 1 queue | 2 queues | workers ns/pkt, 1 queue | 2 queues |\n|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
		}
		var per []string
		for _, w := range r.best.workers {
			per = append(per, fmt.Sprintf("%s %.2f", w.name, w.cpu))
		}
		c1, _, _ := one.best.workerTotals()
		c2, _, _ := r.best.workerTotals()
		ratio := "–"
		if one.best.delivered > 0 {
			ratio = fmt.Sprintf("%.2f×", r.best.delivered/one.best.delivered)
		}
		gen := "–"
		if r.best.gen >= 0 {
			gen = fmt.Sprintf("%.2f", r.best.gen)
		}
		fmt.Fprintf(&s, "| %s | %.3f | %.3f | %s | %s | %s | %.0f | %.0f | %.0f | %.0f |\n", one.path.desc, one.best.delivered/1e6, r.best.delivered/1e6, ratio,
			strings.Join(per, ", "), gen, one.best.perPacket(c1+one.best.napi), r.best.perPacket(c2+r.best.napi), one.best.perPacket(c1), r.best.perPacket(c2))
	}
	return s.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
