package config

import (
	"fmt"
	"math"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/govs/govs/healthcheck"
)

// health_check is parsed from package healthcheck's registry: the check
// types are the registered kinds, each checker's settings block and its
// keys come from its Registration, and the checker builds the probe. A new
// checker needs nothing here.

// healthCheckKeys are the keys of a health_check: the common ones, then
// each checker's settings block.
func healthCheckKeys() []string {
	keys := []string{"type", "interval", "timeout", "rise", "fall", "port"}
	for _, r := range healthcheck.Registrations() {
		if r.Block != "" {
			keys = append(keys, r.Block)
		}
	}
	return keys
}

// checkTypeNames are the values of health_check.type.
func checkTypeNames() []string {
	return append([]string{CheckNone}, healthcheck.Kinds()...)
}

// serviceHealthCheck parses the service's check and returns its keys, over
// which the real servers lay their own (nil without a check).
func (p *parser) serviceHealthCheck(m *mapping, s *Service) *mapping {
	checkF, hasCheck := m.get("health_check")
	if !hasCheck {
		s.HealthCheck = defaultHealthCheck()
		return nil
	}
	checkMap := p.mapping(checkF.val, checkF.path, healthCheckKeys()...)
	if checkMap != nil {
		if _, ok := p.require(checkMap, "type"); ok {
			s.HealthCheck = p.healthCheck(checkMap.fields, checkMap.node, checkF.path, 0)
		}
	}
	return checkMap
}

// effectiveCheck lays the server's health_check keys over the service's.
// When the server changes the checker (another type, other than between
// http and https, which share one), the service's settings block is not
// inherited.
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
	ownMap := p.mapping(own.val, own.path, healthCheckKeys()...)
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
				for _, r := range healthcheck.Registrations() {
					if r.Block != "" {
						delete(fields, r.Block)
					}
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

// checkFamily names the checker of a check type: types that share one
// (http, https) share its settings block.
func checkFamily(t string) string {
	if r := healthcheck.Lookup(t); r != nil {
		return r.Kinds[0]
	}
	return t
}

// checkPortNeeded reports a network check that would inherit port 0 from a
// real server of an all-ports service.
func (p *parser) checkPortNeeded(t string, port uint16, at *yaml.Node, path string) {
	if r := healthcheck.Lookup(t); port == 0 && r != nil && r.NeedsPort {
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
		names := checkTypeNames()
		i, good := p.enum(f.val, f.path, names)
		if !good {
			return hc
		}
		hc.Type = names[i]
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

	// Exactly the block of the type's checker may be given; some checkers
	// require it.
	reg := healthcheck.Lookup(hc.Type)
	for _, r := range healthcheck.Registrations() {
		if r.Block == "" {
			continue
		}
		f, has := get(r.Block)
		switch {
		case has && r != reg:
			p.errorf(f.key, f.path, "only used with type: %s (this check is %s)", strings.Join(r.Kinds, " or "), hc.Type)
		case !has && r == reg && r.BlockRequired:
			p.errorf(at, joinPath(path, r.Block), "missing (required with type: %s)", hc.Type)
		}
	}
	if reg != nil {
		hc.Probe = p.probe(reg, hc.Type, fields)
	}
	return hc
}

// probe parses the checker's settings block, when given, and has the
// checker build the probe from it; the checker's complaints are reported
// at the settings they name.
func (p *parser) probe(reg *healthcheck.Registration, kind string, fields map[string]field) healthcheck.Probe {
	var (
		values healthcheck.Values
		m      *mapping
	)
	if f, has := fields[reg.Block]; has && reg.Block != "" {
		names := make([]string, len(reg.Settings))
		for i, s := range reg.Settings {
			names[i] = s.Name
		}
		if m = p.mapping(f.val, f.path, names...); m != nil {
			values = p.settings(m, reg.Settings)
		}
	}
	probe, errs := reg.NewProbe(kind, values)
	for _, e := range errs {
		if m == nil {
			continue // no block: the checker's defaults cannot be wrong
		}
		f, has := m.get(e.Setting)
		if !has {
			p.errorf(m.node, joinPath(m.path, e.Setting), "%s", e.Msg)
			continue
		}
		p.errorf(f.val, f.path, "%s", e.Msg)
	}
	return probe
}

// settings parses a settings block key by key after each key's kind of
// value. A key that is absent or whose value (or one of whose items) is
// refused is left out of the result.
func (p *parser) settings(m *mapping, settings []healthcheck.Setting) healthcheck.Values {
	values := healthcheck.Values{}
	for _, s := range settings {
		var (
			f   field
			has bool
		)
		if s.Required {
			f, has = p.require(m, s.Name)
		} else {
			f, has = m.get(s.Name)
		}
		if !has {
			continue
		}
		if v, ok := p.setting(f, s); ok {
			values[s.Name] = v
		}
	}
	return values
}

// setting parses one setting's value after its kind.
func (p *parser) setting(f field, s healthcheck.Setting) (any, bool) {
	switch s.Kind {
	case healthcheck.String:
		if s.NonEmpty {
			return p.nonEmptyStr(f.val, f.path)
		}
		return p.str(f.val, f.path)
	case healthcheck.Int:
		return p.integer(f.val, f.path, s.Min, s.Max)
	case healthcheck.Bool:
		return p.boolean(f.val, f.path)
	case healthcheck.Strings:
		return listOf(p, f, func(i int, it *yaml.Node, path string) (string, bool) {
			if s.NonEmpty && i == 0 {
				return p.nonEmptyStr(it, path)
			}
			return p.str(it, path)
		})
	case healthcheck.Ints:
		return listOf(p, f, func(_ int, it *yaml.Node, path string) (int64, bool) { return p.integer(it, path, s.Min, s.Max) })
	}
	panic(fmt.Sprintf("config: setting %s has an unknown kind of value %d", s.Name, s.Kind))
}

// listOf parses a list whose items item parses; one refused item refuses
// the list (after every item was looked at, so each problem is reported).
func listOf[T any](p *parser, f field, item func(int, *yaml.Node, string) (T, bool)) ([]T, bool) {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil, false
	}
	out := make([]T, 0, len(items))
	for i, it := range items {
		v, good := item(i, it, indexPath(f.path, i))
		ok = ok && good
		out = append(out, v)
	}
	return out, ok
}

// hostCheckErrors are what the checks' probes need of the machine (an exec
// check's program), per real server, each problem once: a program shared
// by many servers is reported at the first.
func hostCheckErrors(cfg *Config, add func(line int, key, format string, args ...any)) {
	seen := map[string]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		for j := range s.RealServers {
			rs := &s.RealServers[j]
			hc, ok := rs.HealthCheck.Probe.(healthcheck.HostChecker)
			reg := healthcheck.Lookup(rs.HealthCheck.Type)
			if !ok || reg == nil {
				continue
			}
			for _, e := range hc.CheckHost() {
				key := fmt.Sprintf("services[%d].real_servers[%d].health_check.%s.%s", i, j, reg.Block, e.Setting)
				if seen[e.Error()] {
					continue
				}
				seen[e.Error()] = true
				add(rs.Line, key, "%s", e.Msg)
			}
		}
	}
}
