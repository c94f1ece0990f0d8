package config

import (
	"strings"
	"testing"
)

func TestSteerLimit(t *testing.T) {
	d := func(line string) string { return "director:\n  interfaces: [eth0]\n  " + line + "\n" }
	cfg, err := Parse([]byte("director: {interfaces: [eth0]}\n"), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Director.SteerLimit; got != (SteerLimit{Auto: true}) || got.String() != "auto" {
		t.Errorf("default %+v, want auto", got)
	}
	for in, want := range map[string]SteerLimit{
		"steer_limit: auto":       {Auto: true},
		"steer_limit: 0":          {},
		"steer_limit: 250000":     {PPS: 250000},
		"steer_limit: 1073741824": {PPS: MaxSteerLimit},
	} {
		cfg, err := Parse([]byte(d(in)), "govs.yaml")
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if cfg.Director.SteerLimit != want {
			t.Errorf("%s: %+v, want %+v", in, cfg.Director.SteerLimit, want)
		}
	}
	for in, want := range map[string]string{
		"steer_limit: -1":         "govs.yaml:3: director.steer_limit: -1 is out of range 0..1073741824",
		"steer_limit: 1073741825": "govs.yaml:3: director.steer_limit: 1073741825 is out of range 0..1073741824",
		"steer_limit: on":         `govs.yaml:3: director.steer_limit: want auto or packets per second per queue (0..1073741824, 0: off), got`,
		"steer_limit: [1]":        "govs.yaml:3: director.steer_limit: want auto or packets per second per queue",
		"steer_limit: 1.5":        "govs.yaml:3: director.steer_limit: want auto or packets per second per queue",
		"steer_limt: 10":          `govs.yaml:3: director.steer_limt: unknown key (did you mean "steer_limit"?)`,
	} {
		got := mustFail(t, d(in)).Error()
		if !strings.Contains(got, want) {
			t.Errorf("%s: errors\n%s\nlack %q", in, got, want)
		}
	}
}
