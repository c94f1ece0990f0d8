package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/control"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenTable is a fixed table covering every column of every listing:
// IPv4 and IPv6, TCP and UDP, each forwarding method, persistence with and
// without a mask, scheduler flags, thresholds, full-NAT local addresses
// with a PROXY protocol header and TOA (listed only there), a port-0
// service, and counters large enough for K, M, G and T. The services
// and servers are out of order, as listings sort them.
func goldenTable() []control.Service {
	return []control.Service{
		{
			Name: "dns6", Protocol: "UDP", VIP: "2001:db8::100", Port: 53, Scheduler: "rr",
			Stats: control.Stats{Conns: 5000, InPkts: 10000, OutPkts: 10000, InBytes: 640000, OutBytes: 1280000},
			Rates: control.Rates{CPS: 50, InPPS: 100, OutPPS: 100, InBPS: 6400, OutBPS: 12800},
			Dests: []control.Dest{
				{Address: "2001:db8::2", Port: 53, Forward: "Masq", Weight: 1, InactiveConns: 7, Up: true,
					Stats: control.Stats{Conns: 2000, InPkts: 4000, OutPkts: 4000, InBytes: 256000, OutBytes: 512000},
					Rates: control.Rates{CPS: 20, InPPS: 40, OutPPS: 40, InBPS: 2560, OutBPS: 5120}},
				{Address: "2001:db8::1", Port: 53, Forward: "Masq", Weight: 2, InactiveConns: 11, Up: true,
					Stats: control.Stats{Conns: 3000, InPkts: 6000, OutPkts: 6000, InBytes: 384000, OutBytes: 768000},
					Rates: control.Rates{CPS: 30, InPPS: 60, OutPPS: 60, InBPS: 3840, OutBPS: 7680}},
			},
		},
		{
			Name: "web", Protocol: "TCP", VIP: "198.18.0.100", Port: 80, Scheduler: "wlc",
			Stats: control.Stats{Conns: 123_456_789, InPkts: 98_765, OutPkts: 1_234_567_890_123, InBytes: 5_000_000_000_000_000, OutBytes: 99_999_999},
			Rates: control.Rates{CPS: 150_000_000, InPPS: 2_500_000_000, OutPPS: 12, InBPS: 7_000_000_000, OutBPS: 123_456_789_012},
			Dests: []control.Dest{
				{Address: "198.18.1.2", Port: 8080, Forward: "Masq", Weight: 1, ActiveConns: 12, InactiveConns: 3, Up: true,
					Stats: control.Stats{Conns: 23_456_789, InPkts: 48_765, OutPkts: 234_567_890_123, InBytes: 1_000_000_000_000_000, OutBytes: 49_999_999},
					Rates: control.Rates{CPS: 150_000_000, InPPS: 1_500_000_000, OutPPS: 6, InBPS: 3_000_000_000, OutBPS: 23_456_789_012}},
				{Address: "198.18.1.1", Port: 8080, Forward: "Masq", Weight: 3, ActiveConns: 1234, InactiveConns: 56789, Up: true,
					Stats: control.Stats{Conns: 100_000_000, InPkts: 50_000, OutPkts: 1_000_000_000_000, InBytes: 4_000_000_000_000_000, OutBytes: 50_000_000},
					Rates: control.Rates{CPS: 7, InPPS: 1_000_000_000, OutPPS: 6, InBPS: 4_000_000_000, OutBPS: 100_000_000_000}},
			},
		},
		{
			Name: "tls", Protocol: "TCP", VIP: "198.18.0.101", Port: 443, Scheduler: "sh",
			Flags: []string{"sh-fallback", "sh-port"}, Persistent: 60, Netmask: "255.255.255.0",
			Dests: []control.Dest{
				{Address: "198.18.1.4", Port: 443, Forward: "Tunnel", Weight: 0, UpperThresh: 100, LowerThresh: 50, ActiveConns: 2, PersistConns: 1, Up: false},
				{Address: "198.18.1.3", Port: 443, Forward: "Route", Weight: 5, ActiveConns: 40, InactiveConns: 2, PersistConns: 17, Up: true},
			},
		},
		{
			Name: "fnat", Protocol: "TCP", VIP: "198.18.0.102", Port: 8080, Scheduler: "rr",
			LocalAddresses: []string{"198.18.1.250", "198.18.1.251"}, ProxyProtocol: "v2", TOA: true,
			Dests: []control.Dest{
				{Address: "198.18.2.1", Port: 80, Forward: "FullNat", Weight: 1, ActiveConns: 9, Up: true},
			},
		},
		{
			Name: "dns", Protocol: "UDP", VIP: "198.18.0.100", Port: 53, Scheduler: "wrr",
			Persistent: 300, Netmask: "255.255.255.255",
		},
		{
			Name: "tls6", Protocol: "TCP", VIP: "2001:db8::200", Port: 443, Scheduler: "mh",
			Flags: []string{"mh-port"}, Persistent: 120, Netmask: "64",
			Dests: []control.Dest{
				{Address: "2001:db8::20", Port: 443, Forward: "Route", Weight: 1, Up: true},
			},
		},
		{
			Name: "all", Protocol: "TCP", VIP: "198.18.0.103", Port: 0, Scheduler: "lc",
			Persistent: 300, Netmask: "255.255.255.255",
			Dests: []control.Dest{
				{Address: "198.18.1.5", Port: 0, Forward: "Route", Weight: 1, Up: true},
			},
		},
	}
}

