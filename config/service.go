package config

import (
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	serviceKeys = []string{"name", "fwmark", "match", "vip", "port", "protocol", "scheduler", "scheduler_flags", "forward",
		"persistence", "local_addresses", "health_check", "on_failure", "expire_quiescent_template", "sorry_server", "check_via_vip", "syn_proxy", "sloppy", "real_servers"}
	realServerKeys  = []string{"address", "port", "weight", "forward", "upper_threshold", "lower_threshold", "health_check"}
	healthCheckKeys = []string{"type", "interval", "timeout", "rise", "fall", "port", "http", "udp", "dns", "exec"}
	protocolNames   = []string{"tcp", "udp"}
	protocols       = []Protocol{TCP, UDP}
)

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

// service parses one service and runs the checks that involve several of its
// keys. Problems are recorded; the result is only used for further checks.
func (p *parser) service(n *yaml.Node, path string) *serviceState {
	m := p.mapping(n, path, serviceKeys...)
	if m == nil {
		return nil
	}
	st := &serviceState{path: path}
	s := &st.svc
	s.Line = m.line()
	s.Protocol = TCP
	s.Scheduler = DefaultScheduler
	s.Forward = ForwardNAT

	if f, ok := p.require(m, "name"); ok {
		if name, ok := p.nonEmptyStr(f.val, f.path); ok {
			if serviceNamePattern.MatchString(name) {
				s.Name, st.nameOK = name, true
			} else {
				p.errorf(f.val, f.path, "%q: names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
			}
		}
	}
	var vipF, portF field
	var vipOK, portOK bool
	protoOK := true
	fwF, isMark := m.get("fwmark")
	if isMark {
		vipOK, portOK = p.markService(m, fwF, s, &st.keyOK)
	} else {
		if f, ok := m.get("match"); ok {
			p.errorf(f.key, f.path, "only used with fwmark (a service with vip and port takes just those)")
		}
		vipF, vipOK = p.require(m, "vip")
		if vipOK {
			s.VIP, vipOK = p.unicastAddr(vipF.val, vipF.path)
		}
		portF, portOK = p.require(m, "port")
		if portOK {
			s.Port, portOK = p.port(portF.val, portF.path, true)
		}
		if f, ok := m.get("protocol"); ok {
			var i int
			if i, protoOK = p.enum(f.val, f.path, protocolNames); protoOK {
				s.Protocol = protocols[i]
			}
		}
		st.keyOK = vipOK && portOK && protoOK
	}

	schedOK := true
	if f, ok := m.get("scheduler"); ok {
		var i int
		if i, schedOK = p.enum(f.val, f.path, Schedulers); schedOK {
			s.Scheduler = Schedulers[i]
		}
	}
	if f, ok := m.get("scheduler_flags"); ok {
		s.SchedulerFlags = p.schedulerFlags(f, s.Scheduler, schedOK)
	}
	fwdOK := true
	if f, ok := m.get("forward"); ok {
		s.Forward, fwdOK = p.forward(f)
	}
	if f, ok := m.get("persistence"); ok {
		s.Persistence = p.persistence(f, s.VIP, vipOK)
	}
	if !isMark && portOK && s.Port == 0 && s.Persistence == nil {
		p.errorf(portF.val, portF.path, "port 0 (all ports) is only allowed with persistence")
	}
	localF, hasLocal := m.get("local_addresses")
	if hasLocal {
		s.LocalAddresses = p.addrList(localF, true, true)
		if vipOK {
			for i, a := range s.LocalAddresses {
				if a.Is4() != s.VIP.Is4() {
					p.errorf(localF.val, indexPath(localF.path, i), "%s: local addresses must have the family of the vip %s", a, s.VIP)
				}
			}
		}
	}
	checkF, hasCheck := m.get("health_check")
	var checkMap *mapping
	if hasCheck {
		checkMap = p.mapping(checkF.val, checkF.path, healthCheckKeys...)
		if checkMap != nil {
			if _, ok := p.require(checkMap, "type"); ok {
				s.HealthCheck = p.healthCheck(checkMap.fields, checkMap.node, checkF.path, 0)
			}
		}
	} else {
		s.HealthCheck = defaultHealthCheck()
	}
	if f, ok := m.get("on_failure"); ok {
		if i, ok := p.enum(f.val, f.path, onFailureNames); ok {
			s.OnFailure = OnFailure(i)
		}
	}
	s.ExpireQuiescentTemplate = p.expireQuiescent
	if f, ok := m.get("expire_quiescent_template"); ok {
		if v, ok := p.boolean(f.val, f.path); ok {
			s.ExpireQuiescentTemplate = v
		}
	}
	if f, ok := m.get("sorry_server"); ok {
		s.SorryServer = p.sorryServer(f, s, vipOK, portOK, fwdOK)
	}
	viaF, hasVia := m.get("check_via_vip")
	if hasVia {
		s.CheckViaVIP, _ = p.boolean(viaF.val, viaF.path)
		if s.CheckViaVIP && isMark {
			p.errorf(viaF.val, viaF.path, "not available for fwmark services (a mark has no single VIP to probe through)")
		} else if s.CheckViaVIP && fwdOK && (s.Forward == ForwardNAT || s.Forward == ForwardFullNAT) {
			p.errorf(viaF.val, viaF.path, "only meaningful with forward: dr or tun (the service uses %s)", s.Forward)
		}
	}

	s.Sloppy = p.sloppy
	if f, ok := m.get("sloppy"); ok {
		if v, ok := p.boolean(f.val, f.path); ok {
			s.Sloppy = v
			if v && fwdOK && (s.Forward == ForwardNAT || s.Forward == ForwardFullNAT) {
				p.errorf(f.val, f.path, "only dr and tun real servers can take a flow mid-way (the service uses %s; moved NAT flows need connection sync)", s.Forward)
			}
		}
	}

	proxyF, hasProxy := m.get("syn_proxy")
	if hasProxy {
		if i, ok := p.enum(proxyF.val, proxyF.path, synProxyNames); ok {
			s.SynProxy = SynProxyMode(i)
		}
	}

	var fullNATLine int // line of the first use of full-NAT, 0 when none
	if fwdOK && s.Forward == ForwardFullNAT {
		fullNATLine = s.Line
		if f, ok := m.get("forward"); ok {
			fullNATLine = f.val.Line
		}
	}
	if f, ok := m.get("real_servers"); ok {
		if items, ok := p.list(f.val, f.path); ok {
			seen := map[netip.AddrPort]int{}
			for i, it := range items {
				rs, ok := p.realServer(it, indexPath(f.path, i), s, checkMap, rsContext{vipOK: vipOK, portOK: portOK, fwdOK: fwdOK})
				if !ok {
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
				if rs.Forward == ForwardFullNAT && fullNATLine == 0 {
					fullNATLine = rs.Line
				}
				s.RealServers = append(s.RealServers, rs)
			}
		}
	}
	if hasProxy && s.SynProxy == SynProxyOn {
		if isMark {
			p.errorf(proxyF.val, proxyF.path, "on is not available for fwmark services (the XDP SYN proxy is keyed by a service's address and port; auto never engages for them)")
		} else {
			p.checkSynProxyOn(proxyF, s, protoOK, fwdOK)
		}
	}
	if isMark {
		s.VIP = netip.Addr{} // it stood for the match's family in the checks above
	}
	switch {
	case fullNATLine != 0 && !hasLocal:
		p.errorAtLine(s.Line, joinPath(path, "local_addresses"), "required because forward: fullnat is used (line %d)", fullNATLine)
	case fullNATLine == 0 && hasLocal && fwdOK:
		p.errorf(localF.key, localF.path, "only used with forward: fullnat, which neither the service nor any real server uses")
	}
	return st
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
	if protoOK && s.Protocol != TCP {
		p.errorf(f.val, f.path, "on is only for tcp services (this one is %s)", s.Protocol)
		return
	}
	if fwdOK && (s.Forward == ForwardDR || s.Forward == ForwardTun) {
		p.errorf(f.val, f.path, "on needs forward: nat or fullnat (the service uses %s, whose replies bypass the director)", s.Forward)
		return
	}
	for i := range s.RealServers {
		rs := &s.RealServers[i]
		if fw := s.ForwardFor(rs); fw == ForwardDR || fw == ForwardTun {
			p.errorf(f.val, f.path, "on needs forward: nat or fullnat (real server %s at line %d uses %s, whose replies bypass the director)", rs.Address, rs.Line, fw)
			return
		}
	}
}

func (p *parser) forward(f field) (Forward, bool) {
	i, ok := p.enum(f.val, f.path, forwardNames[1:])
	if !ok {
		return ForwardInherit, false
	}
	return Forward(i + 1), true
}

func (p *parser) schedulerFlags(f field, scheduler string, schedOK bool) []string {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	var out []string
	valid := []string{"sh-fallback", "sh-port", "mh-fallback", "mh-port"}
	for i, it := range items {
		path := indexPath(f.path, i)
		name, ok := p.str(it, path)
		if !ok {
			continue
		}
		owner, known := schedulerFlags[name]
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
			if portOK && fwdOK && port != s.Port && (s.Forward == ForwardDR || s.Forward == ForwardTun) {
				p.errorf(pf.val, pf.path, "port mapping is not allowed with forward: %s", s.Forward)
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
		var own bool
		if rs.Forward, own = p.forward(f); own {
			fwdOK = true
		} else {
			fwdOK = false
		}
	}
	effective := s.ForwardFor(&rs)
	if f, ok := m.get("port"); ok {
		if port, ok := p.port(f.val, f.path, true); ok {
			rs.Port = port
			switch {
			case !ctx.portOK:
			case port == 0 && s.Port != 0:
				p.errorf(f.val, f.path, "port 0 is only allowed when the service port is 0")
			case fwdOK && port != s.Port && (effective == ForwardDR || effective == ForwardTun):
				p.errorf(f.val, f.path, "port mapping is not allowed with forward: %s", effective)
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
	if f, ok := m.get("forward"); ok && fwdOK && s.CheckViaVIP && (effective == ForwardNAT || effective == ForwardFullNAT) {
		p.errorf(f.val, f.path, "check_via_vip is set on the service, but is only meaningful with forward: dr or tun")
	}
	rs.HealthCheck = p.effectiveCheck(m, path, s, svcCheck, rs.Port)
	return rs, true
}

// effectiveCheck lays the server's health_check keys over the service's.
// When the server changes the check type, the service's type-specific block
// (http, udp, dns, exec) is not inherited.
func (p *parser) effectiveCheck(rsMap *mapping, rsPath string, s *Service, svcCheck *mapping, rsPort uint16) HealthCheck {
	own, hasOwn := rsMap.get("health_check")
	if !hasOwn {
		hc := s.HealthCheck
		if hc.Port == 0 {
			hc.Port = rsPort
			p.checkPortNeeded(hc.Type, rsPort, rsMap.node, rsPath)
		}
		return hc
	}
	ownMap := p.mapping(own.val, own.path, healthCheckKeys...)
	if ownMap == nil {
		return HealthCheck{}
	}
	fields := map[string]field{}
	if svcCheck != nil {
		for k, v := range svcCheck.fields {
			fields[k] = v
		}
		if t, ok := ownMap.get("type"); ok {
			if st, ok := svcCheck.get("type"); ok && checkFamily(deref(t.val).Value) != checkFamily(deref(st.val).Value) {
				for _, k := range []string{"http", "udp", "dns", "exec"} {
					delete(fields, k)
				}
			}
		}
	}
	for k, v := range ownMap.fields {
		fields[k] = v
	}
	if _, ok := fields["type"]; !ok {
		p.errorf(ownMap.node, joinPath(own.path, "type"), "missing (required: the service has no health_check to inherit it from)")
		return HealthCheck{}
	}
	hc := p.healthCheck(fields, ownMap.node, own.path, rsPort)
	if _, ok := fields["port"]; !ok {
		p.checkPortNeeded(hc.Type, rsPort, ownMap.node, joinPath(own.path, "port"))
	}
	return hc
}

func checkFamily(t string) string {
	if t == "https" {
		return "http"
	}
	return t
}

// checkPortNeeded reports a network check that would inherit port 0 from a
// real server of an all-ports service.
func (p *parser) checkPortNeeded(t CheckType, port uint16, at *yaml.Node, path string) {
	if port == 0 && t != CheckNone && t != CheckExec {
		p.errorf(at, path, "the %s health check needs a port: the real server's port is 0, set health_check.port", t)
	}
}

func defaultHealthCheck() HealthCheck {
	return HealthCheck{
		Type:     CheckNone,
		Interval: DefaultCheckInterval,
		Timeout:  DefaultCheckTimeout,
		Rise:     DefaultCheckRise,
		Fall:     DefaultCheckFall,
	}
}

// healthCheck builds a check from its (possibly overlaid) keys. at and path
// locate the block for messages about missing keys; defaultPort fills Port.
func (p *parser) healthCheck(fields map[string]field, at *yaml.Node, path string, defaultPort uint16) HealthCheck {
	hc := defaultHealthCheck()
	hc.Port = defaultPort
	durationsOK := true
	get := func(name string) (field, bool) { f, has := fields[name]; return f, has }
	if f, has := get("type"); has {
		i, good := p.enum(f.val, f.path, checkTypeNames)
		if !good {
			return hc
		}
		hc.Type = CheckType(i)
	}
	if f, has := get("interval"); has {
		if d, good := p.duration(f.val, f.path); good {
			hc.Interval = d
		} else {
			durationsOK = false
		}
	}
	timeoutF, hasTimeout := get("timeout")
	if hasTimeout {
		if d, good := p.duration(timeoutF.val, timeoutF.path); good {
			hc.Timeout = d
		} else {
			durationsOK = false
		}
	}
	if durationsOK && hc.Timeout > hc.Interval {
		if hasTimeout {
			p.errorf(timeoutF.val, timeoutF.path, "timeout %s is longer than the interval %s", hc.Timeout, hc.Interval)
		} else {
			f, _ := get("interval")
			p.errorf(f.val, f.path, "interval %s is shorter than the timeout %s", hc.Interval, hc.Timeout)
		}
	}
	for _, c := range []struct {
		name string
		dst  *int
	}{{"rise", &hc.Rise}, {"fall", &hc.Fall}} {
		if f, has := get(c.name); has {
			if v, good := p.integer(f.val, f.path, 1, math.MaxInt32); good {
				*c.dst = int(v)
			}
		}
	}
	if f, has := get("port"); has {
		if v, good := p.port(f.val, f.path, false); good {
			hc.Port = v
		}
	}

	// Exactly the block for the type may be given; some types require it.
	blocks := []struct {
		key      string
		types    []CheckType
		required bool
	}{
		{"http", []CheckType{CheckHTTP, CheckHTTPS}, false},
		{"udp", []CheckType{CheckUDP}, true},
		{"dns", []CheckType{CheckDNS}, true},
		{"exec", []CheckType{CheckExec}, true},
	}
	for _, b := range blocks {
		f, has := get(b.key)
		wanted := false
		for _, t := range b.types {
			wanted = wanted || t == hc.Type
		}
		switch {
		case has && !wanted:
			p.errorf(f.key, f.path, "only used with type: %s (this check is %s)", typeList(b.types), hc.Type)
		case !has && wanted && b.required:
			p.errorf(at, joinPath(path, b.key), "missing (required with type: %s)", hc.Type)
		}
	}
	switch hc.Type {
	case CheckHTTP, CheckHTTPS:
		hc.HTTP = &HTTPCheck{Method: "GET", Path: "/", ExpectStatus: []int{200}}
		if f, has := get("http"); has {
			p.httpCheck(f, hc.HTTP)
		}
	case CheckUDP:
		if f, has := get("udp"); has {
			hc.UDP = p.udpCheck(f)
		}
	case CheckDNS:
		if f, has := get("dns"); has {
			hc.DNS = p.dnsCheck(f)
		}
	case CheckExec:
		if f, has := get("exec"); has {
			hc.Exec = p.execCheck(f)
		}
	}
	return hc
}

func typeList(types []CheckType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.String()
	}
	return strings.Join(names, " or ")
}

var (
	httpMethodPattern = regexp.MustCompile(`^[A-Z]+$`)
	httpPathPattern   = regexp.MustCompile(`^/[^\s]*$`)
)

func (p *parser) httpCheck(f field, h *HTTPCheck) {
	m := p.mapping(f.val, f.path, "method", "path", "host", "expect_status", "expect_body")
	if m == nil {
		return
	}
	if f, ok := m.get("method"); ok {
		if s, ok := p.nonEmptyStr(f.val, f.path); ok {
			if httpMethodPattern.MatchString(s) {
				h.Method = s
			} else {
				p.errorf(f.val, f.path, "%q is not an HTTP method (methods are upper case, e.g. GET)", s)
			}
		}
	}
	if f, ok := m.get("path"); ok {
		if s, ok := p.nonEmptyStr(f.val, f.path); ok {
			if httpPathPattern.MatchString(s) {
				h.Path = s
			} else {
				p.errorf(f.val, f.path, "%q: the path must start with / and contain no spaces", s)
			}
		}
	}
	if f, ok := m.get("host"); ok {
		if s, ok := p.nonEmptyStr(f.val, f.path); ok {
			if strings.ContainsAny(s, " \t\r\n/") {
				p.errorf(f.val, f.path, "%q is not a valid host", s)
			}
			h.Host = s
		}
	}
	if f, ok := m.get("expect_status"); ok {
		if items, ok := p.list(f.val, f.path); ok {
			if len(items) == 0 {
				p.errorf(f.val, f.path, "at least one status is required")
			}
			h.ExpectStatus = nil
			for i, it := range items {
				if v, ok := p.integer(it, indexPath(f.path, i), 100, 599); ok {
					h.ExpectStatus = append(h.ExpectStatus, int(v))
				}
			}
		}
	}
	if f, ok := m.get("expect_body"); ok {
		h.ExpectBody, _ = p.str(f.val, f.path)
	}
}

func (p *parser) udpCheck(f field) *UDPCheck {
	u := &UDPCheck{}
	m := p.mapping(f.val, f.path, "send", "expect")
	if m == nil {
		return u
	}
	if f, ok := p.require(m, "send"); ok {
		u.Send, _ = p.nonEmptyStr(f.val, f.path)
	}
	if f, ok := m.get("expect"); ok {
		u.Expect, _ = p.str(f.val, f.path)
	}
	return u
}

func (p *parser) dnsCheck(f field) *DNSCheck {
	d := &DNSCheck{Type: "A", QType: dnsTypes["A"]}
	m := p.mapping(f.val, f.path, "query", "type")
	if m == nil {
		return d
	}
	if f, ok := p.require(m, "query"); ok {
		if q, ok := p.nonEmptyStr(f.val, f.path); ok {
			if validDomainName(q) {
				d.Query = q
			} else {
				p.errorf(f.val, f.path, "%q is not a valid domain name", q)
			}
		}
	}
	if f, ok := m.get("type"); ok {
		if t, ok := p.str(f.val, f.path); ok {
			up := strings.ToUpper(t)
			if q, known := dnsTypes[up]; known {
				d.Type, d.QType = up, q
			} else {
				p.errorf(f.val, f.path, "%q is not a supported query type (valid: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, ANY)", t)
			}
		}
	}
	return d
}

// validDomainName checks the wire limits: 253 characters, labels of 1..63.
func validDomainName(s string) bool {
	if s == "." {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || strings.ContainsAny(label, " \t\r\n") {
			return false
		}
	}
	return true
}

func (p *parser) execCheck(f field) *ExecCheck {
	e := &ExecCheck{}
	m := p.mapping(f.val, f.path, "command")
	if m == nil {
		return e
	}
	cf, ok := p.require(m, "command")
	if !ok {
		return e
	}
	items, ok := p.list(cf.val, cf.path)
	if !ok {
		return e
	}
	if len(items) == 0 {
		p.errorf(cf.val, cf.path, "must name a program")
		return e
	}
	for i, it := range items {
		path := indexPath(cf.path, i)
		var s string
		if i == 0 {
			s, ok = p.nonEmptyStr(it, path)
		} else {
			s, ok = p.str(it, path)
		}
		if ok {
			e.Command = append(e.Command, s)
		}
	}
	return e
}
