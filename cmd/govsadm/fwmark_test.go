package main

import (
	"strings"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/lvs"
)

// fwmarkTable has a plain service and two firewall-mark services, IPv4 and
// IPv6, out of order: ipvsadm lists plain services first, then marks by
// number ("FWM  N", "FWM  N IPv6"), real servers of port 0 as ADDR:0.
func fwmarkTable() []control.Service {
	return []control.Service{
		{Name: "fwm6", FwMark: 200, IPv6: true, Scheduler: "wlc", Persistent: 120, Netmask: "64",
			Dests: []control.Dest{{Address: "2001:db8::20", Port: 0, Forward: "Route", Weight: 1, ActiveConns: 3, Up: true}}},
		{Name: "web2", FwMark: 1, Scheduler: "rr", Persistent: 300, Netmask: "255.255.255.255",
			Stats: control.Stats{Conns: 12, InPkts: 120, OutPkts: 110, InBytes: 9000, OutBytes: 80000},
			Dests: []control.Dest{
				{Address: "198.18.1.2", Port: 0, Forward: "Masq", Weight: 1, ActiveConns: 2, InactiveConns: 1, Up: true},
				{Address: "198.18.1.1", Port: 0, Forward: "Masq", Weight: 1, ActiveConns: 4, Up: true},
			}},
		{Name: "web", Protocol: "TCP", VIP: "198.18.0.100", Port: 80, Scheduler: "wlc",
			Dests: []control.Dest{{Address: "198.18.1.1", Port: 8080, Forward: "Masq", Weight: 1, Up: true}}},
	}
}

func TestGoldenFwmark(t *testing.T) {
	b := newFakeBackend()
	b.services = fwmarkTable()
	socket := serve(t, b)
	for _, tc := range []struct{ name, args string }{
		{"fwmark_list", "-Ln"},
		{"fwmark_stats", "-Ln --stats"},
		{"fwmark_service", "-Ln -f 1"},
		{"fwmark_save", "-S -n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, mustRun(t, socket, strings.Fields(tc.args)...))
		})
	}
}

// -S, then -C and -R, gives back the same table, marks included.
func TestFwmarkSaveRestore(t *testing.T) {
	b := newFakeBackend()
	b.services = fwmarkTable()
	socket := serve(t, b)
	saved := mustRun(t, socket, "-S", "-n")
	mustRun(t, socket, "-C")
	if r := runAdm(t, socket, saved, "-R"); r.code != 0 {
		t.Fatalf("-R: exit %d: %s", r.code, r.stderr)
	}
	if got := mustRun(t, socket, "-S", "-n"); got != saved {
		t.Errorf("after -R, -S gives\n%s\nwant\n%s", got, saved)
	}
	// -d -f and -D -f travel as a query (fwmark=N).
	mustRun(t, socket, "-d", "-f", "1", "-r", "198.18.1.2:0")
	mustRun(t, socket, "-D", "-f", "200")
	want := "-A -t 198.18.0.100:80 -s wlc\n-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 1\n" +
		"-A -f 1 -s rr -p 300\n-a -f 1 -r 198.18.1.1:0 -m -w 1\n"
	if got := mustRun(t, socket, "-S", "-n"); got != want {
		t.Errorf("after -d -f 1 and -D -f 200, -S gives\n%s\nwant\n%s", got, want)
	}
	if r := runAdm(t, socket, "", "-D", "-f", "200"); r.code == 0 {
		t.Errorf("-D -f 200 twice succeeded")
	}
}

func TestParseFwmark(t *testing.T) {
	mark1 := control.ServiceKey{FwMark: 1}
	for _, tc := range []struct {
		args string
		want func(c *command) bool
	}{
		{"-A -f 1 -s rr -p 300", func(c *command) bool {
			return c.kind == cmdAddService && c.service == mark1 && c.scheduler == "rr" && c.persistent == 300
		}},
		{"-A -f 1 -s rr", func(c *command) bool { return c.kind == cmdAddService && c.persistent == 0 }},
		{"-A --fwmark-service=7 -6 -p 60 -M 64", func(c *command) bool {
			return c.service == control.ServiceKey{FwMark: 7} && c.netmask == "64" && c.serviceIP.Is6()
		}},
		{"-E -f 1 -s wlc", func(c *command) bool { return c.kind == cmdEditService && c.service == mark1 }},
		{"-D -f 1", func(c *command) bool { return c.kind == cmdDelService && c.service == mark1 }},
		{"-a -f 1 -r 198.18.1.1 -m", func(c *command) bool {
			return c.kind == cmdAddDest && c.service == mark1 && c.destIP.String() == "198.18.1.1" && c.destPort == 0 && c.forwards(lvs.FwdNAT)
		}},
		{"-a -f 1 -r 198.18.1.1:8080 -m -w 3", func(c *command) bool { return c.destPort == 8080 && c.weight == 3 }},
		{"-e -f 1 -r 198.18.1.1 -g -w 0", func(c *command) bool { return c.kind == cmdEditDest && c.destPort == 0 && c.forwards(lvs.FwdDR) }},
		{"-d -f 1 -r 198.18.1.1", func(c *command) bool { return c.kind == cmdDelDest && c.service == mark1 }},
		{"-L -n -f 1", func(c *command) bool { return c.kind == cmdList && c.service == mark1 }},
		{"-Z -f 1", func(c *command) bool { return c.kind == cmdZero && c.service == mark1 }},
	} {
		c, err := testParser().parse(strings.Fields(tc.args))
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if !tc.want(c) {
			t.Errorf("%s: parsed %+v", tc.args, c)
		}
	}
	for _, args := range []string{"-A -f 0", "-A -f x", "-A -f 1 -t 198.18.0.1:80", "-A -t 198.18.0.1:80 -6", "-a -f 1 -r 2001:db8::1 -m"} {
		if _, err := testParser().parse(strings.Fields(args)); err == nil {
			t.Errorf("%s: accepted", args)
		}
	}
}
