package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/inet"
)

// countingDataPath fills every counter of the fake with its own value, so
// that a counter exported under another's name fails a test.
func countingDataPath() *fakeDataPath {
	f := &fakeDataPath{
		counters: dataplane.Counters{
			RxPackets: 101, RxBytes: 102, TxPackets: 103, TxBytes: 104, TxErrors: 105,
			NewConns: 106, Inbound: 107, Outbound: 108, ICMP: 109, ICMPSent: 110,
			HandedOff: 111, SyncDropped: 112, SyncUnknown: 113, SyncInstalled: 114, MirrorDropped: 122, MirrorFailed: 123,
			FastInstalled: 115, FastFailed: 116, SynCookiesAccepted: 117, SynCookiesRejected: 118,
			SynProxyDropped: 119, SynProxyResets: 124, Conns: 120, CsumFinished: 121,
			FragForwarded: 131, FragHeld: 132, FragTimedOut: 133, FragTableFull: 134,
		},
		steer: bpf.Counters{SteeredVIP: 301, SteeredReply: 302, SteeredICMP: 303, Passed: 304, Malformed: 305,
			FragPassed: 306, UnknownIface: 307, RedirectFailed: 308, FastForwarded: 309, FastAborted: 310,
			SynCookiesSent: 311, SynThrottled: 312, SteerMetered: 313, FastCsumFinished: 320, SteeredFrag: 314, ForeignMAC: 315},
		synStatus: []dataplane.SynProxyStatus{
			{Service: "web", Mode: dataplane.SynProxyAuto, Capable: true, Engaged: true, SYNs: 401},
			{Service: "api", Mode: dataplane.SynProxyOff, SYNs: 402},
		},
		pressure: dataplane.ConnPressure{HalfOpen: 501, EvictedHalfOpen: 502},
		fastPath: []dataplane.FastPathState{{Interface: "eth0", On: true}, {Interface: "eth1", Reason: "veth peer has neither XDP nor GRO"}},
		rings: []dataplane.RingStats{
			{Interface: "eth0", Queue: 0, RxDropped: 601, RxRingFull: 602, FillRingEmpty: 603, TxInvalid: 604, TxRingEmpty: 605},
			{Interface: "eth1", Queue: 3, RxDropped: 611, RxRingFull: 612, FillRingEmpty: 613, TxInvalid: 614, TxRingEmpty: 615, SteerLimit: 616},
		},
	}
	for i := range f.counters.Drops {
		f.counters.Drops[i] = uint64(200 + i)
	}
	dest := func(addr string, port uint16, weight int, st dataplane.Stats, active, inactive int) *dataplane.Dest {
		return dataplane.NewDetachedDest(dataplane.DestSpec{Addr: netip.MustParseAddr(addr), Port: port, Weight: weight, Fwd: conntrack.FwdNAT, Upper: 50, Lower: 10},
			6, st, active, inactive)
	}
	f.services = []*dataplane.Service{
		{Name: "web", VIP: inet.AddrFromNetip(netip.MustParseAddr("198.18.0.100")), Port: 80, Proto: 6, SchedName: "rr",
			Dests: []*dataplane.Dest{
				dest("198.18.1.1", 8080, 3, dataplane.Stats{Conns: 701, InPkts: 702, OutPkts: 703, InBytes: 704, OutBytes: 705}, 7, 2),
				dest("198.18.1.2", 8080, 0, dataplane.Stats{Conns: 711, InPkts: 712, OutPkts: 713, InBytes: 714, OutBytes: 715}, 1, 4),
			}},
		{Name: "api", VIP: inet.AddrFromNetip(netip.MustParseAddr("198.18.0.101")), Port: 443, Proto: 6, SchedName: "wlc",
			Dests: []*dataplane.Dest{
				dest("198.18.1.3", 8443, 5, dataplane.Stats{Conns: 721, InPkts: 722, OutPkts: 723, InBytes: 724, OutBytes: 725}, 0, 6),
			}},
	}
	return f
}

// gather scrapes a collector into "name{labels}" -> value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+labelString(m)] = value(m)
		}
	}
	return got
}

