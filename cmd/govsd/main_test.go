package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/sched"
	"github.com/govs/govs/version"
)

func check(t *testing.T, yaml string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "govs.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"-t", "-c", path}, &out, &errOut)
	return code, out.String() + errOut.String()
}

const validTemplate = `director:
  interfaces: [lo]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    protocol: tcp
    scheduler: SCHED
    real_servers:
      - {address: 198.18.1.1, port: 8080}
`

func TestCheckAcceptsEveryScheduler(t *testing.T) {
	names := sched.Names()
	if len(names) != 14 {
		t.Fatalf("%d schedulers registered, want IPVS's 14: %v", len(names), names)
	}
	for _, name := range names {
		if code, out := check(t, strings.Replace(validTemplate, "SCHED", name, 1)); code != 0 {
			t.Errorf("govsd -t refused scheduler %s: %s", name, out)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	code, out := check(t, strings.Replace(validTemplate, "SCHED", "fastest", 1))
	if code == 0 {
		t.Fatal("govsd -t accepted an unknown scheduler")
	}
	for _, want := range []string{"govs.yaml:8: services[0].scheduler", "wlc", "mh", "twos"} {
		if !strings.Contains(out, want) {
			t.Errorf("error %q lacks %q (file:line, the key, the valid names)", out, want)
		}
	}
	bad := `director:
  interfaces: [lo]
  xdp_mode: turbo
services:
  - name: web
    vip: 198.18.0.300
    port: 80
    forward: dr
    real_servers:
      - {address: 198.18.1.1, port: 8080}
  - name: web
    vip: 198.18.0.100
    port: 80
    forwrd: nat
`
	code, out = check(t, bad)
	if code == 0 {
		t.Fatal("govsd -t accepted a broken file")
	}
	for _, want := range []string{":3: director.xdp_mode", ":6: services[0].vip", "port mapping", "forwrd"} {
		if !strings.Contains(out, want) {
			t.Errorf("errors lack %q:\n%s", want, out)
		}
	}
}

func TestCheckOK(t *testing.T) {
	code, out := check(t, strings.Replace(validTemplate, "SCHED", "rr", 1))
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Errorf("govsd -t on a valid file: exit %d, %q", code, out)
	}
}

// TestCheckHost: -t checks what a start checks of the machine: the sync key
// file (a start refuses mode 0644), the interfaces, the exec checks'
// commands; and it warns about a configuration file others may write.
func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "sync.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := func(ifaces, syncKey, command string) string {
		return `director:
  interfaces: [` + ifaces + `]
  sync: {role: master, interface: lo, group: 239.255.81.49, key_file: ` + syncKey + `}
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    health_check: {type: exec, exec: {command: [` + command + `, "{address}"]}}
    real_servers:
      - {address: 198.18.1.1, port: 8080}
`
	}
	code, out := check(t, cfg("lo", key, "/bin/true"))
	if code == 0 || !strings.Contains(out, "director.sync.key_file: sync key "+key+": mode -rw-r--r-- is accessible to others; chmod o-rwx") {
		t.Errorf("-t with a 0644 key file: exit %d\n%s", code, out)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := check(t, cfg("lo", key, "/bin/true")); code != 0 {
		t.Errorf("-t with a 0600 key file: exit %d\n%s", code, out)
	}
	code, out = check(t, cfg("lo, govs-no-such0", key, script))
	for _, want := range []string{
		`director.interfaces[1]: interface "govs-no-such0" does not exist`,
		`services[0].real_servers[0].health_check.exec.command: "` + script + `" is not executable (mode -rw-r--r--)`,
	} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("-t: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	code, out = check(t, cfg("lo", key, filepath.Join(dir, "missing.sh")))
	if code == 0 || !strings.Contains(out, "missing.sh\": no such file or directory") {
		t.Errorf("-t with a missing exec script: exit %d\n%s", code, out)
	}
	code, out = check(t, cfg("lo", key, "govs-no-such-command"))
	if code == 0 || !strings.Contains(out, `"govs-no-such-command": not found in $PATH`) {
		t.Errorf("-t with an unknown command: exit %d\n%s", code, out)
	}

	// Warnings about the file itself; they do not fail the check.
	path := filepath.Join(t.TempDir(), "govs.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(validTemplate, "SCHED", "rr", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-t", "-c", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("warnings failed the check: exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{"warning: " + path + ": mode -rw-rw-rw-: anyone may write the configuration", "not root: that user can change what govsd runs"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-t on a world-writable, non-root file: %q lacks %q", stderr.String(), want)
		}
	}
	if !strings.Contains(stdout.String(), "configuration OK") {
		t.Errorf("stdout %q", stdout.String())
	}
}

// TestVersion: govsd -version prints the version stamped at build time.
func TestVersion(t *testing.T) {
	saved := version.Version
	defer func() { version.Version = saved }()
	version.Version = "v9.8.7"
	var out, errOut bytes.Buffer
	if code := run([]string{"-version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "govsd v9.8.7 (go ") {
		t.Errorf("govsd -version: exit %d, %q %q", code, out.String(), errOut.String())
	}
}

// TestCheckClientAddr: -t takes proxy_protocol and toa on a full-NAT TCP
// service and refuses them elsewhere, by file, line and key.
func TestCheckClientAddr(t *testing.T) {
	const fnat = `director:
  interfaces: [lo]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    forward: FWD
    local_addresses: [198.18.2.1]
    proxy_protocol: v2
    toa: true
    real_servers:
      - {address: 198.18.1.1, port: 8080}
`
	if code, out := check(t, strings.Replace(fnat, "FWD", "fullnat", 1)); code != 0 || !strings.Contains(out, "configuration OK") {
		t.Errorf("govsd -t on a full-NAT service with proxy_protocol and toa: exit %d, %q", code, out)
	}
	code, out := check(t, strings.Replace(fnat, "FWD", "nat", 1))
	if code == 0 {
		t.Fatal("govsd -t accepted proxy_protocol on a NAT service")
	}
	for _, want := range []string{
		"govs.yaml:9: services[0].proxy_protocol: v2 needs forward: fullnat (the service uses nat",
		"govs.yaml:10: services[0].toa: true needs forward: fullnat (the service uses nat",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("errors lack %q:\n%s", want, out)
		}
	}
}
