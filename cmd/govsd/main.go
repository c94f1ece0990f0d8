// Command govsd is the govs director daemon: an L4 load balancer in the
// manner of Linux LVS/IPVS, in userspace on AF_XDP.
//
//	govsd -c /etc/govs/govs.yaml        run the director
//	govsd -t -c /etc/govs/govs.yaml     validate the configuration and exit
//	govsd -version                      print the version (stamped by make build from git)
//	govsd --takeover -c ...             replace a running govsd without dropping a connection
//	govsd --cleanup -c ...              remove what a stopped govsd left (XDP, pins, VIPs)
//	govsd convert keepalived|ipvsadm [--interfaces IF,...] FILE
//	                                    print a govs.yaml from keepalived.conf or ipvsadm rules
//	govsd decap --interface eth0 --vip 198.18.2.100
//	                                    on a real server: strip LVS-TUN's outer header
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/govs/govs/config"
	"github.com/govs/govs/daemon"
	"github.com/govs/govs/version"
)

// The main goroutine keeps the main thread for itself, so that no worker
// runs there: a worker names its thread (govs-w<queue>), and the main
// thread's name is the process's, which pidof and keepalived's
// track_process look for.
func init() { runtime.LockOSThread() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "decap" {
		return runDecap(args[1:])
	}
	if len(args) > 0 && args[0] == "convert" {
		return runConvert(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("govsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "/etc/govs/govs.yaml", "configuration `file`")
	check := fs.Bool("t", false, "validate the configuration and exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log at debug level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to `file` until govsd stops")
	takeover := fs.Bool("takeover", false, "take over from the govsd running on the same control socket (upgrade)")
	cleanup := fs.Bool("cleanup", false, "remove the XDP program, pinned state and VIPs a stopped govsd left, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "govsd %s (go %s)\n", version.String(), version.Go())
		return 0
	}
	if *check {
		// What a start checks: the file, then what it needs of this
		// machine (interfaces, the sync key, exec checks' commands).
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		warnings, err := config.CheckHost(cfg, *path)
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration OK\n", *path)
		return 0
	}
	log, err := newLogger(*logFormat, *debug)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *cleanup {
		if err := daemon.Cleanup(*path, log); err != nil {
			log.Error("govsd cleanup failed", "err", err)
			return 1
		}
		return 0
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "cpu profile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := daemon.RunWith(context.Background(), *path, log, daemon.RunOptions{Takeover: *takeover}); err != nil {
		log.Error("govsd failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(format string, debug bool) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}
