package migrate

import (
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// Keepalived converts the keepalived.conf at path (and the files it
// includes). Only a main file that cannot be read is an error; everything
// else is in the Result's messages.
func Keepalived(path string, opts Options) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return KeepalivedData(data, path, opts), nil
}

// KeepalivedData converts keepalived.conf text; file names it in messages
// and anchors relative include paths.
func KeepalivedData(data []byte, file string, opts Options) *Result {
	c := &kaConv{file: file, groups: map[string]*kaNode{}, laddrGroups: map[string]*kaNode{}, seen: map[string]string{}}
	root := parseKeepalived(file, data, &c.rep)
	c.doc = &document{header: []string{
		"Converted by govsd convert keepalived from " + file + ".",
		"keepalived keeps doing VRRP: keep its vrrp_instance blocks, drop its virtual_server blocks.",
		"Review this file, then check it with govsd -t -c FILE.",
	}}
	for _, n := range root.children {
		switch n.key {
		case "virtual_server_group":
			if len(n.args) == 1 {
				c.groups[n.args[0]] = n
			} else {
				c.rep.errorf(n.file, n.line, "virtual_server_group takes one name")
			}
		case "local_address_group":
			if len(n.args) == 1 {
				c.laddrGroups[n.args[0]] = n
			}
		}
	}
	for _, n := range root.children {
		c.top(n)
	}
	setInterfaces(c.doc, &c.rep, file, opts.Interfaces, c.vrrpIfaces)
	for _, v := range c.vmacIfaces {
		if slices.Contains(c.doc.interfaces, v) && !slices.Contains(c.doc.acceptForeignMAC, v) {
			c.doc.acceptForeignMAC = append(c.doc.acceptForeignMAC, v)
			c.doc.acceptNote = "use_vmac: the VIPs' frames carry the VRRP MAC"
		}
	}
	return finish(c.doc, &c.rep, "converted "+file)
}

type kaConv struct {
	file        string
	rep         reporter
	doc         *document
	groups      map[string]*kaNode
	laddrGroups map[string]*kaNode
	vrrpIfaces  []string
	vmacIfaces  []string
	seen        map[string]string // service key -> where first defined
}

func at(n *kaNode) string { return n.file + ":" + strconv.Itoa(n.line) }

// keepalivedOnly are top-level blocks and keywords that stay keepalived's.
var keepalivedOnly = map[string]bool{
	"vrrp_sync_group": true, "vrrp_script": true, "vrrp_track_process": true, "track_file": true,
	"vrrp_track_file": true, "static_ipaddress": true, "static_routes": true, "static_rules": true,
	"static_track_group": true, "linkbeat_interfaces": true, "interface_up_down_delays": true,
	"bfd_instance": true, "garp_group": true, "net_namespace": true, "net_namespace_ipvs": true,
	"namespace_with_ipsets": true, "instance": true, "use_pid_dir": true, "linkbeat_use_polling": true,
	"child_wait_time": true,
}

func (c *kaConv) top(n *kaNode) {
	switch n.key {
	case "global_defs":
		c.globalDefs(n)
	case "vrrp_instance":
		c.vrrpInstance(n)
	case "virtual_server":
		c.virtualServer(n)
	case "virtual_server_group", "local_address_group":
		// read above
	case "SSL":
		if len(n.children) > 0 {
			c.rep.errorf(n.file, n.line, "SSL: govs's https checks use no client certificate or private CA")
		}
	default:
		if keepalivedOnly[n.key] {
			c.rep.notef(n.file, n.line, "%s is keepalived's: it stays in keepalived.conf", n.key)
			return
		}
		c.rep.errorf(n.file, n.line, "unknown keyword %s", n.key)
	}
}

func (c *kaConv) globalDefs(n *kaNode) {
	for _, k := range n.children {
		switch k.key {
		case "lvs_timeouts":
			c.lvsTimeouts(k)
		case "lvs_sync_daemon":
			c.rep.errorf(k.file, k.line, "lvs_sync_daemon: govs synchronises connections itself (director.sync, with a key_file): configure it by hand, see the README's \"Two directors\"")
		}
		// Everything else in global_defs is keepalived's own (mail, VRRP
		// defaults, scripts): it stays in keepalived.conf.
	}
}

