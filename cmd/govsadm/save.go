package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/govs/govs/control"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/migrate"
)

// writeRules is `ipvsadm -S -n`: the table as the commands that rebuild it,
// which -R (and ipvsadm -R) read back. Services come sorted as in -L, each
// followed by its full-NAT local addresses and its real servers.
//
// Beyond ipvsadm's rules it also writes thresholds (-x, -y), local
// addresses (--add-laddr) and a service's --proxy-protocol and --toa, so
// that -S then -R gives back the same table. Rules that use none of them
// are ipvsadm's own.
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
		if s.ProxyProtocol != "" {
			b.WriteString(" --proxy-protocol " + s.ProxyProtocol)
		}
		if s.TOA {
			b.WriteString(" --toa")
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
	if p, _ := lvs.ParseProto(s.Protocol); p == lvs.ProtoUDP {
		opt = "-u"
	}
	return opt + " " + hostPort(s.VIP, s.Port)
}

// saveForwardOptions are the forwarding methods' options, as ipvsadm -S
// writes them.
var saveForwardOptions = map[lvs.Fwd]string{lvs.FwdNAT: "-m", lvs.FwdFullNAT: "--fullnat", lvs.FwdDR: "-g", lvs.FwdTun: "-i"}

// forwardSwitch maps the listing's forwarding word to its option. Local (or
// any word that is no method) is written as -g, as ipvsadm does.
func forwardSwitch(forward string) string {
	f, err := lvs.ParseFwd(forward)
	if err != nil {
		return "-g"
	}
	return saveForwardOptions[f]
}

// readRules splits -R input as ipvsadm's config_stream does
// (migrate.ReadRules, which govsd convert ipvsadm reads with too).
func readRules(r io.Reader) ([]migrate.RuleLine, error) { return migrate.ReadRules(r) }