func goldenBackend() *fakeBackend {
	b := newFakeBackend()
	b.services = goldenTable()
	b.conns = []control.Connection{
		{Protocol: "TCP", Expire: 65_000, State: "ESTABLISHED", Source: "198.18.3.1:40000", Virtual: "198.18.0.100:80", Dest: "198.18.1.1:8080"},
		{Protocol: "TCP", Expire: 119_500, State: "FIN_WAIT", Source: "198.18.3.2:40001", Virtual: "198.18.0.100:80", Dest: "198.18.1.2:8080"},
		{Protocol: "UDP", Expire: 299_999, State: "UDP", Source: "[2001:db8::9]:5353", Virtual: "[2001:db8::100]:53", Dest: "[2001:db8::1]:53"},
		{Protocol: "TCP", Expire: 900_000, State: "ESTABLISHED", Source: "198.18.3.3:50000", Virtual: "198.18.0.102:8080", Dest: "198.18.2.1:80", Local: "198.18.1.250:1025"},
	}
	b.tmpls = []control.Connection{
		{Protocol: "TCP", Expire: 60_000, State: "NONE", Source: "198.18.3.1:0", Virtual: "198.18.0.101:443", Dest: "198.18.1.3:443", Template: true},
		{Protocol: "IP", Expire: 300_000, State: "NONE", Source: "198.18.3.2:0", Virtual: "198.18.0.103:0", Dest: "198.18.1.5:0", Template: true},
	}
	b.counters = control.Counters{
		DataPath: map[string]uint64{"rx": 1000, "tx": 990, "drop_no_service": 10,
			"syncookies_accepted": 870, "syncookies_rejected": 12, "synproxy_dropped": 3,
			"half_open": 4100, "evicted_half_open": 25000, "csum_finished": 25, "frag_forwarded": 4, "frag_held": 1},
		XDP: map[string]uint64{"steered_vip": 1000, "passed": 5, "syncookies_sent": 1_500_000, "syn_throttled": 42, "steer_metered": 9000, "fast_csum_finished": 900,
			"steered_frag": 4, "foreign_mac": 6},
		SynProxy: []control.SynProxyService{
			{Service: "web", Mode: "auto", Capable: true, Engaged: true, SYNs: 1_501_000},
			{Service: "api", Mode: "on", Capable: true, Engaged: true, SYNs: 310},
			{Service: "ssh-dr", Mode: "auto", SYNs: 7},
		},
		Rings: []control.RingCounters{
			{Interface: "eth0", Queue: 0, RxDropped: 12, RxRingFull: 340_000, FillRingEmpty: 5, TxInvalid: 0, TxRingEmpty: 77},
			{Interface: "eth0", Queue: 1, RxRingFull: 1, SteerLimit: 120000},
			{Interface: "eth1", Queue: 0},
		},
		FastPath: []control.FastPathState{{Interface: "eth0", On: true}, {Interface: "eth1", Reason: "veth peer has neither XDP nor GRO"}},
	}
	// A unicast master and a multicast backup, as govsd lists them.
	b.daemons = []control.SyncDaemon{
		{Role: "master", Mode: "unicast", Interface: "eth1", Peers: []string{"198.18.1.12", "2001:db8:1::12"}, Port: 8849, SyncID: 7, KeyFile: "/etc/govs/sync.key",
			Sent: &control.SyncSent{Messages: 1200, Entries: 45_000, Errors: 2, Dropped: 31}},
		{Role: "backup", Mode: "multicast", Interface: "eth1", Group: "239.255.81.49", Port: 8849, SyncID: 7, KeyFile: "/etc/govs/sync.key",
			Received: &control.SyncReceived{Messages: 1100, Entries: 40_000, Rejected: 17, RejectedBy: map[string]uint64{"own": 12, "bad_mac": 3, "duplicate": 2}}},
	}
	b.bgp = control.BGP{Enabled: true, ASN: 65001, RouterID: "198.18.0.254",
		Peers: []control.BGPPeer{
			{Address: "198.18.0.1", ASN: 65000, Port: 179, State: "established", Password: true},
			{Address: "2001:db8::1", ASN: 4200000002, Port: 1179, State: "active", Passive: true, Multihop: 2},
		},
		Announced: []string{"198.18.0.100/32", "198.18.0.101/32", "2001:db8::100/128"}}
	return b
}