// TestMetricValues: every series of every metric family carries the value
// of the data-path counter it is named after, and there is no other series.
func TestMetricValues(t *testing.T) {
	f := countingDataPath()
	health := func() (map[string]bool, map[string]uint64) {
		return map[string]bool{"web/198.18.1.1:8080": true, "web/198.18.1.2:8080": false, "api/198.18.1.3:8443": true},
			map[string]uint64{"web/198.18.1.2:8080": 3, "api/198.18.1.3:8443": 2}
	}
	got := gather(t, newCollector(f, health))
	want := map[string]float64{
		`govs_datapath_packets_total{event="rx"}`:                  101,
		`govs_datapath_packets_total{event="tx"}`:                  103,
		`govs_datapath_packets_total{event="tx_error"}`:            105,
		`govs_datapath_packets_total{event="new_conn"}`:            106,
		`govs_datapath_packets_total{event="inbound"}`:             107,
		`govs_datapath_packets_total{event="outbound"}`:            108,
		`govs_datapath_packets_total{event="icmp_forwarded"}`:      109,
		`govs_datapath_packets_total{event="icmp_sent"}`:           110,
		`govs_datapath_packets_total{event="handed_off"}`:          111,
		`govs_datapath_packets_total{event="csum_finished"}`:       121,
		`govs_datapath_packets_total{event="frag_forwarded"}`:      131,
		`govs_datapath_packets_total{event="frag_held"}`:           132,
		`govs_datapath_packets_total{event="frag_timed_out"}`:      133,
		`govs_datapath_packets_total{event="frag_table_full"}`:     134,
		`govs_datapath_packets_total{event="syncookies_accepted"}`: 117,
		`govs_datapath_packets_total{event="syncookies_rejected"}`: 118,
		`govs_datapath_packets_total{event="synproxy_dropped"}`:    119,
		`govs_datapath_packets_total{event="synproxy_resets"}`:     124,
		`govs_conntrack_entries`:                                   120,
		`govs_conntrack_half_open`:                                 501,
		`govs_conntrack_evicted_half_open_total`:                   502,
		`govs_service_syn_proxy_engaged{service="web"}`:            1,
		`govs_service_syn_proxy_engaged{service="api"}`:            0,
		`govs_service_syns_total{service="web"}`:                   401,
		`govs_service_syns_total{service="api"}`:                   402,
		`govs_xdp_packets_total{verdict="steered_vip"}`:            301,
		`govs_xdp_packets_total{verdict="steered_reply"}`:          302,
		`govs_xdp_packets_total{verdict="steered_icmp"}`:           303,
		`govs_xdp_packets_total{verdict="passed"}`:                 304,
		`govs_xdp_packets_total{verdict="malformed"}`:              305,
		`govs_xdp_packets_total{verdict="frag_passed"}`:            306,
		`govs_xdp_packets_total{verdict="unknown_iface"}`:          307,
		`govs_xdp_packets_total{verdict="redirect_failed"}`:        308,
		`govs_xdp_packets_total{verdict="fast_forwarded"}`:         309,
		`govs_xdp_packets_total{verdict="fast_aborted"}`:           310,
		`govs_xdp_packets_total{verdict="syncookies_sent"}`:        311,
		`govs_xdp_packets_total{verdict="syn_throttled"}`:          312,
		`govs_xdp_packets_total{verdict="steer_metered"}`:          313,
		`govs_xdp_packets_total{verdict="fast_csum_finished"}`:     320,
		`govs_fast_path_up{interface="eth0"}`:                      1,
		`govs_fast_path_up{interface="eth1"}`:                      0,
		`govs_xdp_packets_total{verdict="steered_frag"}`:           314,
		`govs_xdp_packets_total{verdict="foreign_mac"}`:            315,

		`govs_real_server_active_conns{server="198.18.1.1:8080",service="web"}`:             7,
		`govs_real_server_inactive_conns{server="198.18.1.1:8080",service="web"}`:           2,
		`govs_real_server_weight{server="198.18.1.1:8080",service="web"}`:                   3,
		`govs_real_server_connections_total{server="198.18.1.1:8080",service="web"}`:        701,
		`govs_real_server_active_conns{server="198.18.1.2:8080",service="web"}`:             1,
		`govs_real_server_inactive_conns{server="198.18.1.2:8080",service="web"}`:           4,
		`govs_real_server_weight{server="198.18.1.2:8080",service="web"}`:                   0,
		`govs_real_server_connections_total{server="198.18.1.2:8080",service="web"}`:        711,
		`govs_real_server_active_conns{server="198.18.1.3:8443",service="api"}`:             0,
		`govs_real_server_inactive_conns{server="198.18.1.3:8443",service="api"}`:           6,
		`govs_real_server_weight{server="198.18.1.3:8443",service="api"}`:                   5,
		`govs_real_server_connections_total{server="198.18.1.3:8443",service="api"}`:        721,
		`govs_real_server_up{server="198.18.1.1:8080",service="web"}`:                       1,
		`govs_real_server_up{server="198.18.1.2:8080",service="web"}`:                       0,
		`govs_real_server_up{server="198.18.1.3:8443",service="api"}`:                       1,
		`govs_real_server_health_transitions_total{server="198.18.1.1:8080",service="web"}`: 0,
		`govs_real_server_health_transitions_total{server="198.18.1.2:8080",service="web"}`: 3,
		`govs_real_server_health_transitions_total{server="198.18.1.3:8443",service="api"}`: 2,
	}
	for i, r := range dataplane.DropReasons() {
		want[`govs_datapath_drops_total{reason="`+r.String()+`"}`] = float64(200 + i)
	}
	for _, r := range f.rings {
		for name, v := range map[string]uint64{"rx_dropped": r.RxDropped, "rx_ring_full": r.RxRingFull,
			"fill_ring_empty": r.FillRingEmpty, "tx_invalid": r.TxInvalid, "tx_ring_empty": r.TxRingEmpty} {
			want[fmt.Sprintf(`govs_xsk_%s_total{interface="%s",queue="%d"}`, name, r.Interface, r.Queue)] = float64(v)
		}
		want[fmt.Sprintf(`govs_xsk_steer_limit{interface="%s",queue="%d"}`, r.Interface, r.Queue)] = float64(r.SteerLimit)
	}
	diffMetrics(t, got, want)

	// Steering counters that cannot be read are left out, not zero; so
	// are unreadable rings.
	f.steerErr, f.rings, f.ringErr = errors.New("map gone"), nil, errors.New("closed")
	got = gather(t, newCollector(f, health))
	for k := range got {
		if strings.HasPrefix(k, "govs_xdp_") || strings.HasPrefix(k, "govs_xsk_") {
			t.Errorf("%s exported without a value to read", k)
		}
	}
}

func diffMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var bad []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			bad = append(bad, fmt.Sprintf("missing %s (want %v)", k, v))
		} else if g != v {
			bad = append(bad, fmt.Sprintf("%s = %v, want %v", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("unexpected %s = %v", k, v))
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// TestCountersValues: govsadm --counters shows every data-path counter under
// its own name.
func TestCountersValues(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	f := countingDataPath()
	d.dp = f
	got, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"rx_packets": 101, "rx_bytes": 102, "tx_packets": 103, "tx_bytes": 104, "tx_errors": 105,
		"new_conns": 106, "inbound": 107, "outbound": 108, "icmp_forwarded": 109, "icmp_sent": 110,
		"handed_off": 111, "sync_dropped": 112, "sync_unknown": 113, "sync_installed": 114, "mirror_dropped": 122, "mirror_failed": 123,
		"fast_installed": 115, "fast_failed": 116, "syncookies_accepted": 117, "syncookies_rejected": 118,
		"synproxy_dropped": 119, "synproxy_resets": 124, "conns": 120, "half_open": 501, "evicted_half_open": 502, "csum_finished": 121,
		"frag_forwarded": 131, "frag_held": 132, "frag_timed_out": 133, "frag_table_full": 134,
	}
	for i, r := range dataplane.DropReasons() {
		want["drop_"+r.String()] = uint64(200 + i)
	}
	if !reflect.DeepEqual(got.DataPath, want) {
		t.Errorf("datapath counters\n got %v\nwant %v", got.DataPath, want)
	}
	wantXDP := map[string]uint64{"steered_vip": 301, "steered_reply": 302, "steered_icmp": 303, "passed": 304, "malformed": 305,
		"frag_passed": 306, "unknown_iface": 307, "redirect_failed": 308, "fast_forwarded": 309, "fast_aborted": 310,
		"syncookies_sent": 311, "syn_throttled": 312, "steer_metered": 313, "fast_csum_finished": 320, "steered_frag": 314, "foreign_mac": 315}
	if !reflect.DeepEqual(got.XDP, wantXDP) {
		t.Errorf("xdp counters\n got %v\nwant %v", got.XDP, wantXDP)
	}
	wantSyn := []control.SynProxyService{{Service: "web", Mode: "auto", Capable: true, Engaged: true, SYNs: 401}, {Service: "api", Mode: "off", SYNs: 402}}
	if !reflect.DeepEqual(got.SynProxy, wantSyn) {
		t.Errorf("syn proxy %+v, want %+v", got.SynProxy, wantSyn)
	}
	wantRings := []control.RingCounters{
		{Interface: "eth0", Queue: 0, RxDropped: 601, RxRingFull: 602, FillRingEmpty: 603, TxInvalid: 604, TxRingEmpty: 605},
		{Interface: "eth1", Queue: 3, RxDropped: 611, RxRingFull: 612, FillRingEmpty: 613, TxInvalid: 614, TxRingEmpty: 615, SteerLimit: 616},
	}
	if !reflect.DeepEqual(got.Rings, wantRings) {
		t.Errorf("rings %+v, want %+v", got.Rings, wantRings)
	}
	wantFast := []control.FastPathState{{Interface: "eth0", On: true}, {Interface: "eth1", Reason: "veth peer has neither XDP nor GRO"}}
	if !reflect.DeepEqual(got.FastPath, wantFast) {
		t.Errorf("fast path %+v, want %+v", got.FastPath, wantFast)
	}
	// Unreadable rings still give the rest; unreadable steering counters
	// are an error, with the rest.
	f.ringErr, f.rings = errors.New("closed"), nil
	f.steerErr = errors.New("map gone")
	got, err = d.Counters()
	if err == nil || got.DataPath["tx_errors"] != 105 || got.Rings != nil {
		t.Errorf("with unreadable steering counters: err %v, counters %v", err, got)
	}
}

// TestServicesListing: -L -n and --stats show each real server's weight,
// connections and counters, and each service the sum of its servers'.
func TestServicesListing(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	d.dp = countingDataPath()
	d.up["web/198.18.1.2:8080"] = false
	got := d.Services()
	if len(got) != 2 {
		t.Fatalf("%d services, want 2", len(got))
	}
	web := got[0]
	if web.Name != "web" || web.Protocol != "TCP" || web.VIP != "198.18.0.100" || web.Port != 80 || web.Scheduler != "rr" {
		t.Errorf("service %+v", web)
	}
	if want := (control.Stats{Conns: 701 + 711, InPkts: 702 + 712, OutPkts: 703 + 713, InBytes: 704 + 714, OutBytes: 705 + 715}); web.Stats != want {
		t.Errorf("service stats %+v, want the sum %+v", web.Stats, want)
	}
	want := []control.Dest{
		{Address: "198.18.1.1", Port: 8080, Forward: "Masq", Weight: 3, ActiveConns: 7, InactiveConns: 2, UpperThresh: 50, LowerThresh: 10, Up: true,
			Stats: control.Stats{Conns: 701, InPkts: 702, OutPkts: 703, InBytes: 704, OutBytes: 705}},
		{Address: "198.18.1.2", Port: 8080, Forward: "Masq", Weight: 0, ActiveConns: 1, InactiveConns: 4, UpperThresh: 50, LowerThresh: 10, Up: false,
			Stats: control.Stats{Conns: 711, InPkts: 712, OutPkts: 713, InBytes: 714, OutBytes: 715}},
	}
	if !reflect.DeepEqual(web.Dests, want) {
		t.Errorf("real servers\n got %+v\nwant %+v", web.Dests, want)
	}
	if api := got[1]; api.Stats.Conns != 721 || api.Dests[0].InactiveConns != 6 || api.Dests[0].ActiveConns != 0 {
		t.Errorf("api %+v", api)
	}
	// -Z of one service zeroes its servers only.
	if err := d.Zero(&control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.100", Port: 80}); err != nil {
		t.Fatal(err)
	}
	got = d.Services()
	if got[0].Stats != (control.Stats{}) || got[1].Stats.Conns != 721 {
		t.Errorf("after -Z of web: web %+v, api %+v", got[0].Stats, got[1].Stats)
	}
	if err := d.Zero(nil); err != nil {
		t.Fatal(err)
	}
	if got = d.Services(); got[1].Stats != (control.Stats{}) {
		t.Errorf("after -Z: api %+v", got[1].Stats)
	}
	if got[0].Dests[0].ActiveConns != 7 {
		t.Error("-Z cleared the connection counts")
	}
	if err := d.Zero(&control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.200", Port: 80}); err == nil {
		t.Error("-Z of an unknown service succeeded")
	}
}
