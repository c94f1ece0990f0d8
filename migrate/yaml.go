package migrate

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// document is the govs.yaml being built; render writes it with comments.
type document struct {
	header           []string // comment lines at the top
	interfaces       []string
	interfacesNote   string
	acceptForeignMAC []string
	acceptNote       string
	timeouts         []keyValue // tcp, tcpfin, udp
	timeoutsNote     string
	services         []*service
}

type keyValue struct{ key, value string }

type service struct {
	comments []string // above the item
	name     string
	fwmark   uint32
	// matchTODO: the fwmark service's match must be written by hand.
	matchTODO []string
	vip       netip.Addr
	port      uint16
	proto     string
	scheduler string
	schedNote string
	flags     []string
	forward   string
	fwdNote   string
	persist   *persistence
	laddrs    []netip.Addr
	proxy     string // proxy_protocol: v1 or v2; "" for none
	toa       bool
	onFailure string
	failNote  string
	sorry     *sorryServer
	check     *check
	reals     []*realServer
	extra     []string // comment lines at the end of the service
}

type persistence struct {
	timeout int // seconds
	netmask string
	note    string
}

type sorryServer struct {
	addr netip.Addr
	port uint16
	note string
}

type realServer struct {
	comments []string
	addr     netip.Addr
	port     uint16
	weight   int
	forward  string
	upper    uint32
	lower    uint32
	check    *check
}

type check struct {
	origin   string // e.g. "HTTP_GET at keepalived.conf:20"
	typ      string
	interval time.Duration
	intNote  string
	timeout  time.Duration
	toNote   string
	rise     int
	riseNote string
	fall     int
	fallNote string
	port     uint16
	portNote string
	http     *httpCheck
	dnsQuery string
	dnsType  string
	exec     []string
	notes    []string // comment lines at the end of the block
}

type httpCheck struct {
	path   string
	host   string
	status []int
	body   string
	note   string
}

// writer indents and aligns comments.
type writer struct {
	b strings.Builder
}

func (w *writer) comment(indent int, text string) {
	w.b.WriteString(strings.Repeat(" ", indent) + "# " + text + "\n")
}

func (w *writer) line(indent int, text, note string) {
	s := strings.Repeat(" ", indent) + text
	if note != "" {
		if pad := 36 - len(s); pad > 2 {
			s += strings.Repeat(" ", pad)
		} else {
			s += "  "
		}
		s += "# " + note
	}
	w.b.WriteString(s + "\n")
}

func (d *document) render() []byte {
	var w writer
	for _, c := range d.header {
		w.comment(0, c)
	}
	w.line(0, "director:", "")
	w.line(2, "interfaces: "+flowStrings(d.interfaces), d.interfacesNote)
	if len(d.acceptForeignMAC) > 0 {
		w.line(2, "accept_foreign_mac: "+flowStrings(d.acceptForeignMAC), d.acceptNote)
	}
	if len(d.timeouts) > 0 {
		parts := make([]string, len(d.timeouts))
		for i, kv := range d.timeouts {
			parts[i] = kv.key + ": " + kv.value
		}
		w.line(2, "timeouts: {"+strings.Join(parts, ", ")+"}", d.timeoutsNote)
	}
	if len(d.services) == 0 {
		w.line(0, "services: []", "")
		return []byte(w.b.String())
	}
	w.line(0, "services:", "")
	for i, s := range d.services {
		if i > 0 {
			w.b.WriteString("\n")
		}
		s.render(&w)
	}
	return []byte(w.b.String())
}

func (s *service) render(w *writer) {
	for _, c := range s.comments {
		w.comment(2, c)
	}
	w.line(2, "- name: "+s.name, "")
	const in = 4
	if s.fwmark != 0 {
		w.line(in, "fwmark: "+strconv.FormatUint(uint64(s.fwmark), 10), "")
		for _, c := range s.matchTODO {
			w.comment(in, c)
		}
	} else {
		w.line(in, "vip: "+s.vip.String(), "")
		w.line(in, "port: "+strconv.Itoa(int(s.port)), "")
		w.line(in, "protocol: "+s.proto, "")
	}
	if s.scheduler != "" {
		w.line(in, "scheduler: "+s.scheduler, s.schedNote)
	} else if s.schedNote != "" {
		w.comment(in, "scheduler: "+s.schedNote)
	}
	if len(s.flags) > 0 {
		w.line(in, "scheduler_flags: "+flowStrings(s.flags), "")
	}
	if s.forward != "" {
		w.line(in, "forward: "+s.forward, s.fwdNote)
	} else if s.fwdNote != "" {
		w.comment(in, "forward: "+s.fwdNote)
	}
	if p := s.persist; p != nil {
		v := "{timeout: " + strconv.Itoa(p.timeout) + "s"
		if p.netmask != "" {
			v += ", netmask: " + quote(p.netmask)
		}
		w.line(in, "persistence: "+v+"}", p.note)
	}
	if len(s.laddrs) > 0 {
		w.line(in, "local_addresses: "+flowAddrs(s.laddrs), "")
	}
	if s.proxy != "" {
		w.line(in, "proxy_protocol: "+s.proxy, "the real servers must expect the header")
	}
	if s.toa {
		w.line(in, "toa: true", "")
	}
	if s.onFailure != "" {
		w.line(in, "on_failure: "+s.onFailure, s.failNote)
	}
	if ss := s.sorry; ss != nil {
		w.line(in, fmt.Sprintf("sorry_server: {address: %s, port: %d}", ss.addr, ss.port), ss.note)
	}
	if s.check != nil {
		s.check.render(w, in, "health_check:")
	}
	if len(s.reals) == 0 {
		w.line(in, "real_servers: []", "")
	} else {
		w.line(in, "real_servers:", "")
		for _, r := range s.reals {
			r.render(w, in+2)
		}
	}
	for _, c := range s.extra {
		w.comment(in, c)
	}
}

