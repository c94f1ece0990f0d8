package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/sched"
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
  interfaces: [eth0]
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
  interfaces: [eth0]
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
