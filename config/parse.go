package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the configuration file at path. An invalid
// configuration yields a *ErrorList naming path in every entry; a file that
// cannot be read yields the underlying *fs.PathError (wrapped).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse validates a configuration. filename is only used in messages. On any
// problem it returns a nil *Config and a *ErrorList with every problem found.
func Parse(data []byte, filename string) (*Config, error) {
	p := &parser{file: filename, expireQuiescent: true}
	cfg := p.document(data)
	if len(p.errs.Errors) > 0 {
		p.errs.finish()
		return nil, &p.errs
	}
	return cfg, nil
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected
// key") into an Error with the line as a field.
func (p *parser) syntaxError(err error) {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errorAtLine(line, "", "invalid YAML: %s", m[2])
		return
	}
	p.errorAtLine(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

func (p *parser) document(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAtLine(0, "", "the file is empty")
		} else {
			p.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.errorAtLine(extra.Line, "", "only one YAML document is allowed")
		return nil
	case !errors.Is(err, io.EOF):
		p.syntaxError(err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || isNull(deref(doc.Content[0])) {
		p.errorAtLine(doc.Line, "", "the file is empty")
		return nil
	}
	root := p.mapping(doc.Content[0], "", "director", "marks", "services")
	if root == nil {
		return nil
	}
	cfg := &Config{}
	if f, ok := p.require(root, "director"); ok {
		cfg.Director = p.director(f.val, f.path)
	}
	p.markDefs = map[uint32]*Mark{}
	if f, ok := root.get("marks"); ok {
		cfg.Marks = p.marks(f)
	}
	var paths []string
	if f, ok := root.get("services"); ok {
		cfg.Services, paths = p.services(f.val, f.path)
	}
	p.resolveMarks(cfg, paths)
	return cfg
}

func (p *parser) director(n *yaml.Node, path string) Director {
	d := Director{
		XDPMode:                 XDPAuto,
		ControlSocket:           DefaultControlSocket,
		MetricsListen:           DefaultMetricsListen,
		ConnTableSize:           DefaultConnTableSize,
		WorkerNice:              DefaultWorkerNice,
		BPFPinPath:              DefaultBPFPinPath,
		FastPath:                true,
		ExpireQuiescentTemplate: true,
		SteerLimit:              SteerLimit{Auto: true},
		SynGuard: SynGuard{
			HalfOpen: DefaultSynProxyHalfOpen,
			SynRate:  DefaultSynProxySynRate,
			Limit:    DefaultSynLimit,
			Burst:    DefaultSynLimitBurst,
			MSS:      DefaultSynProxyMSS,
		},
		Timeouts: Timeouts{
			TCP:    DefaultTimeoutTCP,
			TCPFin: DefaultTimeoutTCPFin,
			UDP:    DefaultTimeoutUDP,
		},
	}
	m := p.mapping(n, path, "interfaces", "xdp_mode", "control_socket", "metrics_listen",
		"conn_table_size", "timeouts", "manage_vips", "busy_poll", "worker_nice", "fast_path", "sync", "bgp",
		"syn_proxy_half_open", "syn_proxy_syn_rate", "syn_limit", "syn_limit_burst", "syn_proxy_mss",
		"steer_limit", "control_group", "expire_quiescent_template", "accept_foreign_mac", "bpf_pin_path", "sloppy")
	if m == nil {
		return d
	}
	if f, ok := p.require(m, "interfaces"); ok {
		d.Interfaces = p.interfaces(f)
	}
	if f, ok := m.get("accept_foreign_mac"); ok {
		d.AcceptForeignMAC = p.acceptForeignMAC(f, d.Interfaces)
	}
	if f, ok := m.get("xdp_mode"); ok {
		if i, ok := p.enum(f.val, f.path, xdpModeNames); ok {
			d.XDPMode = XDPMode(i)
		}
	}
	if f, ok := m.get("control_socket"); ok {
		if s, ok := p.nonEmptyStr(f.val, f.path); ok {
			// sun_path holds 108 bytes including the terminating NUL.
			if len(s) > 107 {
				p.errorf(f.val, f.path, "socket path is longer than 107 bytes")
			}
			d.ControlSocket = s
		}
	}
	if f, ok := m.get("metrics_listen"); ok {
		if s, ok := p.str(f.val, f.path); ok {
			if s != "" {
				p.checkHostPort(f, s)
			}
			d.MetricsListen = s
		}
	}
	if f, ok := m.get("conn_table_size"); ok {
		if v, ok := p.integer(f.val, f.path, MinConnTableSize, math.MaxInt32); ok {
			d.ConnTableSize = int(v)
		}
	}
	if f, ok := m.get("timeouts"); ok {
		p.timeouts(f, &d.Timeouts)
	}
	if f, ok := m.get("manage_vips"); ok {
		d.ManageVIPs, _ = p.boolean(f.val, f.path)
	}
	if f, ok := m.get("busy_poll"); ok {
		d.BusyPoll, _ = p.boolean(f.val, f.path)
	}
	if f, ok := m.get("worker_nice"); ok {
		if v, ok := p.integer(f.val, f.path, -20, 19); ok {
			d.WorkerNice = int(v)
		}
	}
	if f, ok := m.get("fast_path"); ok {
		d.FastPath, _ = p.boolean(f.val, f.path)
	}
	if f, ok := m.get("bpf_pin_path"); ok {
		if s, ok := p.str(f.val, f.path); ok {
			if s != "" && !filepath.IsAbs(s) {
				p.errorf(f.val, f.path, "want an absolute path in a bpf filesystem, or \"\" to pin nothing")
			}
			d.BPFPinPath = s
		}
	}
	if f, ok := m.get("control_group"); ok {
		if s, ok := p.nonEmptyStr(f.val, f.path); ok {
			d.ControlGroup = s
		}
	}
	if f, ok := m.get("expire_quiescent_template"); ok {
		d.ExpireQuiescentTemplate, _ = p.boolean(f.val, f.path)
		p.expireQuiescent = d.ExpireQuiescentTemplate
	}
	if f, ok := m.get("sloppy"); ok {
		d.Sloppy, _ = p.boolean(f.val, f.path)
		p.sloppy = d.Sloppy
	}
	p.synGuard(m, &d.SynGuard)
	if f, ok := m.get("steer_limit"); ok {
		d.SteerLimit = p.steerLimit(f.val, f.path)
	}
	if f, ok := m.get("sync"); ok {
		d.Sync = p.sync(f)
	}
	if f, ok := m.get("bgp"); ok {
		d.BGP = p.bgp(f)
	}
	return d
}

// synGuard reads the SYN-flood defence's director keys.
func (p *parser) synGuard(m *mapping, g *SynGuard) {
	if f, ok := m.get("syn_proxy_half_open"); ok {
		v, _ := p.integer(f.val, f.path, 0, math.MaxInt32)
		g.HalfOpen = int(v)
	}
	for _, k := range []struct {
		name string
		lo   int64
		dst  *uint64
	}{{"syn_proxy_syn_rate", 0, &g.SynRate}, {"syn_limit", 0, &g.Limit}, {"syn_limit_burst", 1, &g.Burst}} {
		if f, ok := m.get(k.name); ok {
			if v, ok := p.integer(f.val, f.path, k.lo, MaxSynLimit); ok {
				*k.dst = uint64(v)
			}
		}
	}
	if f, ok := m.get("syn_limit_burst"); ok && g.Limit == 0 {
		if _, limitSet := m.get("syn_limit"); limitSet {
			p.errorf(f.key, f.path, "only used with a syn_limit above 0 (syn_limit: 0 lets every SYN through)")
		}
	}
	if f, ok := m.get("syn_proxy_mss"); ok {
		v, _ := p.integer(f.val, f.path, MinSynProxyMSS, MaxSynProxyMSS)
		g.MSS = uint16(v)
	}
}

// steerLimit reads director.steer_limit: auto, or packets per second per
// RX queue (0: off).
func (p *parser) steerLimit(n *yaml.Node, path string) SteerLimit {
	v := deref(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
		pps, ok := p.integer(v, path, 0, MaxSteerLimit)
		if !ok {
			return SteerLimit{Auto: true}
		}
		return SteerLimit{PPS: uint64(pps)}
	}
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == "auto" {
		return SteerLimit{Auto: true}
	}
	p.errorf(v, path, "want auto or packets per second per queue (0..%d, 0: off), got %s", MaxSteerLimit, describe(v))
	return SteerLimit{Auto: true}
}

// validInterfaceName follows the kernel's dev_valid_name.
func validInterfaceName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\r\v\f")
}

func (p *parser) interfaceName(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path)
	if ok && !validInterfaceName(s) {
		p.errorf(deref(n), path, "%q is not a valid interface name", s)
		return "", false
	}
	return s, ok
}

func (p *parser) interfaces(f field) []string {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(f.val, f.path, "at least one interface is required")
		return nil
	}
	return p.interfaceList(f, items, nil)
}

