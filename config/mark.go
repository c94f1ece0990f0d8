package config

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/govs/govs/lvs"
)

// MaxFwMark is the largest firewall mark (ipvsadm -f takes a 32-bit mark;
// 0 means "no mark").
const MaxFwMark = 1<<32 - 1

// MaxMarkPrefixes and MaxMarkRanges bound a mark's match: the XDP program
// (bpf/steering.go) keeps, per address prefix, a small fixed array of
// (protocol, port range) entries, which every mark whose prefixes cover
// that prefix shares.
const (
	MaxMarkPrefixes = 64
	MaxMarkRanges   = 8
)

// Mark is a firewall mark and the packets that carry it. IPVS relies on
// iptables to set the mark; the XDP program runs before netfilter, so here
// the mark is defined by what it matches: one address family, prefixes,
// port ranges and protocols. A packet matches when its destination address
// is in one of the prefixes, its destination port in one of the ranges and
// its protocol in Protocols.
type Mark struct {
	FwMark    uint32
	Prefixes  []netip.Prefix // one family, masked
	Ports     []PortRange    // sorted, not overlapping; never empty
	Protocols []lvs.Proto    // TCP, UDP or both
	Line      int
}

// PortRange is an inclusive range of ports, 1..65535.
type PortRange struct{ Lo, Hi uint16 }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Is4 reports the mark's family.
func (m *Mark) Is4() bool { return len(m.Prefixes) > 0 && m.Prefixes[0].Addr().Is4() }

