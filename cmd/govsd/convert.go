package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/govs/govs/migrate"
)

const convertUsage = `usage: govsd convert keepalived|ipvsadm [--interfaces IF,...] FILE

Prints a govs.yaml converted from keepalived.conf (with its includes) or
from ipvsadm rules (ipvsadm -S -n, ipvsadm-save, govsadm -S, ipvsadm command
lines) on stdout. What cannot be expressed in govs is reported on stderr as
FILE:LINE: message; the YAML is printed all the same, and govsd convert
exits 1: edit what the messages name (govsd -t tells what is still missing).
Notes (FILE:LINE: note: ...) say what was mapped with a difference or stays
keepalived's (VRRP); they do not change the exit status.

Exit status: 0 converted, 1 something not converted, 2 usage or unreadable file.
`

// runConvert is `govsd convert`.
func runConvert(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "keepalived" && args[0] != "ipvsadm") {
		fmt.Fprint(stderr, convertUsage)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("govsd convert "+kind, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ifaces := fs.String("interfaces", "", "director.interfaces, comma-separated (default: keepalived's VRRP interfaces, else eth0)")
	// Flags may come before or after FILE.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(stderr, "govsd convert: %v\n\n%s", err, convertUsage)
			return 2
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		files = append(files, rest[0])
		rest = rest[1:]
	}
	if len(files) != 1 {
		fmt.Fprint(stderr, convertUsage)
		return 2
	}
	var opts migrate.Options
	if *ifaces != "" {
		for _, i := range strings.Split(*ifaces, ",") {
			if i = strings.TrimSpace(i); i != "" {
				opts.Interfaces = append(opts.Interfaces, i)
			}
		}
	}
	var res *migrate.Result
	switch kind {
	case "keepalived":
		r, err := migrate.Keepalived(files[0], opts)
		if err != nil {
			fmt.Fprintf(stderr, "govsd convert: %v\n", err)
			return 2
		}
		res = r
	case "ipvsadm":
		data, err := os.ReadFile(files[0])
		if err != nil {
			fmt.Fprintf(stderr, "govsd convert: %v\n", err)
			return 2
		}
		res = migrate.Ipvsadm(data, files[0], opts)
	}
	stdout.Write(res.YAML)
	for _, m := range res.Messages {
		fmt.Fprintln(stderr, m)
	}
	if res.Invalid != nil {
		errs := 0
		for _, m := range res.Messages {
			if m.Severity == migrate.Error {
				errs++
			}
		}
		if errs == 0 {
			// Every problem should have been reported above; if the
			// output still does not validate, say so rather than exit 0.
			fmt.Fprintf(stderr, "govsd convert: the converted file does not validate (a bug in govsd convert):\n%v\n", res.Invalid)
		}
	}
	if res.Failed() {
		return 1
	}
	return 0
}
