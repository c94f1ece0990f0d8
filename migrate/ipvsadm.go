package migrate

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/govs/govs/config"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// RuleLine is one command of ipvsadm rules and the line it came from.
type RuleLine struct {
	Num  int
	Args []string
}

// ReadRules splits ipvsadm rules as ipvsadm's config_stream does (-R):
// words separated by blanks, one command per line. Blank lines and
// comments (from a word starting with '#') are skipped, and a leading
// "ipvsadm" or "govsadm" word is dropped, so a file of ipvsadm command
// lines reads too. govsadm -R reads its input with it.
func ReadRules(r io.Reader) ([]RuleLine, error) {
	var out []RuleLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for num := 1; sc.Scan(); num++ {
		words := strings.Fields(sc.Text())
		for i, wd := range words {
			if strings.HasPrefix(wd, "#") {
				words = words[:i]
				break
			}
		}
		if len(words) > 0 {
			if base := filepath.Base(words[0]); base == "ipvsadm" || base == "govsadm" {
				words = words[1:]
			}
		}
		if len(words) == 0 {
			continue
		}
		out = append(out, RuleLine{Num: num, Args: words})
	}
	return out, sc.Err()
}

// Ipvsadm converts ipvsadm rules (ipvsadm -S, ipvsadm-save, govsadm -S, or
// ipvsadm command lines) into a govs.yaml. file names the input in
// messages.
func Ipvsadm(data []byte, file string, opts Options) *Result {
	c := &ipvsConv{file: file, byKey: map[string]*ipvsSvc{}}
	lines, err := ReadRules(bytes.NewReader(data))
	for _, l := range lines {
		c.line(l.Num, l.Args)
	}
	if err != nil {
		c.rep.errorf(file, 0, "%v", err)
	}
	doc := &document{header: []string{
		"Converted by govsd convert ipvsadm from " + file + ".",
		"Review it, then check it with govsd -t -c FILE.",
	}}
	setInterfaces(doc, &c.rep, file, opts.Interfaces, nil)
	if len(c.timeouts) > 0 {
		doc.timeouts = c.timeouts
		doc.timeoutsNote = "--set at " + file + ":" + strconv.Itoa(c.timeoutsLine)
	}
	for _, s := range c.order {
		if c.byKey[s.key] == s {
			doc.services = append(doc.services, c.service(s))
		}
	}
	return finish(doc, &c.rep, "converted "+file)
}

type ipvsConv struct {
	file         string
	rep          reporter
	order        []*ipvsSvc
	byKey        map[string]*ipvsSvc
	timeouts     []keyValue
	timeoutsLine int
}

type ipvsSvc struct {
	key       string
	line      int
	text      string
	fwmark    uint32
	v6        bool
	proto     string
	vip       netip.Addr
	port      uint16
	sched     string
	flags     []string
	flagsLine int
	persist   int // seconds; 0: not persistent
	netmask   string
	maskLine  int
	laddrs    []netip.Addr
	// proxy and toa are govsadm's --proxy-protocol ("" for none) and
	// --toa, set on line clientLine.
	proxy      string
	toa        bool
	clientLine int
	dests      []*ipvsDest
}

type ipvsDest struct {
	line   int
	addr   netip.Addr
	port   uint16
	fwd    string
	weight int
	upper  uint32
	lower  uint32
}

// ipvsOpt is one option of ipvsadm (and govsadm's additions).
type ipvsOpt struct {
	long  string
	short byte
	arg   int // 0 none, 1 required, 2 optional (-p)
	key   string
}

// ipvsadmForward are the forwarding options' methods.
var ipvsadmForward = map[string]lvs.Fwd{"g": lvs.FwdDR, "m": lvs.FwdNAT, "i": lvs.FwdTun, "fullnat": lvs.FwdFullNAT}