// acceptForeignMAC reads director.accept_foreign_mac: a list, possibly
// empty, of interfaces named in director.interfaces.
func (p *parser) acceptForeignMAC(f field, served []string) []string {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	return p.interfaceList(f, items, served)
}

// interfaceList reads the items of list f as distinct interface names;
// with served, each must be one of them.
func (p *parser) interfaceList(f field, items []*yaml.Node, served []string) []string {
	var out []string
	seen := map[string]int{}
	for i, it := range items {
		path := indexPath(f.path, i)
		name, ok := p.interfaceName(it, path)
		if !ok {
			continue
		}
		if line, dup := seen[name]; dup {
			p.errorf(it, path, "duplicate interface %q (first at line %d)", name, line)
			continue
		}
		seen[name] = it.Line
		if served != nil && !slices.Contains(served, name) {
			p.errorf(it, path, "%q is not one of director.interfaces", name)
			continue
		}
		out = append(out, name)
	}
	return out
}

func (p *parser) checkHostPort(f field, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		p.errorf(f.val, f.path, "want host:port (e.g. 127.0.0.1:9469), got %q", s)
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		p.errorf(f.val, f.path, "%q: port must be 1..65535", s)
	}
	if strings.ContainsAny(host, " \t/") {
		p.errorf(f.val, f.path, "%q: invalid host", s)
	}
}

