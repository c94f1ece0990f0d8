package daemon

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// Firewall-mark services through govsadm. IPVS takes the mark from
// iptables; govs matches packets in XDP, before netfilter, so the YAML
// defines what each mark matches (the marks section, or an fwmark
// service's own match). govsadm -A -f N creates a service for a mark the
// YAML defines and is refused for any other: a service that could match
// nothing would only hide the mistake. A mark's match cannot be changed
// through govsadm (edit the YAML and reload).

// markMatches flattens a mark's match for the data path.
func markMatches(m *config.Mark) []dataplane.MarkMatch {
	if m == nil {
		return nil
	}
	var out []dataplane.MarkMatch
	for _, p := range m.Prefixes {
		for _, proto := range m.Protocols {
			for _, r := range m.Ports {
				out = append(out, dataplane.MarkMatch{Prefix: p, Lo: r.Lo, Hi: r.Hi, Proto: proto})
			}
		}
	}
	return out
}

// familyAddr returns an address of the service's family: its VIP, or an
// fwmark service's first prefix's.
func familyAddr(s *dataplane.ServiceSpec) netip.Addr {
	if s.FwMark != 0 && len(s.Match) > 0 {
		return s.Match[0].Prefix.Addr()
	}
	return s.VIP
}

// markServiceSpec is serviceSpec for ipvsadm -A/-E -f N.
func markServiceSpec(cs control.ServiceSpec, s *dataplane.ServiceSpec, marks []config.Mark) error {
	var mark *config.Mark
	for i := range marks {
		if marks[i].FwMark == cs.FwMark {
			mark = &marks[i]
		}
	}
	if mark == nil {
		return fmt.Errorf("%w: fwmark %d has no match: govs matches marks in XDP, before netfilter, so the configuration file must define it "+
			"(marks: [{fwmark: %d, addresses: [...], ports: [...], protocols: [...]}]) and be reloaded first", control.ErrInvalid, cs.FwMark, cs.FwMark)
	}
	schedName := cs.Scheduler
	if schedName == "" {
		schedName = lvs.DefaultScheduler
	}
	flags, err := sched.ParseFlags(cs.Flags)
	if err != nil {
		return fmt.Errorf("%w: %v", control.ErrInvalid, err)
	}
	if _, err := sched.New(schedName, flags); err != nil {
		return fmt.Errorf("%w: %v", control.ErrInvalid, err)
	}
	s.FwMark, s.Match = cs.FwMark, markMatches(mark)
	s.VIP, s.Port, s.Proto, s.Scheduler, s.Flags = netip.Addr{}, 0, 0, schedName, flags
	if s.Name == "" {
		s.Name = fmt.Sprintf("fwm-%d", cs.FwMark)
	}
	s.Persistence, s.PersistBits = 0, 0
	if cs.Persistent > 0 {
		s.Persistence = time.Duration(cs.Persistent) * time.Second
		bits := mark.Prefixes[0].Addr().BitLen()
		if cs.Netmask != "" {
			if bits, err = maskBits(cs.Netmask, mark.Is4()); err != nil {
				return err
			}
		}
		s.PersistBits = bits
	}
	// Real servers already there must be of the mark's family.
	for _, ds := range s.Dests {
		if ds.Addr.Is4() != mark.Is4() {
			return fmt.Errorf("%w: real server %s is not of the family of fwmark %d's match", control.ErrInvalid, ds.Addr, cs.FwMark)
		}
	}
	return nil
}