var ipvsOpts = []ipvsOpt{
	{"add-service", 'A', 0, "A"}, {"edit-service", 'E', 0, "E"}, {"delete-service", 'D', 0, "D"},
	{"clear", 'C', 0, "C"}, {"add-server", 'a', 0, "a"}, {"edit-server", 'e', 0, "e"},
	{"delete-server", 'd', 0, "d"}, {"set", 0, 0, "set"}, {"add-laddr", 'P', 0, "P"}, {"del-laddr", 'Q', 0, "Q"},
	{"tcp-service", 't', 1, "t"}, {"udp-service", 'u', 1, "u"}, {"fwmark-service", 'f', 1, "f"},
	{"ipv6", '6', 0, "6"}, {"scheduler", 's', 1, "s"}, {"sched-flags", 'b', 1, "b"},
	{"persistent", 'p', 2, "p"}, {"netmask", 'M', 1, "M"}, {"real-server", 'r', 1, "r"},
	{"gatewaying", 'g', 0, "g"}, {"ipip", 'i', 0, "i"}, {"masquerading", 'm', 0, "m"}, {"fullnat", 0, 0, "fullnat"},
	{"weight", 'w', 1, "w"}, {"u-threshold", 'x', 1, "x"}, {"l-threshold", 'y', 1, "y"}, {"laddr", 'z', 1, "z"},
	{"numeric", 'n', 0, "n"}, {"tun-type", 0, 1, "tun-type"},
	// govsadm's: --toa takes a value only as --toa=false.
	{"proxy-protocol", 0, 1, "proxy-protocol"}, {"toa", 0, 0, "toa"},
	// Not rules, or nothing govs has.
	{"list", 'L', 0, "!list"}, {"", 'l', 0, "!list"}, {"zero", 'Z', 0, "!zero"}, {"save", 'S', 0, "!save"},
	{"restore", 'R', 0, "!restore"}, {"help", 'h', 0, "!help"}, {"version", 'v', 0, "!version"},
	{"start-daemon", 0, 1, "!daemon"}, {"stop-daemon", 0, 1, "!daemon"},
	{"mcast-interface", 0, 1, "!daemon"}, {"mcast-group", 0, 1, "!daemon"}, {"mcast-port", 0, 1, "!daemon"},
	{"mcast-ttl", 0, 1, "!daemon"}, {"syncid", 0, 1, "!daemon"}, {"sync-maxlen", 0, 1, "!daemon"},
	{"sctp-service", 0, 1, "!sctp"}, {"ops", 'o', 0, "!ops"}, {"pe", 0, 1, "!pe"},
	{"tun-port", 0, 1, "!tun"}, {"tun-nocsum", 0, 0, "!tun"}, {"tun-csum", 0, 0, "!tun"}, {"tun-remcsum", 0, 0, "!tun"},
}

var ipvsRefusal = map[string]string{
	"!list":    "lists are not rules (save them with ipvsadm -S -n)",
	"!zero":    "counters are not rules",
	"!save":    "not a rule",
	"!restore": "not a rule",
	"!help":    "not a rule",
	"!version": "not a rule",
	"!daemon":  "the sync daemon is govs's director.sync, which needs a key_file: write it by hand (README, \"Two directors\")",
	"!sctp":    "govs has no SCTP services",
	"!ops":     "govs has no one-packet scheduling (-o)",
	"!pe":      "govs has no persistence engines (--pe)",
	"!tun":     "govs tunnels with IPIP only (no GUE or GRE options)",
}

// ipvsArgs is one parsed rule line.
type ipvsArgs struct {
	cmd   string
	opts  map[string]string // option key -> value ("" when none)
	order []string
	pos   []string
}

func (a *ipvsArgs) has(k string) bool { _, ok := a.opts[k]; return ok }

