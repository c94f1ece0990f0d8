package main

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/govs/govs/control"
)

// writeRules is `ipvsadm -S -n`: the table as the commands that rebuild it,
// which -R (and ipvsadm -R) read back. Services come sorted as in -L, each
// followed by its full-NAT local addresses and its real servers.
//
// Beyond ipvsadm's rules it also writes thresholds (-x, -y) and local
// addresses (--add-laddr), so that -S then -R gives back the same table.
func writeRules(w io.Writer, svcs []control.Service) {
	svcs = append([]control.Service(nil), svcs...)
	sortServices(svcs)
	var b strings.Builder
	for i := range svcs {
		s := &svcs[i]
		svc := ruleService(s)
		b.Reset()
		b.WriteString("-A " + svc + " -s " + s.Scheduler)
		if s.Persistent > 0 {
			b.WriteString(" -p " + strconv.Itoa(s.Persistent))
			if m := persistenceMask(s); m != "" {
				b.WriteString(" -M " + m)
			}
		}
		if flags := schedFlagNames(s.Scheduler, s.Flags); len(flags) > 0 {
			b.WriteString(" -b " + strings.Join(flags, ","))
		}
		fmt.Fprintln(w, b.String())
		for _, l := range s.LocalAddresses {
			fmt.Fprintf(w, "--add-laddr %s -z %s\n", svc, l)
		}
		for j := range s.Dests {
			d := &s.Dests[j]
			b.Reset()
			fmt.Fprintf(&b, "-a %s -r %s %s -w %d", svc, hostPort(d.Address, d.Port), forwardSwitch(d.Forward), d.Weight)
			if d.UpperThresh > 0 {
				fmt.Fprintf(&b, " -x %d", d.UpperThresh)
			}
			if d.LowerThresh > 0 {
				fmt.Fprintf(&b, " -y %d", d.LowerThresh)
			}
			fmt.Fprintln(w, b.String())
		}
	}
}

// ruleService is the service option of a rule: -t or -u and the address,
// or -f and the mark (with -6 for an IPv6 mark), as ipvsadm -S writes it.
func ruleService(s *control.Service) string {
	if s.FwMark != 0 {
		if s.IPv6 {
			return "-f " + strconv.FormatUint(uint64(s.FwMark), 10) + " -6"
		}
		return "-f " + strconv.FormatUint(uint64(s.FwMark), 10)
	}
	opt := "-t"
	if strings.EqualFold(s.Protocol, "udp") {
		opt = "-u"
	}
	return opt + " " + hostPort(s.VIP, s.Port)
}

// forwardSwitch maps the listing's forwarding word to its option. Local is
// written as -g, as ipvsadm does.
func forwardSwitch(forward string) string {
	switch strings.ToLower(forward) {
	case "masq", fwdNAT:
		return "-m"
	case "tunnel", fwdTun:
		return "-i"
	case "fullnat":
		return "--fullnat"
	default:
		return "-g"
	}
}

// ruleLine is one command of -R input and the line it came from.
type ruleLine struct {
	num  int
	args []string
}

// readRules splits -R input as ipvsadm's config_stream does: words
// separated by blanks, one command per line. Blank lines and comments (from
// a word starting with '#') are skipped, and a leading "ipvsadm" or
// "govsadm" word is dropped, so a file of ipvsadm command lines also reads.
func readRules(r io.Reader) ([]ruleLine, error) {
	var out []ruleLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for num := 1; sc.Scan(); num++ {
		words := strings.Fields(sc.Text())
		for i, wd := range words {
			if strings.HasPrefix(wd, "#") {
				words = words[:i]
				break
			}
		}
		if len(words) > 0 {
			if base := filepath.Base(words[0]); base == "ipvsadm" || base == "govsadm" {
				words = words[1:]
			}
		}
		if len(words) == 0 {
			continue
		}
		out = append(out, ruleLine{num: num, args: words})
	}
	return out, sc.Err()
}
