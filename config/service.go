package config

import (
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

var (
	serviceKeys = []string{"name", "fwmark", "match", "vip", "port", "protocol", "scheduler", "scheduler_flags", "forward",
		"persistence", "local_addresses", "health_check", "on_failure", "expire_quiescent_template", "sorry_server", "check_via_vip", "syn_proxy", "sloppy", "proxy_protocol", "toa", "real_servers"}
	realServerKeys = []string{"address", "port", "weight", "forward", "upper_threshold", "lower_threshold", "health_check"}
	protocolNames  = protoNames(lvs.ServiceProtos)
)

func protoNames(protos []lvs.Proto) []string {
	out := make([]string, len(protos))
	for i, pr := range protos {
		out[i] = pr.Name()
	}
	return out
}

// serviceNamePattern keeps names usable as metric labels and command-line
// arguments without quoting.
var serviceNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// serviceState is a parsed service plus what the cross-service checks need to
// know about which parts parsed cleanly.
type serviceState struct {
	svc    Service
	nameOK bool
	keyOK  bool // VIP, port and protocol are all valid
	path   string
}

func (p *parser) services(n *yaml.Node, path string) ([]Service, []string) {
	items, ok := p.list(n, path)
	if !ok {
		return nil, nil
	}
	out := make([]Service, 0, len(items))
	paths := make([]string, 0, len(items))
	byName := map[string]*serviceState{}
	byKey := map[ServiceKey]*serviceState{}
	for i, it := range items {
		st := p.service(it, indexPath(path, i))
		if st == nil {
			continue
		}
		s := &st.svc
		if st.nameOK {
			if first, dup := byName[s.Name]; dup {
				p.errorAtLine(s.Line, joinPath(st.path, "name"), "duplicate service name %q (first: %s at line %d)", s.Name, first.path, first.svc.Line)
			} else {
				byName[s.Name] = st
			}
		}
		if st.keyOK {
			if first, dup := byKey[s.Key()]; dup {
				p.errorAtLine(s.Line, st.path, "duplicate service %s (first: %s %q at line %d)", s.Key(), first.path, first.svc.Name, first.svc.Line)
			} else {
				byKey[s.Key()] = st
			}
		}
		out = append(out, st.svc)
		paths = append(paths, st.path)
	}
	return out, paths
}

// serviceOK says which of a service's keys parsed cleanly, so that the
// checks involving several keys blame only the key at fault.
type serviceOK struct {
	isMark bool // an fwmark service: vip stands for the match's family
	vip    bool
	port   bool
	proto  bool
	sched  bool
	fwd    bool
	portF  field // the port key, for the port-0 check
}

// service parses one service and runs the checks that involve several of its
// keys. Problems are recorded; the result is only used for further checks.
// The steps run in the order of the keys they depend on: identity, then
// scheduling, then what refers to both (health, sorry server, real servers).
func (p *parser) service(n *yaml.Node, path string) *serviceState {
	m := p.mapping(n, path, serviceKeys...)
	if m == nil {
		return nil
	}
	st := &serviceState{path: path}
	s := &st.svc
	s.Line = m.line()
	s.Protocol = lvs.ProtoTCP
	s.Scheduler = lvs.DefaultScheduler
	s.Forward = lvs.FwdNAT

	st.nameOK = p.serviceName(m, s)
	ok := p.serviceIdentity(m, st)
	p.serviceScheduling(m, s, &ok)
	localF, hasLocal := p.serviceLocalAddresses(m, s, ok)
	checkMap := p.serviceHealthCheck(m, s)
	p.serviceOptions(m, s, ok)
	proxyF, hasProxy := m.get("syn_proxy")
	if hasProxy {
		if i, good := p.enum(proxyF.val, proxyF.path, synProxyNames); good {
			s.SynProxy = SynProxyMode(i)
		}
	}
	fullNATLine := p.serviceRealServers(m, s, checkMap, ok)
	if hasProxy && s.SynProxy == SynProxyOn {
		if ok.isMark {
			p.errorf(proxyF.val, proxyF.path, "on is not available for fwmark services (the XDP SYN proxy is keyed by a service's address and port; auto never engages for them)")
		} else {
			p.checkSynProxyOn(proxyF, s, ok.proto, ok.fwd)
		}
	}
	p.serviceClientAddr(m, s, ok)
	if ok.isMark {
		s.VIP = netip.Addr{} // it stood for the match's family in the checks above
	}
	switch {
	case fullNATLine != 0 && !hasLocal:
		p.errorAtLine(s.Line, joinPath(path, "local_addresses"), "required because forward: fullnat is used (line %d)", fullNATLine)
	case fullNATLine == 0 && hasLocal && ok.fwd:
		p.errorf(localF.key, localF.path, "only used with forward: fullnat, which neither the service nor any real server uses")
	}
	return st
}

// serviceName parses the required name and reports whether it is usable.
func (p *parser) serviceName(m *mapping, s *Service) bool {
	f, ok := p.require(m, "name")
	if !ok {
		return false
	}
	name, ok := p.nonEmptyStr(f.val, f.path)
	if !ok {
		return false
	}
	if !serviceNamePattern.MatchString(name) {
		p.errorf(f.val, f.path, "%q: names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		return false
	}
	s.Name = name
	return true
}

// serviceIdentity parses what identifies the service: its fwmark and
// match, or its vip, port and protocol.
func (p *parser) serviceIdentity(m *mapping, st *serviceState) serviceOK {
	s := &st.svc
	ok := serviceOK{proto: true, sched: true, fwd: true}
	fwF, isMark := m.get("fwmark")
	if isMark {
		ok.isMark = true
		ok.vip, ok.port = p.markService(m, fwF, s, &st.keyOK)
		return ok
	}
	if f, has := m.get("match"); has {
		p.errorf(f.key, f.path, "only used with fwmark (a service with vip and port takes just those)")
	}
	vipF, vipOK := p.require(m, "vip")
	if vipOK {
		s.VIP, vipOK = p.unicastAddr(vipF.val, vipF.path)
	}
	portF, portOK := p.require(m, "port")
	if portOK {
		s.Port, portOK = p.port(portF.val, portF.path, true)
	}
	if f, has := m.get("protocol"); has {
		var i int
		if i, ok.proto = p.enum(f.val, f.path, protocolNames); ok.proto {
			s.Protocol = lvs.ServiceProtos[i]
		}
	}
	ok.vip, ok.port, ok.portF = vipOK, portOK, portF
	st.keyOK = vipOK && portOK && ok.proto
	return ok
}

// serviceScheduling parses how connections are placed and forwarded:
// scheduler, its flags, forward and persistence.
func (p *parser) serviceScheduling(m *mapping, s *Service, ok *serviceOK) {
	if f, has := m.get("scheduler"); has {
		var i int
		names := sched.Names()
		if i, ok.sched = p.enum(f.val, f.path, names); ok.sched {
			s.Scheduler = names[i]
		}
	}
	if f, has := m.get("scheduler_flags"); has {
		s.SchedulerFlags = p.schedulerFlags(f, s.Scheduler, ok.sched)
	}
	if f, has := m.get("forward"); has {
		var fwd *lvs.Fwd
		if fwd, ok.fwd = p.forward(f); ok.fwd {
			s.Forward = *fwd
		}
	}
	if f, has := m.get("persistence"); has {
		s.Persistence = p.persistence(f, s.VIP, ok.vip)
	}
	if !ok.isMark && ok.port && s.Port == 0 && s.Persistence == nil {
		p.errorf(ok.portF.val, ok.portF.path, "port 0 (all ports) is only allowed with persistence")
	}
}

// serviceLocalAddresses parses the full-NAT source addresses; whether they
// are needed is known only after the real servers.
func (p *parser) serviceLocalAddresses(m *mapping, s *Service, ok serviceOK) (field, bool) {
	localF, hasLocal := m.get("local_addresses")
	if !hasLocal {
		return localF, false
	}
	s.LocalAddresses = p.addrList(localF, true, true)
	if ok.vip {
		for i, a := range s.LocalAddresses {
			if a.Is4() != s.VIP.Is4() {
				p.errorf(localF.val, indexPath(localF.path, i), "%s: local addresses must have the family of the vip %s", a, s.VIP)
			}
		}
	}
	return localF, true
}

// serviceOptions parses the keys that tune the service's behaviour:
// on_failure, expire_quiescent_template, sorry_server, check_via_vip and
// sloppy, with their checks against the forwarding method.
func (p *parser) serviceOptions(m *mapping, s *Service, ok serviceOK) {
	if f, has := m.get("on_failure"); has {
		if i, good := p.enum(f.val, f.path, onFailureNames); good {
			s.OnFailure = OnFailure(i)
		}
	}
	s.ExpireQuiescentTemplate = p.expireQuiescent
	if f, has := m.get("expire_quiescent_template"); has {
		if v, good := p.boolean(f.val, f.path); good {
			s.ExpireQuiescentTemplate = v
		}
	}
	if f, has := m.get("sorry_server"); has {
		s.SorryServer = p.sorryServer(f, s, ok.vip, ok.port, ok.fwd)
	}
	natLike := ok.fwd && !s.Forward.InputOnly() // replies come back through the director
	if f, has := m.get("check_via_vip"); has {
		s.CheckViaVIP, _ = p.boolean(f.val, f.path)
		if s.CheckViaVIP && ok.isMark {
			p.errorf(f.val, f.path, "not available for fwmark services (a mark has no single VIP to probe through)")
		} else if s.CheckViaVIP && natLike {
			p.errorf(f.val, f.path, "only meaningful with forward: dr or tun (the service uses %s)", s.Forward.Name())
		}
	}
	s.Sloppy = p.sloppy
	if f, has := m.get("sloppy"); has {
		if v, good := p.boolean(f.val, f.path); good {
			s.Sloppy = v
			if v && natLike {
				p.errorf(f.val, f.path, "only dr and tun real servers can take a flow mid-way (the service uses %s; moved NAT flows need connection sync)", s.Forward.Name())
			}
		}
	}
}

// serviceRealServers parses the real servers and returns the line of the
// first use of full-NAT (by the service or a server), 0 when none.
func (p *parser) serviceRealServers(m *mapping, s *Service, checkMap *mapping, ok serviceOK) int {
	var fullNATLine int
	if ok.fwd && s.Forward == lvs.FwdFullNAT {
		fullNATLine = s.Line
		if f, has := m.get("forward"); has {
			fullNATLine = f.val.Line
		}
	}
	f, has := m.get("real_servers")
	if !has {
		return fullNATLine
	}
	items, good := p.list(f.val, f.path)
	if !good {
		return fullNATLine
	}
	seen := map[netip.AddrPort]int{}
	for i, it := range items {
		rs, good := p.realServer(it, indexPath(f.path, i), s, checkMap, rsContext{vipOK: ok.vip, portOK: ok.port, fwdOK: ok.fwd})
		if !good {
			continue
		}
		if rs.Address.IsValid() {
			ap := netip.AddrPortFrom(rs.Address, rs.Port)
			if line, dup := seen[ap]; dup {
				p.errorAtLine(rs.Line, indexPath(f.path, i), "duplicate real server %s (first at line %d)", ap, line)
			} else {
				seen[ap] = rs.Line
			}
		}
		if rs.Forward != nil && *rs.Forward == lvs.FwdFullNAT && fullNATLine == 0 {
			fullNATLine = rs.Line
		}
		s.RealServers = append(s.RealServers, rs)
	}
	return fullNATLine
}

// markService parses the identity of an fwmark service: its mark and its
// match (its own or the marks section's). vip, port and protocol are
// refused. It returns what stands for vipOK and portOK in the other checks:
// s.VIP is set to an address of the match's family until the service is
// parsed (the family checks read it), Port is 0.
func (p *parser) markService(m *mapping, fwF field, s *Service, keyOK *bool) (famOK, portOK bool) {
	for _, k := range []string{"vip", "port", "protocol"} {
		if f, ok := m.get(k); ok {
			p.errorf(f.key, f.path, "not used with fwmark: the match says which addresses, ports and protocols are the service's")
		}
	}
	id, ok := p.fwmark(fwF)
	if !ok {
		return false, true
	}
	s.FwMark, *keyOK = id, true
	def := p.markDefs[id]
	if f, has := m.get("match"); has {
		mk, ok := p.match(f)
		if def != nil {
			p.errorf(f.key, f.path, "fwmark %d is also defined in marks (line %d): define its match once", id, def.Line)
		} else if ok {
			mk.FwMark = id
			s.Match = &mk
		}
	} else if def != nil {
		mk := *def
		s.Match = &mk
	} else {
		p.errorf(m.node, joinPath(strings.TrimSuffix(fwF.path, ".fwmark"), "match"), "missing: fwmark %d needs a match here or in marks", id)
	}
	if s.Match == nil {
		return false, true
	}
	s.Protocol = s.Match.Protocols[0]
	s.VIP = s.Match.Prefixes[0].Addr()
	return true, true
}

// checkSynProxyOn refuses syn_proxy: on where the director cannot proxy the
// handshake: UDP has none, and with dr or tun the real server's SYN-ACK and
// every later reply bypass the director, so nobody could translate the
// sequence numbers. (auto on such a service simply never engages.)
func (p *parser) checkSynProxyOn(f field, s *Service, protoOK, fwdOK bool) {
	if protoOK && s.Protocol != lvs.ProtoTCP {
		p.errorf(f.val, f.path, "on is only for tcp services (this one is %s)", s.Protocol.Name())
		return
	}
	if fwdOK && s.Forward.InputOnly() {
		p.errorf(f.val, f.path, "on needs forward: nat or fullnat (the service uses %s, whose replies bypass the director)", s.Forward.Name())
		return
	}
	for i := range s.RealServers {
		rs := &s.RealServers[i]
		if fw := s.ForwardFor(rs); fw.InputOnly() {
			p.errorf(f.val, f.path, "on needs forward: nat or fullnat (real server %s at line %d uses %s, whose replies bypass the director)", rs.Address, rs.Line, fw.Name())
			return
		}
	}
}

// serviceClientAddr parses proxy_protocol and toa, the two ways of telling
// a full-NAT real server the client's address, and refuses them where the
// director cannot send them: it must translate both directions of a TCP
// connection (it shifts sequence numbers, rewrites options), so the service
// must be TCP, not fwmark, and it and every real server must forward by
// fullnat (nat, dr and tun servers see the client's address anyway). The
// service's own forward counts even when every server overrides it: its
// sorry server takes it.
func (p *parser) serviceClientAddr(m *mapping, s *Service, ok serviceOK) {
	if f, has := m.get("proxy_protocol"); has {
		if text, good := p.str(f.val, f.path); good {
			v, err := lvs.ParseProxyProtocol(text)
			if err != nil {
				p.errorf(deref(f.val), f.path, "%q is not valid (valid: v1, v2, none)", text)
			} else {
				s.ProxyProtocol = v
				if v != lvs.ProxyNone {
					p.checkClientAddr(f, v.String(), s, ok)
				}
			}
		}
	}
	if f, has := m.get("toa"); has {
		if v, good := p.boolean(f.val, f.path); good {
			s.TOA = v
			if v {
				p.checkClientAddr(f, "true", s, ok)
			}
		}
	}
}

// checkClientAddr refuses the key f, set to what (proxy_protocol's
// version, toa's true), on a service that cannot have it; see
// serviceClientAddr.
func (p *parser) checkClientAddr(f field, what string, s *Service, ok serviceOK) {
	switch {
	case ok.isMark:
		p.errorf(f.val, f.path, "%s is not available for fwmark services (only for a tcp service with a vip and port)", what)
	case ok.proto && s.Protocol != lvs.ProtoTCP:
		p.errorf(f.val, f.path, "%s is only for tcp services (this one is %s)", what, s.Protocol.Name())
	case ok.fwd && s.Forward != lvs.FwdFullNAT:
		p.errorf(f.val, f.path, "%s needs forward: fullnat (the service uses %s; its real servers see the client's address)", what, s.Forward.Name())
	case ok.fwd:
		for i := range s.RealServers {
			rs := &s.RealServers[i]
			if fw := s.ForwardFor(rs); fw != lvs.FwdFullNAT {
				p.errorf(f.val, f.path, "%s needs forward: fullnat for every real server (real server %s at line %d uses %s)", what, rs.Address, rs.Line, fw.Name())
				return
			}
		}
	}
}

// forward parses a forwarding method by its configuration name (only
// those: the ipvsadm aliases lvs.ParseFwd knows are govsadm's words).
func (p *parser) forward(f field) (*lvs.Fwd, bool) {
	i, ok := p.enum(f.val, f.path, lvs.FwdNames())
	if !ok {
		return nil, false
	}
	fwd := lvs.Fwds[i]
	return &fwd, true
}

func (p *parser) schedulerFlags(f field, scheduler string, schedOK bool) []string {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	var out []string
	valid := lvs.SchedulerFlagNames()
	for i, it := range items {
		path := indexPath(f.path, i)
		name, ok := p.str(it, path)
		if !ok {
			continue
		}
		owner, known := lvs.SchedulerOfFlag(name)
		switch {
		case !known:
			if hint := closest(name, valid); hint != "" {
				p.errorf(it, path, "unknown scheduler flag %q (did you mean %q?)", name, hint)
			} else {
				p.errorf(it, path, "unknown scheduler flag %q (valid: %s)", name, strings.Join(valid, ", "))
			}
		case contains(out, name):
			p.errorf(it, path, "duplicate scheduler flag %q", name)
		case schedOK && owner != scheduler:
			p.errorf(it, path, "flag %q is only valid with scheduler: %s (this service uses %s)", name, owner, scheduler)
		default:
			out = append(out, name)
		}
	}
	return out
}

func (p *parser) persistence(f field, vip netip.Addr, vipOK bool) *Persistence {
	pers := &Persistence{Timeout: DefaultPersistenceTimeout, PrefixLen: 32}
	if vipOK && vip.Is6() {
		pers.PrefixLen = 128
	}
	m := p.mapping(f.val, f.path, "timeout", "netmask")
	if m == nil {
		return pers
	}
	if f, ok := m.get("timeout"); ok {
		if d, ok := p.duration(f.val, f.path); ok {
			pers.Timeout = d
		}
	}
	if f, ok := m.get("netmask"); ok && vipOK {
		if bits, ok := p.netmask(f, vip.Is4()); ok {
			pers.PrefixLen = bits
		}
	}
	return pers
}

// netmask parses a persistence netmask: for IPv4 a dotted mask
// (255.255.255.0) or a prefix length, for IPv6 a prefix length; a prefix
// length may be written 24 or "/24".
func (p *parser) netmask(f field, is4 bool) (int, bool) {
	n := deref(f.val)
	maxBits := 128
	family := "IPv6"
	if is4 {
		maxBits, family = 32, "IPv4"
	}
	bad := func() (int, bool) {
		if is4 {
			p.errorf(n, f.path, "want a dotted mask like 255.255.255.0 or a prefix length 0..32, got %s", describe(n))
		} else {
			p.errorf(n, f.path, "want a prefix length 0..128 like 64 or \"/64\", got %s", describe(n))
		}
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return bad()
	}
	text := strings.TrimPrefix(n.Value, "/")
	if bits, err := strconv.Atoi(text); err == nil {
		if bits < 0 || bits > maxBits {
			p.errorf(n, f.path, "prefix length %d is out of range 0..%d for an %s service", bits, maxBits, family)
			return 0, false
		}
		return bits, true
	}
	mask, err := netip.ParseAddr(n.Value)
	if err != nil || !mask.Is4() {
		return bad()
	}
	if !is4 {
		p.errorf(n, f.path, "IPv6 services take a prefix length like 64, not a dotted mask")
		return 0, false
	}
	b := mask.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for v&(1<<31) != 0 {
		ones++
		v <<= 1
	}
	if v != 0 {
		p.errorf(n, f.path, "%s is not a contiguous netmask", mask)
		return 0, false
	}
	return ones, true
}

func (p *parser) sorryServer(f field, s *Service, vipOK, portOK, fwdOK bool) *SorryServer {
	m := p.mapping(f.val, f.path, "address", "port")
	if m == nil {
		return nil
	}
	ss := &SorryServer{Port: s.Port}
	if af, ok := p.require(m, "address"); ok {
		if a, ok := p.unicastAddr(af.val, af.path); ok {
			if vipOK && a.Is4() != s.VIP.Is4() {
				p.errorf(af.val, af.path, "%s: address family differs from the vip %s", a, s.VIP)
			}
			ss.Address = a
		}
	}
	if pf, ok := m.get("port"); ok {
		if port, ok := p.port(pf.val, pf.path, portOK && s.Port == 0); ok {
			ss.Port = port
			if portOK && fwdOK && port != s.Port && s.Forward.InputOnly() {
				p.errorf(pf.val, pf.path, "port mapping is not allowed with forward: %s", s.Forward.Name())
			}
		}
	}
	return ss
}

// rsContext says which service fields parsed cleanly, so that a real server
// is not blamed for a broken service field.
type rsContext struct {
	vipOK, portOK, fwdOK bool
}

func (p *parser) realServer(n *yaml.Node, path string, s *Service, svcCheck *mapping, ctx rsContext) (RealServer, bool) {
	m := p.mapping(n, path, realServerKeys...)
	if m == nil {
		return RealServer{}, false
	}
	rs := RealServer{Line: m.line(), Port: s.Port, Weight: 1}
	if f, ok := p.require(m, "address"); ok {
		if a, ok := p.unicastAddr(f.val, f.path); ok {
			if ctx.vipOK && a.Is4() != s.VIP.Is4() {
				p.errorf(f.val, f.path, "%s: address family differs from the vip %s", a, s.VIP)
			}
			rs.Address = a
		}
	}
	fwdOK := ctx.fwdOK
	if f, ok := m.get("forward"); ok {
		rs.Forward, fwdOK = p.forward(f)
	}
	effective := s.ForwardFor(&rs)
	if f, ok := m.get("port"); ok {
		if port, ok := p.port(f.val, f.path, true); ok {
			rs.Port = port
			switch {
			case !ctx.portOK:
			case port == 0 && s.Port != 0:
				p.errorf(f.val, f.path, "port 0 is only allowed when the service port is 0")
			case fwdOK && port != s.Port && effective.InputOnly():
				p.errorf(f.val, f.path, "port mapping is not allowed with forward: %s", effective.Name())
			}
		}
	}
	if f, ok := m.get("weight"); ok {
		w, _ := p.integer(f.val, f.path, 0, MaxWeight)
		rs.Weight = int(w)
	}
	if f, ok := m.get("upper_threshold"); ok {
		v, _ := p.integer(f.val, f.path, 0, math.MaxUint32)
		rs.UpperThreshold = uint32(v)
	}
	if f, ok := m.get("lower_threshold"); ok {
		if v, ok := p.integer(f.val, f.path, 0, math.MaxUint32); ok {
			rs.LowerThreshold = uint32(v)
			if rs.UpperThreshold > 0 && rs.LowerThreshold > rs.UpperThreshold {
				p.errorf(f.val, f.path, "%d is above upper_threshold %d", rs.LowerThreshold, rs.UpperThreshold)
			}
		}
	}
	if f, ok := m.get("forward"); ok && fwdOK && s.CheckViaVIP && !effective.InputOnly() {
		p.errorf(f.val, f.path, "check_via_vip is set on the service, but is only meaningful with forward: dr or tun")
	}
	rs.HealthCheck = p.effectiveCheck(m, path, s, svcCheck, rs.Port)
	return rs, true
}
