// Command govsadm controls a running govsd the way ipvsadm controls IPVS,
// and prints ipvsadm's tables.
//
//	govsadm -L -n          list virtual services and real servers
//	govsadm -L -n -c       list connections
//	govsadm --reload       re-read govsd's configuration file
//
// It finds govsd at --socket PATH, $GOVS_SOCKET, or /run/govs.sock.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/govs/govs/control"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	list, numeric, conns, jsonOut, reload, help, counters bool
	socket                                                string
}

func parseArgs(args []string) (*options, error) {
	o := &options{socket: os.Getenv("GOVS_SOCKET")}
	if o.socket == "" {
		o.socket = control.DefaultSocket
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-L", "-l", "--list":
			o.list = true
		case "-n", "--numeric":
			o.numeric = true
		case "-c", "--connection":
			o.conns = true
		case "--json":
			o.jsonOut = true
		case "--reload":
			o.reload = true
		case "--counters":
			o.counters = true
		case "-h", "--help":
			o.help = true
		case "--socket":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option --socket needs a path")
			}
			i++
			o.socket = args[i]
		default:
			// ipvsadm accepts bundled short options such as -Ln and -Lnc.
			if len(a) > 2 && a[0] == '-' && a[1] != '-' {
				rest := make([]string, 0, len(a)-1)
				for _, c := range a[1:] {
					rest = append(rest, "-"+string(c))
				}
				sub, err := parseArgs(rest)
				if err != nil {
					return nil, err
				}
				o.list = o.list || sub.list
				o.numeric = o.numeric || sub.numeric
				o.conns = o.conns || sub.conns
				continue
			}
			return nil, fmt.Errorf("unknown option %q (see govsadm --help)", a)
		}
	}
	return o, nil
}

const usage = `govsadm: control govsd like ipvsadm
  govsadm -L|-l [-n] [-c] [--json]   list services (or connections with -c)
  govsadm --reload                   re-read govsd's configuration file
  govsadm --counters [--json]        data-path and XDP counters
  --socket PATH                      govsd's control socket (default $GOVS_SOCKET or /run/govs.sock)
`

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "govsadm:", err)
		return 2
	}
	if o.help || (!o.list && !o.reload && !o.conns && !o.counters) {
		fmt.Fprint(stdout, usage)
		if o.help {
			return 0
		}
		return 2
	}
	c := control.NewClient(o.socket)
	switch {
	case o.reload:
		err = c.Reload()
	case o.counters:
		var k control.Counters
		if k, err = c.Counters(); err == nil {
			if o.jsonOut {
				err = writeJSON(stdout, k)
			} else {
				printCounters(stdout, k)
			}
		}
	case o.conns:
		var conns []control.Connection
		if conns, err = c.Connections(false); err == nil {
			if o.jsonOut {
				err = writeJSON(stdout, conns)
			} else {
				printConnections(stdout, conns)
			}
		}
	default:
		var svcs []control.Service
		if svcs, err = c.Services(); err == nil {
			if o.jsonOut {
				err = writeJSON(stdout, svcs)
			} else {
				printServices(stdout, svcs)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "govsadm:", err)
		return 1
	}
	return 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