func (c *ipvsConv) parseArgs(num int, words []string) (*ipvsArgs, bool) {
	a := &ipvsArgs{opts: map[string]string{}}
	lookup := func(long string, short byte) *ipvsOpt {
		for i := range ipvsOpts {
			o := &ipvsOpts[i]
			if (long != "" && o.long == long) || (short != 0 && o.short == short) {
				return o
			}
		}
		return nil
	}
	set := func(o *ipvsOpt, display, val string) bool {
		if strings.HasPrefix(o.key, "!") {
			c.rep.errorf(c.file, num, "%s: %s", display, ipvsRefusal[o.key])
			return false
		}
		switch o.key {
		case "A", "E", "D", "C", "a", "e", "d", "set", "P", "Q":
			if a.cmd != "" {
				c.rep.errorf(c.file, num, "more than one command on the line")
				return false
			}
			a.cmd = o.key
			return true
		case "t", "u", "f":
			if a.has("t") || a.has("u") || a.has("f") {
				c.rep.errorf(c.file, num, "more than one service option")
				return false
			}
		case "g", "i", "m", "fullnat":
			if a.has("fwd") {
				c.rep.errorf(c.file, num, "more than one forwarding method")
				return false
			}
			a.opts["fwd"] = o.key
			return true
		}
		if _, dup := a.opts[o.key]; dup {
			c.rep.errorf(c.file, num, "%s given twice", display)
			return false
		}
		a.opts[o.key] = val
		a.order = append(a.order, o.key)
		return true
	}
	for i := 0; i < len(words); i++ {
		wd := words[i]
		switch {
		case strings.HasPrefix(wd, "--"):
			name, val, hasVal := strings.Cut(wd[2:], "=")
			o := lookup(name, 0)
			if o == nil || name == "" {
				c.rep.errorf(c.file, num, "unknown option %s", wd)
				return nil, false
			}
			if o.arg == 1 && !hasVal {
				if i+1 >= len(words) {
					c.rep.errorf(c.file, num, "--%s needs a value", name)
					return nil, false
				}
				i++
				val = words[i]
			}
			if o.arg == 2 && !hasVal && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				i++
				val = words[i]
			}
			if !set(o, "--"+name, val) {
				return nil, false
			}
		case len(wd) > 1 && wd[0] == '-':
			for j := 1; j < len(wd); j++ {
				ch := wd[j]
				o := lookup("", ch)
				if o == nil {
					c.rep.errorf(c.file, num, "unknown option -%c", wd[j])
					return nil, false
				}
				val := ""
				if o.arg != 0 {
					rest := wd[j+1:]
					switch {
					case rest != "":
						val = rest
					case o.arg == 1 && i+1 < len(words):
						i++
						val = words[i]
					case o.arg == 1:
						c.rep.errorf(c.file, num, "-%c needs a value", wd[j])
						return nil, false
					case i+1 < len(words) && !strings.HasPrefix(words[i+1], "-"):
						i++
						val = words[i]
					}
					j = len(wd)
				}
				if !set(o, "-"+string(ch), val) {
					return nil, false
				}
			}
		default:
			a.pos = append(a.pos, wd)
		}
	}
	if a.cmd == "" {
		c.rep.errorf(c.file, num, "no command (-A, -E, -D, -C, -a, -e, -d, --set, --add-laddr)")
		return nil, false
	}
	return a, true
}

func (c *ipvsConv) line(num int, words []string) {
	a, ok := c.parseArgs(num, words)
	if !ok {
		return
	}
	if len(a.pos) > 0 && a.cmd != "set" {
		c.rep.errorf(c.file, num, "unexpected argument %q", a.pos[0])
		return
	}
	if a.cmd == "C" {
		c.order, c.byKey = nil, map[string]*ipvsSvc{}
		return
	}
	if a.cmd == "set" {
		c.set(num, a.pos)
		return
	}
	key, svc, ok := c.serviceOf(num, a)
	if !ok {
		return
	}
	existing := c.byKey[key]
	switch a.cmd {
	case "A":
		if existing != nil {
			c.rep.errorf(c.file, num, "service already added at line %d", existing.line)
			return
		}
		svc.key, svc.line, svc.text, svc.sched = key, num, strings.Join(words, " "), lvs.DefaultScheduler
		if c.serviceOpts(num, a, svc) {
			c.byKey[key] = svc
			c.order = append(c.order, svc)
		}
		return
	}
	if existing == nil {
		c.rep.errorf(c.file, num, "no such service (add it with -A first)")
		return
	}
	switch a.cmd {
	case "E":
		c.serviceOpts(num, a, existing)
	case "D":
		delete(c.byKey, key)
	case "a", "e", "d":
		c.dest(num, a, existing)
	case "P", "Q":
		z, ok := a.opts["z"]
		if !ok {
			c.rep.errorf(c.file, num, "--laddr (-z) is missing")
			return
		}
		addr, err := netip.ParseAddr(z)
		if err != nil {
			c.rep.errorf(c.file, num, "%q is not an address", z)
			return
		}
		i := slices.Index(existing.laddrs, addr)
		if a.cmd == "P" && i < 0 {
			existing.laddrs = append(existing.laddrs, addr)
		} else if a.cmd == "Q" && i >= 0 {
			existing.laddrs = slices.Delete(existing.laddrs, i, i+1)
		}
	}
}

