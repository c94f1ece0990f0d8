package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// parser walks the yaml.Node tree, converting values and collecting every
// problem instead of stopping at the first.
type parser struct {
	file string
	errs ErrorList
	// expireQuiescent is director.expire_quiescent_template, the services'
	// default (the director is parsed first).
	expireQuiescent bool
	// sloppy is director.sloppy, the services' default.
	sloppy bool
	// markDefs are the marks section's entries by mark (parsed before the
	// services, which may take their match from it).
	markDefs map[uint32]*Mark
}

// errorf records a problem at node n (its line and column) under key path.
func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: p.file, Key: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs.Errors = append(p.errs.Errors, e)
}

// errorAtLine records a problem at a line known only as a number.
func (p *parser) errorAtLine(line int, path, format string, args ...any) {
	p.errs.Errors = append(p.errs.Errors, &Error{File: p.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// deref follows aliases (*name) to the anchored node. YAML forbids anchoring
// an alias, so one step is enough, but stay defensive.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "no value"
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "an unsupported node"
}

// field is one key of a mapping after merge keys are applied.
type field struct {
	key  *yaml.Node // the key, for messages about the key itself
	val  *yaml.Node // the value, aliases followed
	path string     // full key path, e.g. services[0].port
}

// mapping is a YAML mapping checked against its known keys.
type mapping struct {
	node   *yaml.Node
	path   string
	fields map[string]field
}

// mapping checks that n is a mapping whose keys are all in known and none is
// repeated, and indexes it. YAML merge keys (<<: *anchor) are honoured: keys
// written in the mapping win over merged ones, earlier merge sources over
// later ones. It returns nil (after recording the problem) when n is not a
// mapping.
func (p *parser) mapping(n *yaml.Node, path string, known ...string) *mapping {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping, got %s", describe(n))
		return nil
	}
	m := &mapping{node: n, path: path, fields: map[string]field{}}
	p.collect(m, n, known, map[*yaml.Node]bool{n: true}, 0)
	return m
}

// maxMergeDepth bounds chains of merge keys.
const maxMergeDepth = 16

// collect adds the keys of n to m. seen holds the mappings already merged:
// merging one again adds nothing (earlier sources win), and skipping it keeps
// self-merging anchors and "billion laughs" merge chains from blowing up.
func (p *parser) collect(m *mapping, n *yaml.Node, known []string, seen map[*yaml.Node]bool, depth int) {
	explicit := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.errorf(k, m.path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		name := k.Value
		path := joinPath(m.path, name)
		if first, dup := explicit[name]; dup {
			p.errorf(k, path, "duplicate key (first at line %d)", first.Line)
			continue
		}
		explicit[name] = k
		if !contains(known, name) {
			p.unknownKey(k, path, name, known)
			continue
		}
		if _, set := m.fields[name]; !set {
			m.fields[name] = field{key: k, val: v, path: path}
		}
	}
	for _, src := range merges {
		if depth >= maxMergeDepth {
			p.errorf(src, m.path, "merge keys (<<) nested too deeply")
			return
		}
		switch src.Kind {
		case yaml.MappingNode:
			if !seen[src] {
				seen[src] = true
				p.collect(m, src, known, seen, depth+1)
			}
		case yaml.SequenceNode:
			for _, s := range src.Content {
				s = deref(s)
				if s.Kind != yaml.MappingNode {
					p.errorf(s, m.path, "merge key (<<) wants mappings, got %s", describe(s))
					continue
				}
				if !seen[s] {
					seen[s] = true
					p.collect(m, s, known, seen, depth+1)
				}
			}
		default:
			p.errorf(src, m.path, "merge key (<<) wants a mapping or a list of mappings, got %s", describe(src))
		}
	}
}

func (p *parser) unknownKey(k *yaml.Node, path, name string, known []string) {
	if hint := closest(name, known); hint != "" {
		p.errorf(k, path, "unknown key (did you mean %q?)", hint)
		return
	}
	p.errorf(k, path, "unknown key (valid keys: %s)", strings.Join(known, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *mapping) get(name string) (field, bool) {
	f, ok := m.fields[name]
	return f, ok
}

// line is where the mapping starts, for "missing key" messages.
func (m *mapping) line() int { return m.node.Line }

// require returns the named field, recording a problem when it is absent.
func (p *parser) require(m *mapping, name string) (field, bool) {
	f, ok := m.fields[name]
	if !ok {
		p.errorf(m.node, joinPath(m.path, name), "missing (required)")
	}
	return f, ok
}

// scalar returns the text of a non-null scalar.
func (p *parser) scalar(n *yaml.Node, path, want string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// str accepts any non-null scalar as text, so that `expect_body: 200` works.
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	return p.scalar(n, path, "a string")
}

func (p *parser) nonEmptyStr(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path)
	if ok && s == "" {
		p.errorf(deref(n), path, "must not be empty")
		return "", false
	}
	return s, ok
}

func (p *parser) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	n = deref(n)
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			p.errorf(n, path, "%s is out of range %d..%d", n.Value, lo, hi)
			return 0, false
		}
		p.errorf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	if v < lo || v > hi {
		p.errorf(n, path, "%d is out of range %d..%d", v, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *parser) port(n *yaml.Node, path string, allowZero bool) (uint16, bool) {
	lo := int64(1)
	if allowZero {
		lo = 0
	}
	v, ok := p.integer(n, path, lo, math.MaxUint16)
	return uint16(v), ok
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	n = deref(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.errorf(n, path, "want true or false, got %s", describe(n))
		return false, false
	}
	return v, true
}

// duration parses a Go duration ("900s", "1m30s") that must be positive.
// Bare numbers are refused: their unit would be a guess.
func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, path, "want a duration like 30s or 5m, got %s", describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errorf(n, path, "want a duration like 30s or 5m, got %q", n.Value)
		return 0, false
	}
	if d <= 0 {
		p.errorf(n, path, "must be greater than 0")
		return 0, false
	}
	return d, true
}

