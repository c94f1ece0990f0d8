package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/govs/govs/config"
)

// examplesDir holds the example configurations, one per use.
const examplesDir = "../../examples"

// exampleFiles are the examples the README of examples/ promises; a file
// missing here, or one there that this list lacks, fails the test so that
// the two stay in step.
var exampleFiles = []string{
	"bgp-anycast-mh.yaml",
	"dr-check-via-vip.yaml",
	"fullnat.yaml",
	"ha-sync-keepalived.yaml",
	"nat-web.yaml",
	"tun-decap.yaml",
}

// TestExamples checks every examples/*.yaml as `govsd -t` does:
// config.Load (the whole file: syntax, unknown or repeated keys, values,
// consistency), then config.CheckHost (what a start needs of the machine).
//
// The examples name the interfaces and files of a real director (eth0,
// eth1, /etc/govs/sync.key) that this machine need not have, so CheckHost
// as such would fail on them. Rewriting the text to `lo` and running
// `govsd -t` on the copy does not work: a two-armed example's
// `interfaces: [eth0, eth1]` would become [lo, lo], which Load rightly
// refuses (interfaces must be unique), and the key file would still be
// missing. So the test loads the example file itself, unchanged (an error
// names its own line), and runs CheckHost on the loaded configuration with
// only the host facts pointed at this machine: every interface (served and
// sync) at lo, the sync key file at a fresh 0600 key. Everything else
// CheckHost looks at (exec checks' commands, control_group) is checked as
// written. Warnings about the file's owner and mode do not fail `-t`, and
// are ignored here (a checkout is not owned by root).
func TestExamples(t *testing.T) {
	found, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range found {
		have[filepath.Base(p)] = true
	}
	for _, name := range exampleFiles {
		if !have[name] {
			t.Errorf("examples/%s is missing", name)
		}
		delete(have, name)
	}
	for name := range have {
		t.Errorf("examples/%s is not in exampleFiles: add it there and to examples/README.md", name)
	}
	readme, err := os.ReadFile(filepath.Join(examplesDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}

	for _, name := range exampleFiles {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			path := filepath.Join(examplesDir, name)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(text), "# "+name+": ") {
				t.Errorf("%s does not start with %q: a comment saying what it is", name, "# "+name+": ")
			}
			if !strings.Contains(string(readme), name) {
				t.Errorf("examples/README.md does not mention %s", name)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("govsd -t would refuse %s:\n%v", name, err)
			}
			d := &cfg.Director
			for i := range d.Interfaces {
				d.Interfaces[i] = "lo"
			}
			if d.Sync != nil {
				d.Sync.Interface = "lo"
				d.Sync.KeyFile = key
			}
			if _, err := config.CheckHost(cfg, path); err != nil {
				t.Errorf("govsd -t's host checks (interfaces and sync key pointed at this machine) refuse %s:\n%v", name, err)
			}
			checkDocAddresses(t, name, cfg)
		})
	}
}

// TestExamplesDocAddresses: the examples and their companions use the
// documentation ranges only (198.18.0.0/15, 2001:db8::/32), besides
// netmasks and multicast groups. IPv4 is checked in the text, comments
// included; IPv6 through the loaded addresses (checkDocAddresses).
func TestExamplesDocAddresses(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	ipv4 := regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ipv4.FindAllString(string(text), -1) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue // not an address: a version, say
			}
			if !docAddr(a) && !a.IsMulticast() && !isNetmask(a) {
				t.Errorf("%s: %s is outside 198.18.0.0/15", filepath.Base(f), s)
			}
		}
	}
}

var docPrefixes = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8::/32")}

func docAddr(a netip.Addr) bool {
	for _, p := range docPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func isNetmask(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return (^v)&(^v+1) == 0 // ones, then zeros only
}

// checkDocAddresses checks every address the loaded configuration holds.
func checkDocAddresses(t *testing.T, name string, cfg *config.Config) {
	t.Helper()
	check := func(what string, a netip.Addr) {
		if a.IsValid() && !docAddr(a) && !a.IsMulticast() {
			t.Errorf("%s: %s %s is outside the documentation ranges", name, what, a)
		}
	}
	if s := cfg.Director.Sync; s != nil {
		check("sync group", s.Group)
		for _, p := range s.Peers {
			check("sync peer", p)
		}
	}
	if b := cfg.Director.BGP; b != nil {
		check("bgp router_id", b.RouterID)
		check("bgp next_hop", b.NextHop)
		for _, p := range b.Peers {
			check("bgp peer", p.Address)
		}
	}
	for _, s := range cfg.Services {
		check("service "+s.Name+" vip", s.VIP)
		for _, a := range s.LocalAddresses {
			check("service "+s.Name+" local address", a)
		}
		if s.SorryServer != nil {
			check("service "+s.Name+" sorry server", s.SorryServer.Address)
		}
		for _, rs := range s.RealServers {
			check("service "+s.Name+" real server", rs.Address)
		}
	}
}