func (c *ipvsConv) set(num int, pos []string) {
	if len(pos) != 3 {
		c.rep.errorf(c.file, num, "--set takes three timeouts: tcp tcpfin udp")
		return
	}
	for i, k := range []string{"tcp", "tcpfin", "udp"} {
		n, err := strconv.Atoi(pos[i])
		if err != nil || n < 0 {
			c.rep.errorf(c.file, num, "--set: %q is not a number of seconds", pos[i])
			return
		}
		if n == 0 { // unchanged
			continue
		}
		j := slices.IndexFunc(c.timeouts, func(kv keyValue) bool { return kv.key == k })
		kv := keyValue{k, strconv.Itoa(n) + "s"}
		if j >= 0 {
			c.timeouts[j] = kv
		} else {
			c.timeouts = append(c.timeouts, kv)
		}
	}
	c.timeoutsLine = num
}

// serviceOf reads -t/-u/-f (and -6) into a key and a new service.
func (c *ipvsConv) serviceOf(num int, a *ipvsArgs) (string, *ipvsSvc, bool) {
	s := &ipvsSvc{}
	switch {
	case a.has("f"):
		v, err := strconv.ParseUint(a.opts["f"], 10, 32)
		if err != nil || v == 0 {
			c.rep.errorf(c.file, num, "-f %s: want a mark 1..4294967295", a.opts["f"])
			return "", nil, false
		}
		s.fwmark, s.v6 = uint32(v), a.has("6")
		s.proto = "tcp"
		return "f" + strconv.FormatUint(v, 10), s, true
	case a.has("t"), a.has("u"):
		s.proto, a.opts["svc"] = "tcp", a.opts["t"]
		if a.has("u") {
			s.proto, a.opts["svc"] = "udp", a.opts["u"]
		}
		addr, port, hasPort, ok := c.hostPort(num, a.opts["svc"])
		if !ok {
			return "", nil, false
		}
		if !hasPort {
			port = 0
		}
		s.vip, s.port = addr, port
		return s.proto + " " + netip.AddrPortFrom(addr, port).String(), s, true
	}
	c.rep.errorf(c.file, num, "no service (-t, -u or -f)")
	return "", nil, false
}

// wellKnownPorts are the service names ipvsadm -S writes without -n for
// common ports; others are looked up in /etc/services.
var wellKnownPorts = map[string]uint16{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
	"ntp": 123, "imap": 143, "imap2": 143, "snmp": 161, "ldap": 389, "https": 443, "submission": 587,
	"ldaps": 636, "imaps": 993, "pop3s": 995, "mysql": 3306, "postgresql": 5432, "http-alt": 8080,
}

// hostPort parses ADDR[:PORT], [IPV6][:PORT] or a bare IPv6 address.
func (c *ipvsConv) hostPort(num int, s string) (netip.Addr, uint16, bool, bool) {
	host, portStr, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			c.rep.errorf(c.file, num, "%q: missing ]", s)
			return netip.Addr{}, 0, false, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				c.rep.errorf(c.file, num, "%q: want [ADDRESS]:PORT", s)
				return netip.Addr{}, 0, false, false
			}
			portStr, hasPort = rest[1:], true
		}
	case strings.Count(s, ":") == 1:
		host, portStr, _ = strings.Cut(s, ":")
		hasPort = true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		c.rep.errorf(c.file, num, "%q is not an IP address (save the rules with ipvsadm -S -n, which writes addresses)", host)
		return netip.Addr{}, 0, false, false
	}
	addr = addr.Unmap()
	var port uint16
	if hasPort {
		if n, err := strconv.ParseUint(portStr, 10, 16); err == nil {
			port = uint16(n)
		} else if p, ok := wellKnownPorts[portStr]; ok {
			port = p
		} else if p, err := net.LookupPort("tcp", portStr); err == nil {
			port = uint16(p)
		} else {
			c.rep.errorf(c.file, num, "%q is not a port (save the rules with ipvsadm -S -n, which writes numbers)", portStr)
			return netip.Addr{}, 0, false, false
		}
	}
	return addr, port, hasPort, true
}