func (p *parser) timeouts(f field, t *Timeouts) {
	m := p.mapping(f.val, f.path, "tcp", "tcpfin", "udp")
	if m == nil {
		return
	}
	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{{"tcp", &t.TCP}, {"tcpfin", &t.TCPFin}, {"udp", &t.UDP}} {
		if f, ok := m.get(t.name); ok {
			if d, ok := p.duration(f.val, f.path); ok {
				*t.dst = d
			}
		}
	}
}

func (p *parser) sync(f field) *Sync {
	s := &Sync{Port: DefaultSyncPort}
	m := p.mapping(f.val, f.path, "role", "interface", "group", "peers", "port", "sync_id", "key_file")
	if m == nil {
		return s
	}
	if f, ok := p.require(m, "role"); ok {
		if i, ok := p.enum(f.val, f.path, syncRoleNames); ok {
			s.Role = SyncRole(i)
		}
	}
	if f, ok := p.require(m, "interface"); ok {
		s.Interface, _ = p.interfaceName(f.val, f.path)
	}
	group, hasGroup := m.get("group")
	peers, hasPeers := m.get("peers")
	switch {
	case hasGroup && hasPeers:
		p.errorf(peers.key, peers.path, "give either group (multicast) or peers (unicast), not both")
	case !hasGroup && !hasPeers:
		p.errorf(m.node, f.path, "either group (multicast) or peers (unicast) is required")
	case hasGroup:
		if a, ok := p.addr(group.val, group.path); ok {
			if !a.IsMulticast() {
				p.errorf(group.val, group.path, "%s is not a multicast address", a)
			}
			s.Group = a
		}
	default:
		s.Peers = p.addrList(peers, false, true)
	}
	if f, ok := m.get("port"); ok {
		s.Port, _ = p.port(f.val, f.path, false)
	}
	if f, ok := m.get("sync_id"); ok {
		v, _ := p.integer(f.val, f.path, 0, 255)
		s.SyncID = uint8(v)
	}
	if f, ok := p.require(m, "key_file"); ok {
		s.KeyFile, _ = p.nonEmptyStr(f.val, f.path)
	}
	return s
}

// addrList parses a list of unique unicast addresses; nonEmpty demands at
// least one, sameFamily that all share the first one's family.
func (p *parser) addrList(f field, sameFamily, nonEmpty bool) []netip.Addr {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	if nonEmpty && len(items) == 0 {
		p.errorf(f.val, f.path, "at least one address is required")
	}
	var out []netip.Addr
	seen := map[netip.Addr]int{}
	for i, it := range items {
		path := indexPath(f.path, i)
		a, ok := p.unicastAddr(it, path)
		if !ok {
			continue
		}
		if line, dup := seen[a]; dup {
			p.errorf(it, path, "duplicate address %s (first at line %d)", a, line)
			continue
		}
		if sameFamily && len(out) > 0 && a.Is4() != out[0].Is4() {
			p.errorf(it, path, "%s: mixed address families in one list", a)
			continue
		}
		seen[a] = it.Line
		out = append(out, a)
	}
	return out
}