// addr parses an IPv4 or IPv6 address. Zones and IPv4-mapped IPv6 forms are
// refused so that every address has exactly one spelling and family.
func (p *parser) addr(n *yaml.Node, path string) (netip.Addr, bool) {
	s, ok := p.scalar(n, path, "an IP address")
	if !ok {
		return netip.Addr{}, false
	}
	n = deref(n)
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		p.errorf(n, path, "%q is not an IP address", s)
	case a.Zone() != "":
		p.errorf(n, path, "%q: zones are not supported", s)
	case a.Is4In6():
		p.errorf(n, path, "%q: write IPv4 addresses as %s", s, a.Unmap())
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// unicastAddr is addr for addresses that packets are sent to or from.
func (p *parser) unicastAddr(n *yaml.Node, path string) (netip.Addr, bool) {
	a, ok := p.addr(n, path)
	if !ok {
		return a, false
	}
	if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		p.errorf(deref(n), path, "%s is not a unicast address", a)
		return netip.Addr{}, false
	}
	return a, true
}

// enum returns the index of the value in names.
func (p *parser) enum(n *yaml.Node, path string, names []string) (int, bool) {
	s, ok := p.scalar(n, path, "one of "+strings.Join(names, ", "))
	if !ok {
		return 0, false
	}
	for i, name := range names {
		if s == name {
			return i, true
		}
	}
	if hint := closest(s, names); hint != "" {
		p.errorf(deref(n), path, "%q is not valid (did you mean %q?)", s, hint)
	} else {
		p.errorf(deref(n), path, "%q is not valid (valid: %s)", s, strings.Join(names, ", "))
	}
	return 0, false
}

// list returns the elements of a sequence, aliases followed.
func (p *parser) list(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "want a list, got %s", describe(n))
		return nil, false
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out, true
}
