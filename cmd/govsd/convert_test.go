package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/govs/govs/config"
)

func TestConvert(t *testing.T) {
	const td = "../../migrate/testdata/"
	cases := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderrHas  []string
		validYAML  bool
		stderrNone string
	}{
		{name: "no kind", args: []string{"convert"}, code: 2, stderrHas: []string{"usage: govsd convert"}},
		{name: "bad kind", args: []string{"convert", "nginx", "x"}, code: 2, stderrHas: []string{"usage: govsd convert"}},
		{name: "no file", args: []string{"convert", "ipvsadm"}, code: 2, stderrHas: []string{"usage: govsd convert"}},
		{name: "two files", args: []string{"convert", "ipvsadm", "a", "b"}, code: 2},
		{name: "unreadable", args: []string{"convert", "keepalived", td + "missing.conf"}, code: 2, stderrHas: []string{"missing.conf"}},
		{name: "keepalived", args: []string{"convert", "keepalived", td + "keepalived_full.conf", "--interfaces", "eth0,eth1"}, code: 0,
			stdoutHas: "interfaces: [eth0, eth1]\n", validYAML: true,
			stderrHas:  []string{"keepalived_full.conf:10: note: vrrp_instance VI_1: keepalived keeps doing VRRP"},
			stderrNone: "warning: no --interfaces"},
		{name: "ipvsadm", args: []string{"convert", "ipvsadm", "--interfaces=eth0", td + "ipvsadm_save.rules"}, code: 0,
			stdoutHas: "name: tcp-198.18.0.100-80", validYAML: true},
		{name: "ipvsadm default interface", args: []string{"convert", "ipvsadm", td + "ipvsadm_commands.rules"}, code: 0,
			stdoutHas: "interfaces: [eth0]", validYAML: true, stderrHas: []string{"warning: no --interfaces"}},
		{name: "errors", args: []string{"convert", "ipvsadm", td + "ipvsadm_errors.rules"}, code: 1,
			stdoutHas: "fwmark: 2",
			stderrHas: []string{"ipvsadm_errors.rules:1: fwmark 2", "ipvsadm_errors.rules:5: -o:"}},
		{name: "keepalived errors", args: []string{"convert", "keepalived", "--interfaces", "eth0", td + "keepalived_errors.conf"}, code: 1,
			stderrHas: []string{"keepalived_errors.conf:14: notify_down", "keepalived_errors.conf:4: note: vrrp_script"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdoutHas, stdout.String())
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if tc.stderrNone != "" && strings.Contains(stderr.String(), tc.stderrNone) {
				t.Errorf("stderr has %q:\n%s", tc.stderrNone, stderr.String())
			}
			if tc.validYAML {
				if _, err := config.Parse(stdout.Bytes(), "converted"); err != nil {
					t.Errorf("the output does not validate: %v", err)
				}
			}
		})
	}
}