// HasProto reports whether the mark matches protocol p.
func (m *Mark) HasProto(p lvs.Proto) bool {
	for _, q := range m.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// Matches reports whether a packet to addr:port of protocol proto carries
// the mark.
func (m *Mark) Matches(addr netip.Addr, port uint16, proto lvs.Proto) bool {
	if !m.HasProto(proto) || !m.hasPort(port) {
		return false
	}
	for _, p := range m.Prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (m *Mark) hasPort(port uint16) bool {
	for _, r := range m.Ports {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

// overlaps reports whether a packet could carry both marks.
func (m *Mark) overlaps(o *Mark) bool {
	if m.Is4() != o.Is4() {
		return false
	}
	proto := false
	for _, p := range o.Protocols {
		proto = proto || m.HasProto(p)
	}
	if !proto {
		return false
	}
	port := false
	for _, a := range m.Ports {
		for _, b := range o.Ports {
			port = port || (a.Lo <= b.Hi && b.Lo <= a.Hi)
		}
	}
	if !port {
		return false
	}
	for _, a := range m.Prefixes {
		for _, b := range o.Prefixes {
			if a.Overlaps(b) {
				return true
			}
		}
	}
	return false
}

// overlapsService reports whether packets to the plain service s could
// carry the mark (a port-0 service takes every port).
func (m *Mark) overlapsService(s *Service) bool {
	if !m.HasProto(s.Protocol) {
		return false
	}
	if s.Port != 0 && !m.hasPort(s.Port) {
		return false
	}
	for _, p := range m.Prefixes {
		if p.Contains(s.VIP) {
			return true
		}
	}
	return false
}

// String is the match in YAML's words, for messages.
func (m *Mark) String() string {
	var b strings.Builder
	for i, p := range m.Prefixes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	b.WriteString(" ports ")
	for i, r := range m.Ports {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.String())
	}
	for i, p := range m.Protocols {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(p.Name())
	}
	return b.String()
}

var matchKeys = []string{"addresses", "ports", "protocols"}

// fwmark parses an fwmark key's value.
func (p *parser) fwmark(f field) (uint32, bool) {
	v, ok := p.integer(f.val, f.path, 1, MaxFwMark)
	return uint32(v), ok
}

// marks parses the top-level marks section: matches of marks that
// govsadm -A -f N may use without a service in the file.
func (p *parser) marks(f field) []Mark {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	out := make([]Mark, 0, len(items)) // p.markDefs points into it
	for i, it := range items {
		path := indexPath(f.path, i)
		m := p.mapping(it, path, append([]string{"fwmark"}, matchKeys...)...)
		if m == nil {
			continue
		}
		mf, ok := p.require(m, "fwmark")
		if !ok {
			continue
		}
		id, ok := p.fwmark(mf)
		if !ok {
			continue
		}
		mk, ok := p.matchBody(m, path)
		if !ok {
			continue
		}
		mk.FwMark, mk.Line = id, m.line()
		if first, dup := p.markDefs[id]; dup {
			p.errorf(mf.val, mf.path, "fwmark %d is defined twice (first at line %d)", id, first.Line)
			continue
		}
		out = append(out, mk)
		p.markDefs[id] = &out[len(out)-1]
	}
	return out
}

// match parses a service's match section.
func (p *parser) match(f field) (Mark, bool) {
	m := p.mapping(f.val, f.path, matchKeys...)
	if m == nil {
		return Mark{}, false
	}
	mk, ok := p.matchBody(m, f.path)
	mk.Line = m.line()
	return mk, ok
}

func (p *parser) matchBody(m *mapping, path string) (Mark, bool) {
	mk := Mark{Protocols: []lvs.Proto{lvs.ProtoTCP}}
	good := true
	if f, ok := p.require(m, "addresses"); ok {
		items, ok := p.list(f.val, f.path)
		if ok && len(items) == 0 {
			p.errorf(f.val, f.path, "at least one address or prefix is required")
			ok = false
		}
		if ok && len(items) > MaxMarkPrefixes {
			p.errorf(f.val, f.path, "%d prefixes: at most %d per mark", len(items), MaxMarkPrefixes)
			ok = false
		}
		good = good && ok
		for i, it := range items {
			ip := indexPath(f.path, i)
			pfx, ok := p.prefix(it, ip)
			if !ok {
				good = false
				continue
			}
			if len(mk.Prefixes) > 0 && pfx.Addr().Is4() != mk.Prefixes[0].Addr().Is4() {
				p.errorf(it, ip, "%s: a mark's addresses are of one family (the first is %s)", pfx, mk.Prefixes[0])
				good = false
				continue
			}
			for _, q := range mk.Prefixes {
				if q.Overlaps(pfx) {
					p.errorf(it, ip, "%s overlaps %s of the same mark", pfx, q)
					good = false
				}
			}
			mk.Prefixes = append(mk.Prefixes, pfx)
		}
	} else {
		good = false
	}
	if f, ok := m.get("ports"); ok {
		items, ok := p.list(f.val, f.path)
		if ok && len(items) == 0 {
			p.errorf(f.val, f.path, "at least one port or range is required (leave the key out for every port)")
			ok = false
		}
		good = good && ok
		for i, it := range items {
			ip := indexPath(f.path, i)
			r, ok := p.portRange(it, ip)
			if !ok {
				good = false
				continue
			}
			for _, q := range mk.Ports {
				if r.Lo <= q.Hi && q.Lo <= r.Hi {
					p.errorf(it, ip, "%s overlaps %s", r, q)
					good = false
				}
			}
			mk.Ports = append(mk.Ports, r)
		}
		sort.Slice(mk.Ports, func(i, j int) bool { return mk.Ports[i].Lo < mk.Ports[j].Lo })
	} else {
		mk.Ports = []PortRange{{1, 65535}}
	}
	if f, ok := m.get("protocols"); ok {
		mk.Protocols = nil
		items, ok := p.list(f.val, f.path)
		if ok && len(items) == 0 {
			p.errorf(f.val, f.path, "at least one protocol is required")
			ok = false
		}
		good = good && ok
		for i, it := range items {
			ip := indexPath(f.path, i)
			j, ok := p.enum(it, ip, protocolNames)
			if !ok {
				good = false
				continue
			}
			if mk.HasProto(lvs.ServiceProtos[j]) {
				p.errorf(it, ip, "duplicate protocol %s", lvs.ServiceProtos[j].Name())
				good = false
				continue
			}
			mk.Protocols = append(mk.Protocols, lvs.ServiceProtos[j])
		}
	}
	if good && len(mk.Ports)*len(mk.Protocols) > MaxMarkRanges {
		p.errorf(m.node, path, "%d port ranges × %d protocols: at most %d (protocol, range) pairs per mark", len(mk.Ports), len(mk.Protocols), MaxMarkRanges)
		good = false
	}
	return mk, good
}

// prefix parses an address (a /32 or /128) or a prefix; host bits must be 0.
func (p *parser) prefix(n *yaml.Node, path string) (netip.Prefix, bool) {
	s, ok := p.scalar(n, path, "an IP address or prefix")
	if !ok {
		return netip.Prefix{}, false
	}
	n = deref(n)
	if !strings.Contains(s, "/") {
		a, ok := p.unicastAddr(n, path)
		if !ok {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		p.errorf(n, path, "%q is not an address prefix like 198.18.0.0/24", s)
	case pfx.Addr().Is4In6() || pfx.Addr().Zone() != "":
		p.errorf(n, path, "%q: write IPv4 prefixes as a.b.c.d/n, without zones", s)
	case pfx.Masked() != pfx:
		p.errorf(n, path, "%s has host bits set (did you mean %s?)", s, pfx.Masked())
	case pfx.Bits() == 0:
		p.errorf(n, path, "%s would take every address", s)
	default:
		return pfx, true
	}
	return netip.Prefix{}, false
}

// portRange parses a port (80) or a range ("8000-8080").
func (p *parser) portRange(n *yaml.Node, path string) (PortRange, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, ok := p.port(n, path, false)
		return PortRange{v, v}, ok
	}
	s, ok := p.scalar(n, path, "a port or a range like 8000-8080")
	if !ok {
		return PortRange{}, false
	}
	lo, hi, found := strings.Cut(s, "-")
	a, errA := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, errB := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	switch {
	case !found || errA != nil || errB != nil:
		p.errorf(n, path, "want a port or a range like 8000-8080, got %q", s)
	case a == 0 || b == 0:
		p.errorf(n, path, "%q: ports are 1..65535", s)
	case a > b:
		p.errorf(n, path, "%q: the range is empty (%d > %d)", s, a, b)
	default:
		return PortRange{uint16(a), uint16(b)}, true
	}
	return PortRange{}, false
}

// resolveMarks adds the services' own matches to cfg.Marks and checks
// that no packet could be both a plain service's and a mark's, or two
// marks'. The marks section was checked for duplicates as it was parsed.
func (p *parser) resolveMarks(cfg *Config, svcPaths []string) {
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.FwMark == 0 || s.Match == nil {
			continue
		}
		if _, shared := p.markDefs[s.FwMark]; !shared {
			cfg.Marks = append(cfg.Marks, *s.Match)
		}
	}
	for i := range cfg.Marks {
		a := &cfg.Marks[i]
		for j := i + 1; j < len(cfg.Marks); j++ {
			b := &cfg.Marks[j]
			if a.FwMark != b.FwMark && a.overlaps(b) {
				p.errorAtLine(b.Line, "fwmark "+strconv.FormatUint(uint64(b.FwMark), 10),
					"match %s overlaps fwmark %d's (line %d): a packet may carry only one mark", b, a.FwMark, a.Line)
			}
		}
		for k := range cfg.Services {
			s := &cfg.Services[k]
			if s.FwMark == 0 && s.VIP.IsValid() && a.overlapsService(s) {
				p.errorAtLine(s.Line, svcPaths[k], "service %s overlaps the match of fwmark %d (line %d): a packet may belong to one service only",
					s.Key(), a.FwMark, a.Line)
			}
		}
	}
	sort.Slice(cfg.Marks, func(i, j int) bool { return cfg.Marks[i].FwMark < cfg.Marks[j].FwMark })
}