func (c *kaConv) lvsTimeouts(k *kaNode) {
	if len(k.args) == 0 || len(k.args)%2 != 0 {
		c.rep.errorf(k.file, k.line, "lvs_timeouts: want [tcp SECS] [tcpfin SECS] [udp SECS]")
		return
	}
	for i := 0; i < len(k.args); i += 2 {
		name, val := k.args[i], k.args[i+1]
		if name != "tcp" && name != "tcpfin" && name != "udp" {
			c.rep.errorf(k.file, k.line, "lvs_timeouts: unknown timeout %s", name)
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 {
			c.rep.errorf(k.file, k.line, "lvs_timeouts %s %s: want seconds > 0", name, val)
			continue
		}
		c.doc.timeouts = append(c.doc.timeouts, keyValue{name, strconv.Itoa(n) + "s"})
	}
	c.doc.timeoutsNote = "lvs_timeouts at " + at(k)
}

func (c *kaConv) vrrpInstance(n *kaNode) {
	name := strings.Join(n.args, " ")
	c.rep.notef(n.file, n.line, "vrrp_instance %s: keepalived keeps doing VRRP; leave this block in keepalived.conf", name)
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	iface := ""
	for _, k := range n.children {
		switch k.key {
		case "interface":
			if len(k.args) > 0 {
				iface = k.args[0]
				add(&c.vrrpIfaces, iface)
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, a := range k.children {
				for i := 0; i+1 < len(a.args); i++ {
					if a.args[i] == "dev" {
						add(&c.vrrpIfaces, a.args[i+1])
					}
				}
			}
		case "lvs_sync_daemon_interface":
			c.rep.errorf(k.file, k.line, "lvs_sync_daemon_interface: govs synchronises connections itself (director.sync, with a key_file): configure it by hand")
		}
	}
	for _, k := range n.children {
		if k.key == "use_vmac" {
			add(&c.vmacIfaces, iface)
		}
	}
}

// kaSetting is a keyword's value and where it was written.
type kaSetting struct {
	val  []string
	node *kaNode
}

// kaInherited are the keywords a virtual server passes to its real servers
// and a real server to its checkers.
type kaInherited map[string]kaSetting

var inheritedKeys = []string{"delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "warmup", "virtualhost", "inhibit_on_failure", "alpha"}

func (in kaInherited) with(k *kaNode) kaInherited {
	out := kaInherited{}
	for key, v := range in {
		out[key] = v
	}
	key := k.key
	if key == "nb_get_retry" {
		key = "retry"
	}
	out[key] = kaSetting{val: k.args, node: k}
	return out
}

type kaMember struct {
	node   *kaNode
	fwmark uint32
	v6     bool
	addr   netip.Addr
	port   uint16
}

type kaVS struct {
	node        *kaNode
	proto       string
	sched       string
	schedNote   string
	flags       []string
	fwd         string
	fwdNote     string
	persist     int
	granularity *kaNode
	sorry       *kaNode
	laddrs      []netip.Addr
	settings    kaInherited
	reals       []*kaRS
}

type kaRS struct {
	node     *kaNode
	addr     netip.Addr
	port     uint16
	hasPort  bool
	weight   int
	fwd      string
	upper    uint32
	lower    uint32
	settings kaInherited
	checks   []*kaNode
}

var kaForward = map[string]string{"NAT": lvs.FwdNAT.Name(), "DR": lvs.FwdDR.Name(), "TUN": lvs.FwdTun.Name(), "FNAT": lvs.FwdFullNAT.Name()}

func (c *kaConv) forward(k *kaNode) (string, bool) {
	if len(k.args) == 0 {
		c.rep.errorf(k.file, k.line, "%s needs NAT, DR or TUN", k.key)
		return "", false
	}
	f, ok := kaForward[strings.ToUpper(k.args[0])]
	if !ok {
		c.rep.errorf(k.file, k.line, "%s %s: govs forwards by NAT, DR, TUN (and full-NAT)", k.key, k.args[0])
		return "", false
	}
	if len(k.args) > 1 && !(len(k.args) == 3 && k.args[1] == "type" && k.args[2] == "ipip") {
		c.rep.errorf(k.file, k.line, "%s %s: govs tunnels with IPIP only", k.key, strings.Join(k.args, " "))
	}
	return f, true
}

func (c *kaConv) members(n *kaNode) []kaMember {
	switch {
	case len(n.args) == 2 && n.args[0] == "fwmark":
		return c.fwmarkMember(n, n.args[1:])
	case len(n.args) == 2 && n.args[0] == "group":
		g := c.groups[n.args[1]]
		if g == nil {
			c.rep.errorf(n.file, n.line, "virtual_server group %s: no virtual_server_group of that name", n.args[1])
			return nil
		}
		var out []kaMember
		for _, m := range g.children {
			if m.key == "fwmark" {
				out = append(out, c.fwmarkMember(m, m.args)...)
				continue
			}
			out = append(out, c.addrMembers(m, m.key, m.args)...)
		}
		return out
	case len(n.args) == 1 || len(n.args) == 2:
		return c.addrMembers(n, n.args[0], n.args[1:])
	}
	c.rep.errorf(n.file, n.line, "virtual_server: want IP [PORT], fwmark N or group NAME")
	return nil
}

func (c *kaConv) fwmarkMember(n *kaNode, args []string) []kaMember {
	if len(args) == 0 {
		c.rep.errorf(n.file, n.line, "fwmark needs a number")
		return nil
	}
	v, err := strconv.ParseUint(args[0], 0, 32)
	if err != nil || v == 0 {
		c.rep.errorf(n.file, n.line, "fwmark %s: want 1..4294967295", args[0])
		return nil
	}
	return []kaMember{{node: n, fwmark: uint32(v), v6: len(args) > 1 && args[1] == "inet6"}}
}

// addrMembers expands IP, IP-LAST, IP-IP and IP/NN (keepalived's ranges).
func (c *kaConv) addrMembers(n *kaNode, spec string, rest []string) []kaMember {
	var port uint16
	if len(rest) > 1 {
		c.rep.errorf(n.file, n.line, "want ADDRESS [PORT]")
		return nil
	}
	if len(rest) == 1 {
		p, err := strconv.ParseUint(rest[0], 10, 16)
		if err != nil {
			c.rep.errorf(n.file, n.line, "%q is not a port", rest[0])
			return nil
		}
		port = uint16(p)
	}
	addrs, ok := expandRange(spec)
	if !ok {
		c.rep.errorf(n.file, n.line, "%q is not an address, range or prefix of at most 256 addresses", spec)
		return nil
	}
	out := make([]kaMember, len(addrs))
	for i, a := range addrs {
		out[i] = kaMember{node: n, addr: a, port: port}
	}
	return out
}

func expandRange(spec string) ([]netip.Addr, bool) {
	if pfx, err := netip.ParsePrefix(spec); err == nil {
		bits := pfx.Addr().BitLen() - pfx.Bits()
		if bits > 8 {
			return nil, false
		}
		var out []netip.Addr
		for a, i := pfx.Masked().Addr(), 0; i < 1<<bits; a, i = a.Next(), i+1 {
			out = append(out, a)
		}
		return out, true
	}
	first, last, isRange := strings.Cut(spec, "-")
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, false
	}
	if !isRange {
		return []netip.Addr{a.Unmap()}, true
	}
	end, err := netip.ParseAddr(last)
	if err != nil {
		// The last part replaces the address's last byte (IPv4, decimal)
		// or group (IPv6, hex).
		if a.Is4() {
			v, err := strconv.ParseUint(last, 10, 8)
			if err != nil {
				return nil, false
			}
			b := a.As4()
			b[3] = byte(v)
			end = netip.AddrFrom4(b)
		} else {
			v, err := strconv.ParseUint(last, 16, 16)
			if err != nil {
				return nil, false
			}
			b := a.As16()
			b[14], b[15] = byte(v>>8), byte(v)
			end = netip.AddrFrom16(b)
		}
	}
	if end.Less(a) || a.Is4() != end.Is4() {
		return nil, false
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		out = append(out, x)
		if len(out) > 256 {
			return nil, false
		}
		if x == end {
			return out, true
		}
	}
}

func parseBool(args []string) (bool, bool) {
	if len(args) == 0 {
		return true, true
	}
	switch strings.ToLower(args[0]) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

func parseTimer(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Microsecond), true
}

var schedFlagKeys = map[string]bool{"flag-1": true, "flag-2": true, "flag-3": true, "sh-port": true, "sh-fallback": true, "mh-port": true, "mh-fallback": true}

func (c *kaConv) virtualServer(n *kaNode) {
	vs := &kaVS{node: n, proto: "tcp", fwd: "nat", fwdNote: "lvs_method: not set, keepalived's default NAT", settings: kaInherited{}}
	for _, k := range n.children {
		switch k.key {
		case "lvs_sched", "lb_algo":
			if names := sched.Names(); len(k.args) != 1 || !slices.Contains(names, k.args[0]) {
				c.rep.errorf(k.file, k.line, "%s %s: govs's schedulers are %s", k.key, strings.Join(k.args, " "), strings.Join(names, " "))
				continue
			}
			vs.sched, vs.schedNote = k.args[0], ""
		case "lvs_method", "lb_kind":
			if f, ok := c.forward(k); ok {
				vs.fwd, vs.fwdNote = f, ""
			}
		case "persistence_timeout":
			vs.persist = 360 // keepalived's default: 6 minutes
			if len(k.args) > 0 {
				v, err := strconv.Atoi(k.args[0])
				if err != nil || v <= 0 {
					c.rep.errorf(k.file, k.line, "persistence_timeout %s: want seconds > 0", k.args[0])
					vs.persist = 0
					continue
				}
				vs.persist = v
			}
		case "persistence_granularity":
			if len(k.args) != 1 {
				c.rep.errorf(k.file, k.line, "persistence_granularity takes a netmask")
				continue
			}
			vs.granularity = k
		case "protocol":
			switch strings.ToUpper(strings.Join(k.args, " ")) {
			case "TCP":
				vs.proto = "tcp"
			case "UDP":
				vs.proto = "udp"
			default:
				c.rep.errorf(k.file, k.line, "protocol %s: govs serves TCP and UDP", strings.Join(k.args, " "))
			}
		case "sorry_server":
			vs.sorry = k
		case "sorry_server_lvs_method":
			if f, ok := c.forward(k); ok && f != vs.fwd {
				c.rep.errorf(k.file, k.line, "sorry_server_lvs_method: govs forwards to the sorry server by the service's method (%s)", vs.fwd)
			}
		case "sorry_server_inhibit":
			c.rep.errorf(k.file, k.line, "sorry_server_inhibit: govs does not check the sorry server")
		case "real_server":
			if rs := c.realServer(k, vs.settings); rs != nil {
				vs.reals = append(vs.reals, rs)
			}
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "warmup", "virtualhost", "inhibit_on_failure", "alpha":
			vs.settings = vs.settings.with(k)
		case "ha_suspend":
			c.rep.notef(k.file, k.line, "ha_suspend: govs checks the real servers whether or not this director holds the VIP")
		case "smtp_alert", "snmp_name", "omega", "nat_mask", "hashed":
			c.rep.notef(k.file, k.line, "%s: nothing in govs does this (left out)", k.key)
		case "quorum", "hysteresis":
			if strings.Join(k.args, " ") != map[string]string{"quorum": "1", "hysteresis": "0"}[k.key] {
				c.rep.errorf(k.file, k.line, "%s: govs has no quorum", k.key)
			}
		case "quorum_up", "quorum_down":
			c.rep.errorf(k.file, k.line, "%s: govs runs no scripts on quorum changes (it has no quorum)", k.key)
		case "persistence_engine":
			c.rep.errorf(k.file, k.line, "persistence_engine: govs has no persistence engines")
		case "ops":
			c.rep.errorf(k.file, k.line, "ops: govs has no one-packet scheduling")
		case "ip_family":
		case "laddr_group_name":
			if len(k.args) != 1 || c.laddrGroups[k.args[0]] == nil {
				c.rep.errorf(k.file, k.line, "laddr_group_name: no local_address_group of that name")
				continue
			}
			for _, m := range c.laddrGroups[k.args[0]].children {
				addrs, ok := expandRange(m.key)
				if !ok {
					c.rep.errorf(m.file, m.line, "%q is not an address or range", m.key)
				}
				vs.laddrs = append(vs.laddrs, addrs...)
			}
		default:
			if schedFlagKeys[k.key] {
				vs.flags = append(vs.flags, k.key)
				continue
			}
			c.rep.errorf(k.file, k.line, "unknown or unsupported keyword %s in virtual_server", k.key)
		}
	}
	if vs.sched == "" {
		vs.schedNote = "lvs_sched not set: wlc, IPVS's default"
	}
	for _, m := range c.members(n) {
		if s := c.instantiate(vs, m); s != nil {
			c.doc.services = append(c.doc.services, s)
		}
	}
}

func (c *kaConv) realServer(n *kaNode, inherited kaInherited) *kaRS {
	rs := &kaRS{node: n, weight: 1, settings: inherited}
	if len(n.args) < 1 || len(n.args) > 2 {
		c.rep.errorf(n.file, n.line, "real_server: want IP [PORT]")
		return nil
	}
	a, err := netip.ParseAddr(n.args[0])
	if err != nil || a.Zone() != "" {
		c.rep.errorf(n.file, n.line, "real_server %s: not an IP address", n.args[0])
		return nil
	}
	rs.addr = a.Unmap()
	if len(n.args) == 2 {
		p, err := strconv.ParseUint(n.args[1], 10, 16)
		if err != nil {
			c.rep.errorf(n.file, n.line, "real_server: %q is not a port", n.args[1])
			return nil
		}
		rs.port, rs.hasPort = uint16(p), true
	}
	for _, k := range n.children {
		switch k.key {
		case "weight":
			v, err := strconv.ParseInt(strings.Join(k.args, " "), 10, 64)
			if err != nil || v < 0 || v > config.MaxWeight {
				c.rep.errorf(k.file, k.line, "weight: want 0..%d", config.MaxWeight)
				continue
			}
			rs.weight = int(v)
		case "lvs_method", "lb_kind":
			if f, ok := c.forward(k); ok {
				rs.fwd = f
			}
		case "uthreshold", "lthreshold":
			v, err := strconv.ParseUint(strings.Join(k.args, " "), 10, 32)
			if err != nil {
				c.rep.errorf(k.file, k.line, "%s: want a number of connections", k.key)
				continue
			}
			if k.key == "uthreshold" {
				rs.upper = uint32(v)
			} else {
				rs.lower = uint32(v)
			}
		case "notify_up", "notify_down":
			c.rep.errorf(k.file, k.line, "%s: govs runs no scripts when a server changes state (it logs the change and exports it as a metric)", k.key)
		case "smtp_alert", "snmp_name":
			c.rep.notef(k.file, k.line, "%s: nothing in govs does this (left out)", k.key)
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "warmup", "virtualhost", "inhibit_on_failure", "alpha":
			rs.settings = rs.settings.with(k)
		case "HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK", "DNS_CHECK":
			rs.checks = append(rs.checks, k)
		case "SMTP_CHECK", "BFD_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK":
			c.rep.errorf(k.file, k.line, "%s: govs has no such check (it has TCP, HTTP, HTTPS, UDP with a payload, DNS and exec checks)", k.key)
		default:
			c.rep.errorf(k.file, k.line, "unknown or unsupported keyword %s in real_server", k.key)
		}
	}
	if len(rs.checks) > 1 {
		k := rs.checks[1]
		c.rep.errorf(k.file, k.line, "%s: govs checks a server with one check; only the first (%s at line %d) is converted", k.key, rs.checks[0].key, rs.checks[0].line)
		rs.checks = rs.checks[:1]
	}
	if s, ok := rs.settings["alpha"]; ok && s.node.file != "" {
		if v, _ := parseBool(s.val); v {
			c.rep.errorf(s.node.file, s.node.line, "alpha: govs starts every server up and takes it out after fall failed checks")
		}
	}
	return rs
}

func (c *kaConv) instantiate(vs *kaVS, m kaMember) *service {
	n := vs.node
	s := &service{scheduler: vs.sched, schedNote: vs.schedNote, forward: vs.fwd, fwdNote: vs.fwdNote, proto: vs.proto}
	where := at(n)
	if m.node != n {
		where = at(m.node) + " (group member, used by virtual_server at " + at(n) + ")"
	}
	var key string
	if m.fwmark != 0 {
		s.fwmark = m.fwmark
		s.name = "fwmark-" + strconv.FormatUint(uint64(m.fwmark), 10)
		s.comments = []string{"virtual_server fwmark " + strconv.FormatUint(uint64(m.fwmark), 10) + " at " + where}
		s.matchTODO = fwmarkTODO(m.fwmark, m.v6)
		key = s.name
		c.rep.errorf(m.node.file, m.node.line, "fwmark %d: the mark is set by an iptables/nftables rule outside keepalived.conf; govs classifies in XDP, before netfilter, so write the mark's match by hand (see the TODO in the output)", m.fwmark)
	} else {
		s.vip, s.port = m.addr, m.port
		s.name = serviceName(vs.proto, m.addr, m.port)
		s.comments = []string{"virtual_server " + netip.AddrPortFrom(m.addr, m.port).String() + " " + vs.proto + " at " + where}
		key = s.name
	}
	if first, dup := c.seen[key]; dup {
		c.rep.errorf(m.node.file, m.node.line, "%s is defined twice (first at %s)", s.name, first)
		return nil
	}
	c.seen[key] = at(m.node)
	is6 := m.addr.Is6() || m.v6
	if m.fwmark != 0 && len(vs.reals) > 0 {
		is6 = vs.reals[0].addr.Is6()
	}
	for _, f := range vs.flags {
		if flag := schedFlag(s.scheduler, f); flag != "" {
			if !slices.Contains(s.flags, flag) {
				s.flags = append(s.flags, flag)
			}
		} else {
			for _, k := range n.children {
				if k.key == f {
					c.rep.notef(k.file, k.line, "%s means nothing to the %s scheduler: left out", f, cmpOr(s.scheduler, lvs.DefaultScheduler))
				}
			}
		}
	}
	if vs.persist > 0 {
		s.persist = &persistence{timeout: vs.persist}
		if g := vs.granularity; g != nil && !defaultMask(g.args[0]) {
			mask := strings.TrimPrefix(g.args[0], "/")
			if is6 && strings.Contains(mask, ".") {
				c.rep.errorf(g.file, g.line, "persistence_granularity %s: an IPv6 service takes a prefix length", g.args[0])
			} else {
				s.persist.netmask = mask
				s.persist.note = "persistence_granularity"
			}
		}
	} else if vs.granularity != nil {
		c.rep.notef(vs.granularity.file, vs.granularity.line, "persistence_granularity without persistence_timeout means nothing: left out")
	}
	if m.fwmark == 0 && m.port == 0 && s.persist == nil {
		c.rep.errorf(m.node.file, m.node.line, "a virtual server without a port needs persistence_timeout")
	}
	if len(vs.laddrs) > 0 {
		s.laddrs = vs.laddrs
	} else if vs.fwd == "fullnat" {
		c.rep.errorf(n.file, n.line, "full-NAT needs local addresses (laddr_group_name)")
	}
	if k := vs.sorry; k != nil {
		c.sorryServer(s, k)
	}

	quiesce := false
	if st, ok := vs.settings["inhibit_on_failure"]; ok {
		quiesce, _ = parseBool(st.val)
	}
	inhibits := make([]bool, len(vs.reals))
	for i, r := range vs.reals {
		if st, ok := r.settings["inhibit_on_failure"]; ok {
			inhibits[i], _ = parseBool(st.val)
		}
		quiesce = quiesce || inhibits[i]
	}
	for i, r := range vs.reals {
		if quiesce && !inhibits[i] && len(r.checks) > 0 {
			c.rep.errorf(r.node.file, r.node.line, "govs's on_failure is per service: this server, without inhibit_on_failure, is quiesced too like the others")
		}
	}
	if quiesce {
		s.onFailure, s.failNote = "quiesce", "inhibit_on_failure"
	} else {
		s.onFailure, s.failNote = "remove", "no inhibit_on_failure"
	}

	fwds := make([]string, len(vs.reals))
	for i, r := range vs.reals {
		fwd := cmpOr(r.fwd, vs.fwd)
		fwds[i] = fwd
		rs := &realServer{comments: []string{"real_server at " + at(r.node)}, addr: r.addr, port: m.port, weight: r.weight, upper: r.upper, lower: r.lower}
		if r.hasPort {
			rs.port = r.port
		}
		if r.addr.Is6() != is6 && fwd != "tun" {
			c.rep.errorf(r.node.file, r.node.line, "real_server %s: the address family differs from the virtual server's", r.addr)
		}
		checkPort := uint16(0)
		if m.fwmark == 0 && (fwd == "dr" || fwd == "tun") && rs.port != m.port {
			c.rep.notef(r.node.file, r.node.line, "a %s real server takes the virtual server's port %d (IPVS ignores port %d); its check still probes %d", fwd, m.port, rs.port, rs.port)
			checkPort = rs.port
			rs.port = m.port
		}
		if len(r.checks) > 0 {
			rs.check = c.buildCheck(r.checks[0], r, checkPort)
		}
		s.reals = append(s.reals, rs)
	}
	s.settleForward(fwds)
	s.hoistChecks()
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *kaConv) sorryServer(s *service, k *kaNode) {
	if len(k.args) < 1 || len(k.args) > 2 {
		c.rep.errorf(k.file, k.line, "sorry_server: want IP [PORT]")
		return
	}
	a, err := netip.ParseAddr(k.args[0])
	if err != nil {
		c.rep.errorf(k.file, k.line, "sorry_server %s: not an IP address", k.args[0])
		return
	}
	ss := &sorryServer{addr: a.Unmap(), port: s.port}
	if len(k.args) == 2 {
		p, err := strconv.ParseUint(k.args[1], 10, 16)
		if err != nil {
			c.rep.errorf(k.file, k.line, "sorry_server: %q is not a port", k.args[1])
			return
		}
		ss.port = uint16(p)
	}
	if s.fwmark == 0 && (s.forward == "dr" || s.forward == "tun") && ss.port != s.port {
		c.rep.notef(k.file, k.line, "a %s sorry server takes the virtual server's port %d", s.forward, s.port)
		ss.port = s.port
	}
	s.sorry = ss
}

var checkTypes = map[string]string{"HTTP_GET": "http", "SSL_GET": "https", "TCP_CHECK": "tcp", "MISC_CHECK": "exec", "DNS_CHECK": "dns"}

// buildCheck maps a keepalived checker onto a govs health_check; the
// comments say how each timer was mapped.
func (c *kaConv) buildCheck(k *kaNode, r *kaRS, portOverride uint16) *check {
	ck := &check{typ: checkTypes[k.key], origin: k.key + " at " + at(k), rise: 1, riseNote: "keepalived puts a server back after one good check"}
	set := r.settings
	var url []*kaNode
	for _, o := range k.children {
		switch o.key {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "warmup", "alpha":
			set = set.with(o)
		case "connect_port":
			p, err := strconv.ParseUint(strings.Join(o.args, " "), 10, 16)
			if err != nil || p == 0 {
				c.rep.errorf(o.file, o.line, "connect_port: want a port")
				continue
			}
			ck.port, ck.portNote, portOverride = uint16(p), "connect_port", 0
		case "connect_ip":
			if a, err := netip.ParseAddr(strings.Join(o.args, " ")); err != nil || a.Unmap() != r.addr {
				c.rep.errorf(o.file, o.line, "connect_ip: govs probes the real server's own address (or the VIP with check_via_vip, dr and tun)")
			}
		case "bindto", "bind_if", "bind_port":
			c.rep.errorf(o.file, o.line, "%s: govs picks the probes' source itself", o.key)
		case "fwmark":
			c.rep.errorf(o.file, o.line, "fwmark: govs does not mark its probes")
		case "log_all_failures", "fast_recovery", "http_protocol", "enable_sni", "sni_name", "tls_compliant":
			c.rep.notef(o.file, o.line, "%s: no such setting in govs (left out)", o.key)
		case "url":
			if k.key != "HTTP_GET" && k.key != "SSL_GET" {
				c.rep.errorf(o.file, o.line, "url is only for HTTP_GET and SSL_GET")
				continue
			}
			url = append(url, o)
		case "virtualhost":
			if k.key != "HTTP_GET" && k.key != "SSL_GET" {
				c.rep.errorf(o.file, o.line, "virtualhost is only for HTTP_GET and SSL_GET")
				continue
			}
			set = set.with(o)
		case "misc_path", "misc_timeout", "misc_dynamic", "user":
			if k.key != "MISC_CHECK" {
				c.rep.errorf(o.file, o.line, "%s is only for MISC_CHECK", o.key)
				continue
			}
			c.miscOption(ck, o, &set)
		case "type", "name":
			if k.key != "DNS_CHECK" {
				c.rep.errorf(o.file, o.line, "unknown keyword %s in %s", o.key, k.key)
				continue
			}
			if len(o.args) != 1 {
				c.rep.errorf(o.file, o.line, "%s takes one value", o.key)
				continue
			}
			if o.key == "type" {
				ck.dnsType = strings.ToUpper(o.args[0])
			} else {
				ck.dnsQuery = o.args[0]
			}
		default:
			c.rep.errorf(o.file, o.line, "unknown or unsupported keyword %s in %s", o.key, k.key)
		}
	}
	if portOverride != 0 {
		ck.port, ck.portNote = portOverride, "keepalived's real_server port"
	}
	if st, ok := set["alpha"]; ok {
		if v, _ := parseBool(st.val); v && st.node.line != 0 {
			c.rep.errorf(st.node.file, st.node.line, "alpha: govs starts every server up and takes it out after fall failed checks")
		}
	}
	// Timers.
	ck.interval, ck.intNote = 60*time.Second, "delay_loop not set: keepalived's 60s"
	if d, note, ok := c.timer(set, "delay_loop"); ok && d > 0 {
		ck.interval, ck.intNote = d, note
	}
	if ck.typ == "exec" {
		ck.timeout, ck.toNote = ck.interval, "misc_timeout not set: the delay_loop, as keepalived"
		if d, note, ok := c.timer(set, "misc_timeout"); ok && d > 0 {
			ck.timeout, ck.toNote = d, note
		}
	} else {
		ck.timeout, ck.toNote = 5*time.Second, "connect_timeout not set: keepalived's 5s"
		if d, note, ok := c.timer(set, "connect_timeout"); ok && d > 0 {
			ck.timeout, ck.toNote = d, note
		}
	}
	if ck.timeout > ck.interval {
		ck.toNote += "; cut to the interval (govs: timeout <= interval)"
		ck.timeout = ck.interval
	}
	retry, retryNote := map[string]int{"dns": 3, "exec": 0}[ck.typ], "retry not set"
	if ck.typ != "dns" && ck.typ != "exec" {
		retry = 1
	}
	if st, ok := set["retry"]; ok {
		v, err := strconv.Atoi(strings.Join(st.val, " "))
		if err != nil || v < 0 {
			c.rep.errorf(st.node.file, st.node.line, "%s: want a count", st.node.key)
		} else {
			retry, retryNote = v, st.node.key+" "+st.val[0]
		}
	}
	retries := strconv.Itoa(retry) + " retries"
	if retry == 1 {
		retries = "1 retry"
	}
	ck.fall, ck.fallNote = retry+1, retryNote+": the failed check and "+retries
	dbr := map[string]string{"http": "3s", "https": "3s", "dns": "the delay_loop"}[ck.typ]
	if dbr == "" {
		dbr = "1s"
	}
	if d, _, ok := c.timer(set, "delay_before_retry"); ok {
		dbr = duration(d)
	}
	ck.notes = append(ck.notes, "keepalived retried after delay_before_retry ("+dbr+"); govs probes every interval, failed or not")
	if st, ok := set["warmup"]; ok {
		c.rep.notef(st.node.file, st.node.line, "warmup: govs spreads its first checks itself (left out)")
	}
	// Type-specific parts.
	switch ck.typ {
	case "http", "https":
		h := &httpCheck{path: "/", status: statusRange(200, 299), note: "status_code not set: keepalived takes any 2xx"}
		if st, ok := set["virtualhost"]; ok && len(st.val) > 0 {
			h.host = st.val[0]
		}
		if len(url) > 1 {
			c.rep.errorf(url[1].file, url[1].line, "url: govs checks one path per server; only the first url (line %d) is converted", url[0].line)
		}
		if len(url) > 0 {
			c.urlBlock(url[0], h)
		}
		ck.http = h
	case "dns":
		if ck.dnsType == "" {
			ck.dnsType = "SOA"
		}
		if ck.dnsQuery == "" {
			ck.dnsQuery = "."
		}
		if ck.port == 0 && r.port != 53 {
			ck.port, ck.portNote = 53, "DNS_CHECK's default port"
		}
	case "exec":
		if ck.exec == nil {
			c.rep.errorf(k.file, k.line, "MISC_CHECK without misc_path")
			ck.exec = []string{"/bin/false"}
		}
		ck.port, ck.portNote = 0, ""
	}
	return ck
}

func (c *kaConv) timer(set kaInherited, key string) (time.Duration, string, bool) {
	st, ok := set[key]
	if !ok {
		return 0, "", false
	}
	if len(st.val) != 1 {
		c.rep.errorf(st.node.file, st.node.line, "%s takes one value in seconds", key)
		return 0, "", false
	}
	d, ok := parseTimer(st.val[0])
	if !ok {
		c.rep.errorf(st.node.file, st.node.line, "%s %s: want seconds", key, st.val[0])
		return 0, "", false
	}
	return d, key + " " + st.val[0], true
}

func (c *kaConv) miscOption(ck *check, o *kaNode, set *kaInherited) {
	switch o.key {
	case "misc_path":
		if len(o.args) == 0 {
			c.rep.errorf(o.file, o.line, "misc_path needs a command")
			return
		}
		if len(o.args) > 1 {
			c.rep.errorf(o.file, o.line, "misc_path: govs runs the command as govsd's user (no user %s)", strings.Join(o.args[1:], " "))
		}
		words := splitCommand(o.args[0])
		if len(words) == 0 {
			c.rep.errorf(o.file, o.line, "misc_path needs a command")
			return
		}
		ck.exec = words
	case "misc_timeout":
		*set = set.with(o)
	case "misc_dynamic":
		c.rep.errorf(o.file, o.line, "misc_dynamic: govs does not set weights from a check's exit status")
	case "user":
		c.rep.errorf(o.file, o.line, "user: govs runs exec checks as govsd's user")
	}
}

// splitCommand splits misc_path's command into words as keepalived does:
// blanks separate, single or double quotes group.
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ' || ch == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

func statusRange(lo, hi int) []int {
	out := make([]int, 0, hi-lo+1)
	for v := lo; v <= hi; v++ {
		out = append(out, v)
	}
	return out
}

func (c *kaConv) urlBlock(u *kaNode, h *httpCheck) {
	for _, o := range u.children {
		switch o.key {
		case "path":
			if len(o.args) != 1 || !strings.HasPrefix(o.args[0], "/") {
				c.rep.errorf(o.file, o.line, "path: want one path starting with /")
				continue
			}
			h.path = o.args[0]
		case "status_code":
			var codes []int
			ok := len(o.args) > 0
			for _, a := range o.args {
				lo, hi, isRange := strings.Cut(a, "-")
				l, err1 := strconv.Atoi(lo)
				hv, err2 := l, error(nil)
				if isRange {
					hv, err2 = strconv.Atoi(hi)
				}
				if err1 != nil || err2 != nil || l < 100 || hv > 599 || hv < l {
					ok = false
					break
				}
				for v := l; v <= hv; v++ {
					if !slices.Contains(codes, v) {
						codes = append(codes, v)
					}
				}
			}
			if !ok {
				c.rep.errorf(o.file, o.line, "status_code: want codes or ranges 100..599")
				continue
			}
			slices.Sort(codes)
			h.status, h.note = codes, "url path, status_code"
		case "virtualhost":
			if len(o.args) == 1 {
				h.host = o.args[0]
			}
		case "digest":
			c.rep.errorf(o.file, o.line, "digest: govs does not compare the body's MD5; use expect_body (a substring) instead")
		case "regex":
			if len(o.args) == 1 && regexp.QuoteMeta(o.args[0]) == o.args[0] {
				h.body = o.args[0]
				continue
			}
			c.rep.errorf(o.file, o.line, "regex: govs's expect_body is a plain substring; this pattern is not one")
		case "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			c.rep.errorf(o.file, o.line, "%s: govs's expect_body is a plain substring that must appear", o.key)
		case "tls_compliant":
			c.rep.notef(o.file, o.line, "tls_compliant: no such setting in govs (left out)")
		default:
			c.rep.errorf(o.file, o.line, "unknown keyword %s in url", o.key)
		}
	}
}
