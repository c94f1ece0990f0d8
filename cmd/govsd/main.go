// Command govsd is the govs director daemon: an L4 load balancer in the
// manner of Linux LVS/IPVS, in userspace on AF_XDP.
//
//	govsd -c /etc/govs/govs.yaml        run the director
//	govsd -t -c /etc/govs/govs.yaml     validate the configuration and exit
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/govs/govs/config"
	"github.com/govs/govs/daemon"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("govsd", flag.ContinueOnError)
	path := fs.String("c", "/etc/govs/govs.yaml", "configuration `file`")
	check := fs.Bool("t", false, "validate the configuration and exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *check {
		if _, err := config.Load(*path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s: configuration OK\n", *path)
		return 0
	}
	log, err := newLogger(*logFormat, *debug)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := daemon.Run(context.Background(), *path, log); err != nil {
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