// serviceOpts applies -s, -b, -p, -M of -A or -E.
func (c *ipvsConv) serviceOpts(num int, a *ipvsArgs, s *ipvsSvc) bool {
	for _, k := range []string{"r", "w", "x", "y", "z", "fwd"} {
		if a.has(k) {
			c.rep.errorf(c.file, num, "a real server option (-%s) on a service command", k)
			return false
		}
	}
	if a.cmd == "E" {
		// As ipvsadm: -E sets what -A would, defaults included.
		s.sched, s.flags, s.netmask = lvs.DefaultScheduler, nil, ""
	}
	if v, ok := a.opts["s"]; ok {
		if names := sched.Names(); !slices.Contains(names, v) {
			c.rep.errorf(c.file, num, "-s %s: govs has no such scheduler (it has %s)", v, strings.Join(names, " "))
			return false
		}
		s.sched = v
	}
	if v, ok := a.opts["b"]; ok {
		s.flags, s.flagsLine = strings.Split(v, ","), num
	}
	if v, ok := a.opts["p"]; ok {
		s.persist = int(config.DefaultPersistenceTimeout.Seconds())
		if v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				c.rep.errorf(c.file, num, "-p %s: want a number of seconds", v)
				return false
			}
			s.persist = n
		}
	} else if a.cmd == "E" {
		s.persist = 0
	}
	if v, ok := a.opts["M"]; ok {
		s.netmask, s.maskLine = v, num
	}
	// As govsadm: -E without --proxy-protocol or --toa keeps them.
	if v, ok := a.opts["proxy-protocol"]; ok {
		pp, err := lvs.ParseProxyProtocol(v)
		if err != nil || v == "" {
			c.rep.errorf(c.file, num, "--proxy-protocol %s: want v1, v2 or none", v)
			return false
		}
		s.proxy, s.clientLine = "", num
		if pp != lvs.ProxyNone {
			s.proxy = pp.String()
		}
	}
	if v, ok := a.opts["toa"]; ok {
		on := true
		if v != "" {
			var err error
			if on, err = strconv.ParseBool(v); err != nil {
				c.rep.errorf(c.file, num, "--toa=%s: want --toa, --toa=true or --toa=false", v)
				return false
			}
		}
		s.toa, s.clientLine = on, num
	}
	return true
}

