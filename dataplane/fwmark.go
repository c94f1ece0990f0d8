package dataplane

import (
	"context"
	"net/netip"
	"slices"
	"sort"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Firewall-mark services (ipvsadm -f). IPVS reads the mark iptables set;
// the XDP program runs before netfilter, so a mark is what its match says
// (config.Mark): prefixes of one family, port ranges, protocols. The XDP
// program steers matching packets (bpf/marks.go) after its plain-service
// lookup misses; a worker finds the service the same way (snapshot.lookup).
// From there an fwmark service is a service like any other, with three
// differences, all IPVS's:
//
//   - its persistence template is keyed by the client and the mark, with
//     port 0 and protocol 0, so a client sticks to one real server across
//     every address, port and protocol of the mark (templateKey);
//   - a real server of port 0 gets the packet's destination port (NAT and
//     full-NAT rewrite the address only; DR and TUN never change ports);
//   - the SYN proxy never engages (the XDP SYN defence keys its flags by
//     service endpoint): SYNs to an fwmark service only meet the director's
//     SYN rate limit, beyond which they are dropped, as for syn_proxy: off.
//
// Later fragments to a mark's prefixes are steered by address like those to
// a VIP (bpf/include/frag.h reads the marks trie), and follow their first
// fragment (frag.go). Connection entries, the fast path's flow entries and
// full-NAT local ports are per connection tuple and need nothing more.

// markProtos returns the protocols of an fwmark service's match, sorted,
// or nil for a plain service.
func markProtos(sp *ServiceSpec) []lvs.Proto {
	if sp.FwMark == 0 {
		return nil
	}
	var out []lvs.Proto
	for _, m := range sp.Match {
		if !slices.Contains(out, m.Proto) {
			out = append(out, m.Proto)
		}
	}
	slices.Sort(out)
	return out
}

// addMarks adds svc's matches to the lookup lists, keeping them longest
// prefix first.
func (s *snapshot) addMarks(svc *Service) {
	for _, m := range svc.Match {
		p := m.Prefix.Masked()
		e := markEntry{addr: inet.AddrFromNetip(p.Addr()), bits: p.Bits(), lo: m.Lo, hi: m.Hi, proto: m.Proto, svc: svc}
		if p.Addr().Is4() {
			s.marks4 = append(s.marks4, e)
		} else {
			s.marks6 = append(s.marks6, e)
		}
	}
	for _, l := range [][]markEntry{s.marks4, s.marks6} {
		sort.SliceStable(l, func(i, j int) bool { return l[i].bits > l[j].bits })
	}
}

// markPrefixes is what the XDP program's marks trie must hold.
func (s *snapshot) markPrefixes() []bpf.MarkPrefix {
	var out []bpf.MarkPrefix
	for _, svc := range s.byMark {
		for _, m := range svc.Match {
			out = append(out, bpf.MarkPrefix{Prefix: m.Prefix.Masked(),
				Ranges: []bpf.MarkRange{{Lo: m.Lo, Hi: m.Hi, Proto: uint8(m.Proto), ServiceID: svc.ID}}})
		}
	}
	return out
}

// dropService takes a removed service out of next: it is no longer found
// by id, and its real servers drain.
func (s *snapshot) dropService(svc *Service) {
	s.services[svc.ID] = nil
	now := nanotime()
	for _, dst := range svc.Dests {
		removeDest(dst, now)
	}
}

// markVIP is what an fwmark template holds as its virtual address: the mark
// as an IPv4 address, as IPVS does (ipvsadm -Lnc shows 0.0.0.1:0 for mark 1).
func markVIP(mark uint32) inet.Addr {
	return inet.AddrFrom4([4]byte{byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)})
}

// destPort is the port a connection's requests go to on real server dst:
// its own, or, for a server of port 0, the port the client asked for.
func destPort(dst *Dest, vport uint16) uint16 {
	if dst.Port == 0 {
		return vport
	}
	return dst.Port
}

// fwmarkTemplateKey is the template key of an fwmark service: client and
// mark, port 0, protocol 0 (every port and protocol of the mark).
func fwmarkTemplateKey(svc *Service, p *packet.Parsed) conntrack.TemplateKey {
	return conntrack.TemplateKey{Client: p.Src.Mask(svc.PersistBits), VIP: markVIP(svc.FwMark), Service: svc.ID}
}

// ExpireMarkTemplates is ExpireTemplates for the fwmark service of mark.
func (d *Director) ExpireMarkTemplates(ctx context.Context, mark uint32, dest netip.AddrPort) (int, error) {
	return d.expireTemplates(ctx, d.state.Load().byMark[mark], dest)
}
