package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// connRow is one path of the connection-rate table: wrk's rate and the
// director CPU's busy time per connection, one value per interleaved round.
type connRow struct {
	path  path
	rates []float64 // connections per second, each round
	cpuUS []float64 // director CPU µs per connection, each round
	busy  []float64 // director CPU busy share, each round
	// clientBusy is the generator CPU's busy share, each round: wrk, nginx
	// and their TCP stacks share it, so near 100% it is what limits the
	// row rather than the path.
	clientBusy []float64
}

func (r connRow) rate() float64 { return medianOf(r.rates) }
func (r connRow) cpu() float64  { return medianOf(r.cpuUS) }

// clientCPU is the client CPU's busy time per connection, in µs (median of
// the rounds): what a path costs wrk, nginx and their TCP stacks.
func (r connRow) clientCPU() float64 {
	var v []float64
	for i, b := range r.clientBusy {
		if r.rates[i] > 0 {
			v = append(v, b*1e6/r.rates[i])
		}
	}
	return medianOf(v)
}

// connRate measures TCP connections per second (one HTTP request per
// connection) through each path, in b.runs interleaved rounds: every round
// sets each path up, warms it with a short wrk run, measures one wrk run
// while it reads the director CPU's busy time, and takes the path down
// again. Interleaving spreads the VM's slow phases over every path rather
// than over whichever was measured then.
func (b *bench) connRate(paths []path) ([]connRow, error) {
	rows := make([]connRow, len(paths))
	for i, p := range paths {
		rows[i].path = p
	}
	for round := 0; round < b.runs; round++ {
		for i, p := range paths {
			if err := b.ctx.Err(); err != nil {
				return nil, err
			}
			rate, cpuUS, busy, clientBusy, err := b.connRateOnce(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			b.logf("  round %d %s: %.0f connections/s, %.1f µs of director CPU per connection (%.0f%% busy; client CPU %.0f%% busy)",
				round+1, p.name, rate, cpuUS, busy*100, clientBusy*100)
			rows[i].rates = append(rows[i].rates, rate)
			rows[i].cpuUS = append(rows[i].cpuUS, cpuUS)
			rows[i].busy = append(rows[i].busy, busy)
			rows[i].clientBusy = append(rows[i].clientBusy, clientBusy)
		}
	}
	return rows, nil
}

func (b *bench) connRateOnce(p path) (rate, cpuUS, busy, clientBusy float64, err error) {
	teardown, err := b.setUp(p)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer teardown()
	// Warm-up: ARP, the real servers' accept queues, govsd's first
	// allocations; its rate is not kept.
	_, _, err = b.wrk(p.httpURL, time.Second)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	time.Sleep(200 * time.Millisecond)
	before, err := readCPU(b.lab.dirCPU)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	clientBefore, err := readCPU(b.lab.genCPU)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	var perf chan error
	if b.perfDir != "" {
		// A profile of the director's CPU during the run (once per
		// path: the last round's replaces the others).
		file := filepath.Join(b.perfDir, "conns-"+p.name+".perf")
		perf = make(chan error, 1)
		go func() {
			stat := exec.Command("perf", "stat", "-C", strconv.Itoa(b.lab.dirCPU), "-e", "context-switches,raw_syscalls:sys_enter,irq:softirq_entry",
				"-o", filepath.Join(b.perfDir, "conns-"+p.name+".stat"), "--", "sleep", strconv.Itoa(max(1, int(b.wrkDuration.Seconds())-1)))
			stat.Start()
			defer stat.Wait()
			out, err := exec.Command("perf", "record", "-q", "-a", "-g", "-o", file,
				"--", "sleep", strconv.Itoa(max(1, int(b.wrkDuration.Seconds())-1))).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("perf record: %w: %s", err, out)
			}
			perf <- err
		}()
	}
	rate, _, err = b.wrk(p.httpURL, b.wrkDuration)
	if perf != nil {
		if perr := <-perf; perr != nil {
			b.logf("warning: %v", perr)
		}
	}
	if err != nil {
		return 0, 0, 0, 0, err
	}
	after, err := readCPU(b.lab.dirCPU)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	clientAfter, err := readCPU(b.lab.genCPU)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	// wrk's rate times its duration is the connections it made; the
	// director's busy time over the same window (a little wider: wrk's
	// start and exit) is charged to them.
	conns := rate * b.wrkDuration.Seconds()
	busyTicks := after.busy - before.busy
	allTicks := after.total - before.total
	if conns > 0 {
		cpuUS = float64(busyTicks) * 1e6 / float64(userHZ) / conns
	}
	if allTicks > 0 {
		busy = float64(busyTicks) / float64(allTicks)
	}
	if d := clientAfter.total - clientBefore.total; d > 0 {
		clientBusy = float64(clientAfter.busy-clientBefore.busy) / float64(d)
	}
	time.Sleep(200 * time.Millisecond)
	return rate, cpuUS, busy, clientBusy, nil
}

// userHZ is the unit of /proc/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuTimes is one CPU's line of /proc/stat, in USER_HZ ticks.
type cpuTimes struct{ busy, total uint64 }

// readCPU reads CPU cpu's times: busy is everything but idle, iowait and
// steal (time the hypervisor gave to another guest).
func readCPU(cpu int) (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var t cpuTimes
		for i, f := range strings.Fields(line)[1:] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat %s: %w", prefix, err)
			}
			// user nice system idle iowait irq softirq steal guest guest_nice
			switch i {
			case 3, 4, 7:
			case 8, 9: // guest time is already in user and nice
				continue
			default:
				t.busy += v
			}
			t.total += v
		}
		return t, nil
	}
	return cpuTimes{}, fmt.Errorf("/proc/stat: no line for cpu %d", cpu)
}