func (c *ipvsConv) dest(num int, a *ipvsArgs, s *ipvsSvc) {
	for _, k := range []string{"s", "b", "p", "M", "z", "proxy-protocol", "toa"} {
		if a.has(k) {
			dash := "-"
			if len(k) > 1 {
				dash = "--"
			}
			c.rep.errorf(c.file, num, "a service option (%s%s) on a real server command", dash, k)
			return
		}
	}
	r, ok := a.opts["r"]
	if !ok {
		c.rep.errorf(c.file, num, "-r is missing")
		return
	}
	addr, port, hasPort, ok := c.hostPort(num, r)
	if !ok {
		return
	}
	if !hasPort {
		port = s.port
	}
	if (addr.Is4() != s.vip.Is4() && s.fwmark == 0) || (s.fwmark != 0 && addr.Is6() != s.v6) {
		c.rep.errorf(c.file, num, "%s: the address family differs from the service's", addr)
		return
	}
	i := slices.IndexFunc(s.dests, func(d *ipvsDest) bool { return d.addr == addr && d.port == port })
	if a.cmd == "d" {
		if i < 0 {
			c.rep.errorf(c.file, num, "no such real server")
			return
		}
		s.dests = slices.Delete(s.dests, i, i+1)
		return
	}
	d := &ipvsDest{line: num, addr: addr, port: port, fwd: lvs.FwdDR.Name(), weight: 1}
	if a.cmd == "a" && i >= 0 {
		c.rep.errorf(c.file, num, "real server already added at line %d", s.dests[i].line)
		return
	}
	if a.cmd == "e" {
		if i < 0 {
			c.rep.errorf(c.file, num, "no such real server")
			return
		}
		d = s.dests[i]
	}
	if f, ok := a.opts["fwd"]; ok {
		d.fwd = ipvsadmForward[f].Name()
	}
	if tt, ok := a.opts["tun-type"]; ok && tt != "ipip" {
		c.rep.errorf(c.file, num, "--tun-type %s: govs tunnels with ipip only", tt)
	}
	if v, ok := a.opts["w"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > config.MaxWeight {
			c.rep.errorf(c.file, num, "-w %s: want a weight 0..%d", v, config.MaxWeight)
			return
		}
		d.weight = int(n)
	}
	for _, t := range []struct {
		k   string
		dst *uint32
	}{{"x", &d.upper}, {"y", &d.lower}} {
		if v, ok := a.opts[t.k]; ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				c.rep.errorf(c.file, num, "-%s %s: want a number of connections", t.k, v)
				return
			}
			*t.dst = uint32(n)
		}
	}
	if s.fwmark == 0 && (d.fwd == "dr" || d.fwd == "tun") && d.port != s.port {
		// ipvsadm itself does this: DR and TUN cannot change the port.
		c.rep.notef(c.file, num, "port %d of a %s real server is the service's, %d, as ipvsadm makes it", d.port, d.fwd, s.port)
		d.port = s.port
	}
	if i < 0 {
		s.dests = append(s.dests, d)
	}
}

// service turns a rule service into the YAML's.
func (c *ipvsConv) service(s *ipvsSvc) *service {
	out := &service{
		comments:  []string{c.file + ":" + strconv.Itoa(s.line) + ": " + s.text},
		scheduler: s.sched,
		proto:     s.proto,
	}
	if s.fwmark != 0 {
		out.fwmark = s.fwmark
		out.name = "fwmark-" + strconv.FormatUint(uint64(s.fwmark), 10)
		if s.v6 {
			out.name += "-ipv6"
		}
		out.matchTODO = fwmarkTODO(s.fwmark, s.v6)
		c.rep.errorf(c.file, s.line, "fwmark %d: IPVS takes the mark from netfilter (iptables -j MARK), which govs's XDP program runs before; write the addresses, ports and protocols that carry mark %d in the service's match (see the comment in the output)", s.fwmark, s.fwmark)
	} else {
		out.vip, out.port = s.vip, s.port
		out.name = serviceName(s.proto, s.vip, s.port)
	}
	for _, f := range s.flags {
		flag := schedFlag(s.sched, f)
		if flag == "" {
			c.rep.notef(c.file, s.flagsLine, "-b %s means nothing to the %s scheduler: left out", f, s.sched)
			continue
		}
		if !slices.Contains(out.flags, flag) {
			out.flags = append(out.flags, flag)
		}
	}
	if s.persist > 0 {
		out.persist = &persistence{timeout: s.persist}
		if s.netmask != "" && !defaultMask(s.netmask) {
			out.persist.netmask = s.netmask
		}
	} else if s.netmask != "" {
		c.rep.notef(c.file, s.maskLine, "-M without -p means nothing: left out")
	}
	fwds := make([]string, len(s.dests))
	fullnat := false
	for i, d := range s.dests {
		fwds[i] = d.fwd
		fullnat = fullnat || d.fwd == "fullnat"
		out.reals = append(out.reals, &realServer{
			comments: []string{c.file + ":" + strconv.Itoa(d.line)},
			addr:     d.addr, port: d.port, weight: d.weight, upper: d.upper, lower: d.lower,
		})
	}
	out.settleForward(fwds)
	if len(s.dests) == 0 {
		out.fwdNote = "nat (govs's default): no real server to take the method from"
	}
	c.clientAddr(s, out, fwds)
	switch {
	case fullnat && len(s.laddrs) == 0:
		c.rep.errorf(c.file, s.line, "full-NAT real servers need local addresses: add --add-laddr rules or local_addresses by hand")
	case fullnat:
		out.laddrs = s.laddrs
	case len(s.laddrs) > 0:
		c.rep.notef(c.file, s.line, "local addresses (--add-laddr) without a full-NAT real server mean nothing: left out")
	}
	return out
}

