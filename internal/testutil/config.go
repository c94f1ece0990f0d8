package testutil

import (
	"fmt"
	"strings"
)

// Config builds a govsd configuration for a lab of internal/topo, so that a
// test states only what differs from the usual one. The director section
// starts from the lab's defaults: both director interfaces (d0, d1), the
// control socket the harness fills in (SocketPlaceholder) and no metrics
// listener.
type Config struct {
	// Director holds further settings of the director section, one
	// "key: value" line of YAML each ("fast_path: false", "sync: {...}").
	// A line whose key is a default's replaces that default.
	Director []string
	Services []Service
	// Extra is further top-level YAML (marks:, or services written out
	// by hand), appended as it is.
	Extra string
}

// defaultDirector is the director section of every lab configuration
// unless a test replaces a line.
var defaultDirector = []string{
	"interfaces: [d0, d1]",
	"control_socket: " + SocketPlaceholder,
	`metrics_listen: ""`,
}

// Service is one virtual service of a Config.
type Service struct {
	Name string
	VIP  string
	Port int
	// Protocol is tcp when empty.
	Protocol string
	// Scheduler is rr when empty: the tests want a spread they can
	// predict, not govsd's default (wlc).
	Scheduler string
	// Forward is left out when empty (govsd's default, nat).
	Forward        string
	LocalAddresses []string
	// Settings are further lines of the service, "key: value" each
	// ("health_check: {type: none}", "persistence: {timeout: 60s}").
	Settings []string
	Reals    []Real
}

// Real is one real server of a Service; a zero Port or Weight is left out
// (the VIP's port, weight 1).
type Real struct {
	Address string
	Port    int
	Weight  int
}

// Reals returns real servers at addrs, all on port.
func Reals(port int, addrs ...string) []Real {
	rs := make([]Real, len(addrs))
	for i, a := range addrs {
		rs[i] = Real{Address: a, Port: port}
	}
	return rs
}

// LabReals4 returns the IPv4 addresses of a lab's first n real servers
// (198.18.1.1 and on), LabReals6 their IPv6 addresses (2001:db8:1::1 and
// on).
func LabReals4(n int) []string { return labAddrs("198.18.1.%d", n) }

// LabReals6 is LabReals4 for IPv6.
func LabReals6(n int) []string { return labAddrs("2001:db8:1::%x", n) }

func labAddrs(format string, n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf(format, i+1)
	}
	return a
}

// WithDirector returns a copy of c with further director settings (see
// Config.Director).
func (c Config) WithDirector(lines ...string) Config {
	c.Director = append(append([]string(nil), c.Director...), lines...)
	return c
}

// YAML renders the configuration.
func (c Config) YAML() string {
	var b strings.Builder
	b.WriteString("director:\n")
	for _, line := range directorLines(c.Director) {
		b.WriteString("  " + line + "\n")
	}
	if len(c.Services) > 0 {
		b.WriteString("services:\n")
		for _, s := range c.Services {
			s.write(&b)
		}
	}
	b.WriteString(c.Extra)
	return b.String()
}

// directorLines merges the defaults with a test's settings: a setting
// replaces the default with its key, the others follow the defaults.
func directorLines(extra []string) []string {
	lines := append([]string(nil), defaultDirector...)
	for _, e := range extra {
		replaced := false
		for i, d := range lines {
			if yamlKey(d) == yamlKey(e) {
				lines[i], replaced = e, true
				break
			}
		}
		if !replaced {
			lines = append(lines, e)
		}
	}
	return lines
}

func yamlKey(line string) string {
	k, _, _ := strings.Cut(line, ":")
	return strings.TrimSpace(k)
}

func (s Service) write(b *strings.Builder) {
	fmt.Fprintf(b, "  - name: %s\n", s.Name)
	if s.VIP != "" {
		fmt.Fprintf(b, "    vip: %q\n", s.VIP)
	}
	if s.Port != 0 {
		fmt.Fprintf(b, "    port: %d\n", s.Port)
	}
	fmt.Fprintf(b, "    protocol: %s\n    scheduler: %s\n", or(s.Protocol, "tcp"), or(s.Scheduler, "rr"))
	if s.Forward != "" {
		fmt.Fprintf(b, "    forward: %s\n", s.Forward)
	}
	if len(s.LocalAddresses) > 0 {
		fmt.Fprintf(b, "    local_addresses: [%s]\n", quoteList(s.LocalAddresses))
	}
	for _, line := range s.Settings {
		b.WriteString("    " + line + "\n")
	}
	b.WriteString("    real_servers:\n")
	for _, r := range s.Reals {
		fmt.Fprintf(b, "      - {address: %q", r.Address)
		if r.Port != 0 {
			fmt.Fprintf(b, ", port: %d", r.Port)
		}
		if r.Weight != 0 {
			fmt.Fprintf(b, ", weight: %d", r.Weight)
		}
		b.WriteString("}\n")
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