func TestGoldenListings(t *testing.T) {
	socket := serve(t, goldenBackend())
	cases := []struct{ name, args string }{
		{"list_numeric", "-Ln"},
		{"list_nosort", "-Ln --nosort"},
		{"list_service", "-Ln -t 198.18.0.101:443"},
		{"stats", "-Ln --stats"},
		{"stats_exact", "-Ln --stats --exact"},
		{"rate", "-Ln --rate"},
		{"rate_exact", "-Ln --rate --exact"},
		{"thresholds", "-Ln --thresholds"},
		{"persistent_conn", "-Ln --persistent-conn"},
		{"conns", "-Lnc"},
		{"conns_persistent", "-Lnc --persistent-conn"},
		{"timeout", "-L --timeout"},
		{"save", "-S -n"},
		{"list_json", "-Ln --json"},
		{"conns_json", "-Lnc --json"},
		{"counters", "--counters"},
		{"daemon", "-L --daemon"},
		{"daemon_json", "-L --daemon --json"},
		{"bgp", "-L --bgp"},
		{"bgp_json", "-L --bgp --json"},
		{"help", "--help"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, socket, strings.Fields(tc.args)...)
			checkGolden(t, tc.name, out)
		})
	}
}

// The same listing whatever the spelling.
func TestListSpellings(t *testing.T) {
	socket := serve(t, goldenBackend())
	want := mustRun(t, socket, "-L", "-n")
	for _, args := range [][]string{{}, {"-Ln"}, {"-l"}, {"--list", "--numeric"}, {"-nL"}, {"-L", "--sort"}} {
		if got := mustRun(t, socket, args...); got != want {
			t.Errorf("govsadm %v printed\n%s\nwant\n%s", args, got, want)
		}
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// Without director.bgp the listing says so.
func TestBGPNotConfigured(t *testing.T) {
	var b strings.Builder
	printBGP(&b, control.BGP{})
	if got := b.String(); got != "BGP speaker not configured (director.bgp)\n" {
		t.Errorf("printBGP = %q", got)
	}
	b.Reset()
	printBGP(&b, control.BGP{Enabled: true, ASN: 1, RouterID: "198.18.0.254"})
	if got := b.String(); !strings.HasSuffix(got, "Announced prefixes: none\n") {
		t.Errorf("printBGP = %q", got)
	}
}