func (p *parser) bgp(f field) *BGP {
	b := &BGP{}
	m := p.mapping(f.val, f.path, "asn", "router_id", "next_hop", "peers", "communities")
	if m == nil {
		return b
	}
	if f, ok := p.require(m, "asn"); ok {
		v, _ := p.integer(f.val, f.path, 1, math.MaxUint32)
		b.ASN = uint32(v)
	}
	if f, ok := p.require(m, "router_id"); ok {
		if a, ok := p.addr(f.val, f.path); ok {
			if !a.Is4() || a.IsUnspecified() {
				p.errorf(f.val, f.path, "router_id must be a non-zero IPv4 address, got %s", a)
			}
			b.RouterID = a
		}
	}
	b.NextHop = b.RouterID
	if f, ok := m.get("next_hop"); ok {
		b.NextHop, _ = p.unicastAddr(f.val, f.path)
	}
	if f, ok := p.require(m, "peers"); ok {
		b.Peers = p.bgpPeers(f)
	}
	if f, ok := m.get("communities"); ok {
		b.Communities = p.communities(f)
	}
	return b
}

func (p *parser) bgpPeers(f field) []BGPPeer {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(f.val, f.path, "at least one peer is required")
	}
	var out []BGPPeer
	seen := map[netip.Addr]int{}
	for i, it := range items {
		path := indexPath(f.path, i)
		m := p.mapping(it, path, "address", "asn", "port", "password_file", "hold_time", "keepalive", "multihop", "passive")
		if m == nil {
			continue
		}
		peer := BGPPeer{Port: DefaultBGPPort}
		if f, ok := p.require(m, "address"); ok {
			if a, ok := p.unicastAddr(f.val, f.path); ok {
				if line, dup := seen[a]; dup {
					p.errorf(f.val, f.path, "duplicate peer %s (first at line %d)", a, line)
				}
				seen[a] = f.val.Line
				peer.Address = a
			}
		}
		if f, ok := p.require(m, "asn"); ok {
			v, _ := p.integer(f.val, f.path, 1, math.MaxUint32)
			peer.ASN = uint32(v)
		}
		if f, ok := m.get("port"); ok {
			peer.Port, _ = p.port(f.val, f.path, false)
		}
		p.bgpPeerOptions(m, &peer)
		out = append(out, peer)
	}
	return out
}

// bgpPeerOptions reads a peer's session options: password_file, hold_time,
// keepalive, multihop and passive.
func (p *parser) bgpPeerOptions(m *mapping, peer *BGPPeer) {
	if f, ok := m.get("password_file"); ok {
		peer.PasswordFile, _ = p.nonEmptyStr(f.val, f.path)
	}
	seconds := func(f field) (time.Duration, bool) {
		d, ok := p.duration(f.val, f.path)
		if ok && d%time.Second != 0 {
			p.errorf(f.val, f.path, "%v: BGP timers are whole seconds", d)
			return 0, false
		}
		return d, ok
	}
	if f, ok := m.get("hold_time"); ok {
		if d, ok := seconds(f); ok {
			if d < MinBGPHoldTime || d > MaxBGPHoldTime {
				p.errorf(f.val, f.path, "%v is out of range %v..%v", d, MinBGPHoldTime, MaxBGPHoldTime)
			}
			peer.HoldTime = d
		}
	}
	if f, ok := m.get("keepalive"); ok {
		if d, ok := seconds(f); ok {
			hold, holdKey := peer.HoldTime, "hold_time"
			if hold == 0 {
				hold, holdKey = DefaultBGPHoldTime, "the default hold_time"
			}
			if d >= hold {
				p.errorf(f.val, f.path, "%v must be below %s (%v)", d, holdKey, hold)
			}
			peer.Keepalive = d
		}
	}
	if f, ok := m.get("multihop"); ok {
		v, _ := p.integer(f.val, f.path, 1, 255)
		peer.Multihop = uint8(v)
	}
	if f, ok := m.get("passive"); ok {
		peer.Passive, _ = p.boolean(f.val, f.path)
	}
}

func (p *parser) communities(f field) []Community {
	items, ok := p.list(f.val, f.path)
	if !ok {
		return nil
	}
	var out []Community
	for i, it := range items {
		path := indexPath(f.path, i)
		s, ok := p.str(it, path)
		if !ok {
			continue
		}
		c, err := parseCommunity(s)
		if err != nil {
			p.errorf(it, path, "%q: %v", s, err)
			continue
		}
		out = append(out, c)
	}
	return out
}

func parseCommunity(s string) (Community, error) {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return Community{}, errors.New(`want "high:low", e.g. "65001:100"`)
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return Community{}, errors.New("each half must be a number in 0..65535")
	}
	return Community{High: uint16(h), Low: uint16(l)}, nil
}
