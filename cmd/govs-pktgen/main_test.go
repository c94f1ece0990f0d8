package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/govs/govs/pktgen"
)

func TestParseArgs(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseArgs(strings.Fields("-i c0 --dst 198.18.0.100:53 --dst [2001:db8::1]:80 --proto tcp-syn --flows 1024 "+
		"--size 128 --rate 1.5M --count 10k --duration 3s --cpu 1 -v --src-mac 02:00:00:00:00:01"), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.iface != "c0" || len(o.dsts) != 2 || o.dsts[1] != netip.MustParseAddrPort("[2001:db8::1]:80") ||
		o.proto != pktgen.TCPSyn || o.flows != 1024 || o.size != 128 || o.rate != 1500000 || o.count != 10000 ||
		o.duration.Seconds() != 3 || o.cpu != 1 || !o.verbose || o.srcMAC.String() != "02:00:00:00:00:01" {
		t.Errorf("parsed %+v", o)
	}
	for _, c := range []struct{ args, want string }{
		{"--dst 198.18.0.1:53", "--interface"},
		{"-i c0", "--dst"},
		{"-i c0 --dst 8.8.8.8:53", "outside"},
		{"-i c0 --dst [2001:db9::1]:53", "outside"},
		{"-i c0 --dst 198.18.0.1", "addr:port"},
		{"-i c0 --dst 198.18.0.1:53 --proto icmp", "protocol"},
		{"-i c0 --dst 198.18.0.1:53 --flows 0", "flows"},
		{"-i c0 --dst 198.18.0.1:53 --rate fast", "number"},
		{"-i c0 --dst 198.18.0.1:53 --dst-mac 1:2", "MAC"},
		{"-i c0 --dst 198.18.0.1:53 extra", "unexpected"},
	} {
		if _, err := parseArgs(strings.Fields(c.args), &stderr); err == nil || !strings.Contains(err.Error()+stderr.String(), c.want) {
			t.Errorf("%q: got %v, want an error about %q", c.args, err, c.want)
		}
	}
	if o, err := parseArgs(strings.Fields("-i c0 --dst 8.8.8.8:53 --any-destination"), &stderr); err != nil || o.dsts[0].Port() != 53 {
		t.Errorf("--any-destination: %v", err)
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "100": 100, "1k": 1000, "2.5M": 2500000, "1G": 1e9, "14.88M": 14880000} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "x", "1T"} {
		if _, err := parseCount(bad); err == nil {
			t.Errorf("parseCount(%q) accepted", bad)
		}
	}
}

// TestRefusesInitialNamespace: the test runs in the host's namespace, so
// the command must refuse to send without --i-know, before touching the
// interface.
func TestRefusesInitialNamespace(t *testing.T) {
	initial, err := pktgen.InInitialNetns()
	if err != nil || !initial {
		t.Skipf("not in the initial network namespace (%v)", err)
	}
	o, err := parseArgs(strings.Fields("-i lo --dst 198.18.0.1:9 --count 1"), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), o, &out)
	if err == nil || !strings.Contains(err.Error(), "--i-know") {
		t.Fatalf("run in the initial namespace: %v", err)
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 14880952: "14,880,952"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q", n, got)
		}
	}
}