// clientAddr carries govsadm's --proxy-protocol and --toa over as
// proxy_protocol and toa, where govs can send them: a TCP service whose
// real servers (the rules' only forwarding methods) are all full-NAT.
func (c *ipvsConv) clientAddr(s *ipvsSvc, out *service, fwds []string) {
	if s.proxy == "" && !s.toa {
		return
	}
	switch {
	case s.fwmark != 0 || s.proto != "tcp":
		c.rep.errorf(c.file, s.clientLine, "--proxy-protocol and --toa are only for tcp services (-t): left out")
		return
	case len(fwds) == 0:
		c.rep.errorf(c.file, s.clientLine, "--proxy-protocol and --toa need full-NAT real servers, and this service has none: left out")
		return
	}
	for i, f := range fwds {
		if f != lvs.FwdFullNAT.Name() {
			c.rep.errorf(c.file, s.clientLine, "--proxy-protocol and --toa need full-NAT real servers (--fullnat); %s at line %d uses %s: left out", s.dests[i].addr, s.dests[i].line, f)
			return
		}
	}
	out.proxy, out.toa = s.proxy, s.toa
}

// schedFlag maps an ipvsadm -b flag to govs's name for the scheduler, or
// "" when it means nothing to it: a flag's bit is named after the one
// scheduler that reads it (lvs.SchedulerFlags).
func schedFlag(scheduler, f string) string {
	bit, ok := sched.FlagOf(f)
	if !ok || bit == 0 {
		return ""
	}
	name := bit.Names(scheduler)[0]
	if owner, _ := lvs.SchedulerOfFlag(name); owner != scheduler {
		return ""
	}
	return name
}

func defaultMask(m string) bool {
	m = strings.TrimPrefix(m, "/")
	return m == "255.255.255.255" || m == "32" || m == "128"
}

// fwmarkTODO is the comment left where a fwmark service's match belongs.
func fwmarkTODO(mark uint32, v6 bool) []string {
	addr := "198.51.100.10"
	if v6 {
		addr = "2001:db8::10"
	}
	return []string{
		"TODO: the match of mark " + strconv.FormatUint(uint64(mark), 10) + " is not in the input: it is the",
		"iptables/nftables rule that sets the mark. govs classifies in XDP, before",
		"netfilter, so write what that rule matches (govsd -t refuses the service",
		"until then), for example:",
		"match:",
		"  addresses: [" + addr + "]",
		"  ports: [80, 443]",
		"  protocols: [tcp]",
	}
}

// setInterfaces fills director.interfaces from the option, else from
// found (keepalived's VRRP interfaces), else eth0.
func setInterfaces(doc *document, rep *reporter, file string, given []string, found []string) {
	switch {
	case len(given) > 0:
		doc.interfaces = given
	case len(found) > 0:
		doc.interfaces = found
		doc.interfacesNote = "from the vrrp_instance blocks: check them"
		rep.warnf(file, 0, "no --interfaces: director.interfaces is %s, taken from the vrrp_instance blocks; govsd serves the interfaces that receive the VIPs' traffic (and, for NAT, the real servers' replies)", strings.Join(found, ", "))
	default:
		doc.interfaces = []string{"eth0"}
		doc.interfacesNote = "not given: check it"
		rep.warnf(file, 0, "no --interfaces: director.interfaces is [eth0]; give the interfaces that receive the VIPs' traffic (and, for NAT, the real servers' replies)")
	}
}