// nginx is one nginx master process on a real server.
type nginx struct {
	cmd *exec.Cmd
	dir string
}

// nginxConf is the real servers' nginx: one worker, no keep-alive, no access
// log, a fixed body naming the server: so that a real server on the
// generator's CPU is not what limits the connection rate (the Go servers
// were: 6,600 connections/s direct, against nginx's 30,000 and more).
const nginxConf = `worker_processes 1;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	keepalive_timeout 0;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]d backlog=8192;
		location / { return 200 "%[3]s\n"; }
	}
}
`

// nginxBinary is where Debian's nginx package puts nginx; "" when it is not
// installed.
func nginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// serveNginx starts nginx on every real server, on the generator's CPU.
func (l *lab) serveNginx(bin string) (func(), error) {
	var procs []*nginx
	stop := func() {
		for _, n := range procs {
			n.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { n.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				n.cmd.Process.Kill()
				<-done
			}
			os.RemoveAll(n.dir)
		}
	}
	for i, rs := range l.reals {
		dir, err := os.MkdirTemp("", "govs-bench-nginx")
		if err != nil {
			stop()
			return nil, err
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, httpPort, fmt.Sprintf("rs%d", i+1))), 0o644); err != nil {
			os.RemoveAll(dir)
			stop()
			return nil, err
		}
		cmd := rs.Command(context.Background(), "taskset", "-c", strconv.Itoa(l.genCPU), bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			stop()
			return nil, fmt.Errorf("start nginx: %w", err)
		}
		procs = append(procs, &nginx{cmd: cmd, dir: dir})
	}
	// Ready when every server answers on its port.
	deadline := time.Now().Add(10 * time.Second)
	for i, rs := range l.reals {
		for {
			c, err := rs.Dial("tcp", fmt.Sprintf("%s:%d", realAddr(i), httpPort), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				log, _ := os.ReadFile(filepath.Join(procs[i].dir, "error.log"))
				return nil, fmt.Errorf("nginx on %s did not come up: %v\n%s", realAddr(i), err, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return stop, nil
}

// connReport renders the connection-rate table.
func connReport(rows []connRow, b *bench, server string) string {
	var s strings.Builder
	// The baseline is the kernel's forwarding to the same 4 real servers;
	// one real server alone (the kernel row) costs the servers' CPU less
	// per connection, so it is the baseline only without the direct row.
	var nft, direct, one float64
	var nftRuns []float64
	for _, r := range rows {
		switch r.path.name {
		case "nftables":
			nft, nftRuns = r.rate(), r.rates
		case "direct":
			direct = r.rate()
		case "kernel":
			one = r.rate()
		}
	}
	if direct == 0 {
		direct = one
	}
	ratio := func(v, base float64) string {
		if base == 0 || v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", v/base)
	}
	fmt.Fprintf(&s, "\nTCP connections per second: wrk -t%d -c%d -d%s -H 'Connection: close' from the client (CPU %d), one HTTP "+
		"request per connection, %s on the real servers (CPU %d; no TIME_WAIT kept: tcp_max_tw_buckets=0, so that client "+
		"ports reused from run to run do not stall). %d interleaved rounds (each round sets every path up in turn, warms it "+
		"with 1 s of wrk and measures one run); the median round is reported. Director CPU per connection: CPU %d's busy "+
		"time (/proc/stat: user, system, irq and softirq; govsd, its NAPI threads, the kernel's forwarding) during the run, "+
		"divided by the connections wrk made; busy: that CPU's busy share; client CPU: CPU %d's busy time per connection and busy "+
		"share (wrk, nginx and their TCP stacks: near 100%% busy, it is what limits a row). vs direct: against the kernel's "+
		"forwarding to the same 4 real servers (one real server alone costs the client CPU less per connection). Each column "+
		"is the median of its rounds; the runs column gives each round's rate and, in parentheses, its ratio to nftables' "+
		"in the same round (a round runs every path within seconds, while the VM's speed drifts over minutes).\n\n",
		b.wrkThreads, b.wrkConns, b.wrkDuration, b.lab.genCPU, server, b.lab.genCPU, b.runs, b.lab.dirCPU, b.lab.genCPU)
	s.WriteString("| path | connections/s | vs direct | vs nftables | director CPU µs/conn | director CPU busy | client CPU µs/conn | client CPU busy | runs (conn/s; vs nftables in the round) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		var runs []string
		for i, x := range r.rates {
			if r.path.name != "nftables" && i < len(nftRuns) && nftRuns[i] > 0 {
				runs = append(runs, fmt.Sprintf("%.0f (%.2f×)", x, x/nftRuns[i]))
			} else {
				runs = append(runs, fmt.Sprintf("%.0f", x))
			}
		}
		name := r.path.desc
		if r.path.name == "kernel" {
			name = "direct to one real server (kernel forwarding, no NAT)"
		}
		fmt.Fprintf(&s, "| %s | %.0f | %s | %s | %.1f | %.0f%% | %.1f | %.0f%% | %s |\n", name, r.rate(), ratio(r.rate(), direct),
			ratio(r.rate(), nft), r.cpu(), medianOf(r.busy)*100, r.clientCPU(), medianOf(r.clientBusy)*100, strings.Join(runs, ", "))
	}
	return s.String()
}