func (r *realServer) render(w *writer, in int) {
	for _, c := range r.comments {
		w.comment(in, c)
	}
	parts := []string{"address: " + r.addr.String(), "port: " + strconv.Itoa(int(r.port)), "weight: " + strconv.Itoa(r.weight)}
	if r.forward != "" {
		parts = append(parts, "forward: "+r.forward)
	}
	if r.upper > 0 {
		parts = append(parts, "upper_threshold: "+strconv.FormatUint(uint64(r.upper), 10))
	}
	if r.lower > 0 {
		parts = append(parts, "lower_threshold: "+strconv.FormatUint(uint64(r.lower), 10))
	}
	if r.check == nil {
		w.line(in, "- {"+strings.Join(parts, ", ")+"}", "")
		return
	}
	w.line(in, "- "+parts[0], "")
	for _, p := range parts[1:] {
		w.line(in+2, p, "")
	}
	r.check.render(w, in+2, "health_check:")
}

func (c *check) render(w *writer, in int, key string) {
	w.line(in, key, c.origin)
	in += 2
	w.line(in, "type: "+c.typ, "")
	w.line(in, "interval: "+duration(c.interval), c.intNote)
	w.line(in, "timeout: "+duration(c.timeout), c.toNote)
	w.line(in, "rise: "+strconv.Itoa(c.rise), c.riseNote)
	w.line(in, "fall: "+strconv.Itoa(c.fall), c.fallNote)
	if c.port != 0 {
		w.line(in, "port: "+strconv.Itoa(int(c.port)), c.portNote)
	}
	if h := c.http; h != nil {
		parts := []string{"path: " + quote(h.path)}
		if h.host != "" {
			parts = append(parts, "host: "+quote(h.host))
		}
		st := make([]string, len(h.status))
		for i, v := range h.status {
			st[i] = strconv.Itoa(v)
		}
		if h.body != "" {
			parts = append(parts, "expect_body: "+quote(h.body))
		}
		if len(st) <= 10 {
			parts = append(parts, "expect_status: ["+strings.Join(st, ", ")+"]")
			w.line(in, "http: {"+strings.Join(parts, ", ")+"}", h.note)
		} else {
			// A long list (keepalived's default, any 2xx) in rows of ten.
			w.line(in, "http:", h.note)
			for _, p := range parts {
				w.line(in+2, p, "")
			}
			for i := 0; i < len(st); i += 10 {
				row := strings.Join(st[i:min(i+10, len(st))], ", ")
				switch {
				case i == 0 && len(st) <= 10:
					w.line(in+2, "expect_status: ["+row+"]", "")
				case i == 0:
					w.line(in+2, "expect_status: ["+row+",", "")
				case i+10 >= len(st):
					w.line(in+4, row+"]", "")
				default:
					w.line(in+4, row+",", "")
				}
			}
		}
	}
	if c.dnsQuery != "" {
		w.line(in, "dns: {query: "+quote(c.dnsQuery)+", type: "+c.dnsType+"}", "")
	}
	if c.exec != nil {
		w.line(in, "exec: {command: "+flowStrings(c.exec)+"}", "")
	}
	for _, n := range c.notes {
		w.comment(in, n)
	}
}

// key renders the check at a fixed indent: equal keys, equal checks.
func (c *check) key() string {
	var w writer
	cc := *c
	cc.origin = ""
	cc.render(&w, 0, "")
	return w.b.String()
}

// duration writes d as the config accepts it: whole seconds as "60s",
// else milliseconds.
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

var plainString = regexp.MustCompile(`^[A-Za-z0-9/_.][A-Za-z0-9/_.@%+=,-]*$`)

// quote writes s as a YAML scalar that reads back as the string s.
func quote(s string) string {
	if plainString.MatchString(s) && !looksSpecial(s) {
		return s
	}
	return strconv.Quote(s) // Go's escapes are a subset of YAML's double-quoted ones
}

// looksSpecial: plain scalars YAML would read as something else than a
// string (numbers, booleans, null).
func looksSpecial(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	return strings.ContainsAny(s, ",")
}

func flowStrings(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func flowAddrs(list []netip.Addr) string {
	q := make([]string, len(list))
	for i, a := range list {
		q[i] = a.String()
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// serviceName derives a service's name from its protocol, VIP and port:
// tcp-198.18.0.100-80, udp-2001_db8__1-53, fwmark-1.
func serviceName(proto string, vip netip.Addr, port uint16) string {
	return proto + "-" + strings.ReplaceAll(vip.String(), ":", "_") + "-" + strconv.Itoa(int(port))
}

// forwardForAll sets the service's forward from its real servers: the
// first server's method, with the others overriding it where they differ.
func (s *service) settleForward(rsForward []string) {
	if len(rsForward) == 0 {
		return
	}
	if s.forward == "" {
		s.forward = rsForward[0]
	}
	for i, r := range s.reals {
		if rsForward[i] != s.forward {
			r.forward = rsForward[i]
		} else {
			r.forward = ""
		}
	}
}

// hoistChecks moves a check all real servers share onto the service.
func (s *service) hoistChecks() {
	if len(s.reals) == 0 || s.check != nil {
		return
	}
	var k string
	for i, r := range s.reals {
		if r.check == nil {
			return
		}
		if i == 0 {
			k = r.check.key()
		} else if r.check.key() != k {
			return
		}
	}
	s.check = s.reals[0].check
	if len(s.reals) > 1 {
		s.check.origin = strings.Replace(s.check.origin, " at ", " of every real server, first at ", 1)
	}
	for _, r := range s.reals {
		r.check = nil
	}
}
