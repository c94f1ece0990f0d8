package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/connsync"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
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
			ProxyHeaders: 125, TOAInserted: 126,
			FragForwarded: 131, FragHeld: 132, FragTimedOut: 133, FragTableFull: 134,
		},
		steer: bpf.Counters{SteeredVIP: 301, SteeredReply: 302, SteeredICMP: 303, Passed: 304, Malformed: 305,
			FragPassed: 306, UnknownIface: 307, RedirectFailed: 308, FastForwarded: 309, FastAborted: 310,
			SynCookiesSent: 311, SynThrottled: 312, SynSpread: 316, SteerMetered: 313, FastCsumFinished: 320, SteeredFrag: 314, ForeignMAC: 315},
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
		return dataplane.NewDetachedDest(dataplane.DestSpec{Addr: netip.MustParseAddr(addr), Port: port, Weight: weight, Fwd: lvs.FwdNAT, Upper: 50, Lower: 10},
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
		`govs_datapath_bytes_total{event="rx"}`:                    102,
		`govs_datapath_bytes_total{event="tx"}`:                    104,
		`govs_datapath_tx_errors_total`:                            105,
		`govs_datapath_new_connections_total`:                      106,
		`govs_sync_dropped_entries_total{stage="worker"}`:          112,
		`govs_sync_unknown_entries_total`:                          113,
		`govs_sync_installed_connections_total`:                    114,
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
		`govs_datapath_packets_total{event="proxy_headers"}`:       125,
		`govs_datapath_packets_total{event="toa_inserted"}`:        126,
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
		`govs_xdp_packets_total{verdict="syn_spread"}`:             316,
		`govs_xdp_packets_total{verdict="steer_metered"}`:          313,
		`govs_xdp_fast_csum_finished_total`:                        320,
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

		// -L --stats: each real server's, the service's the sum
		`govs_real_server_packets_total{direction="in",server="198.18.1.1:8080",service="web"}`:  702,
		`govs_real_server_packets_total{direction="out",server="198.18.1.1:8080",service="web"}`: 703,
		`govs_real_server_bytes_total{direction="in",server="198.18.1.1:8080",service="web"}`:    704,
		`govs_real_server_bytes_total{direction="out",server="198.18.1.1:8080",service="web"}`:   705,
		`govs_real_server_packets_total{direction="in",server="198.18.1.2:8080",service="web"}`:  712,
		`govs_real_server_packets_total{direction="out",server="198.18.1.2:8080",service="web"}`: 713,
		`govs_real_server_bytes_total{direction="in",server="198.18.1.2:8080",service="web"}`:    714,
		`govs_real_server_bytes_total{direction="out",server="198.18.1.2:8080",service="web"}`:   715,
		`govs_real_server_packets_total{direction="in",server="198.18.1.3:8443",service="api"}`:  722,
		`govs_real_server_packets_total{direction="out",server="198.18.1.3:8443",service="api"}`: 723,
		`govs_real_server_bytes_total{direction="in",server="198.18.1.3:8443",service="api"}`:    724,
		`govs_real_server_bytes_total{direction="out",server="198.18.1.3:8443",service="api"}`:   725,
		`govs_service_packets_total{direction="in",service="web"}`:                               702 + 712,
		`govs_service_packets_total{direction="out",service="web"}`:                              703 + 713,
		`govs_service_bytes_total{direction="in",service="web"}`:                                 704 + 714,
		`govs_service_bytes_total{direction="out",service="web"}`:                                705 + 715,
		`govs_service_packets_total{direction="in",service="api"}`:                               722,
		`govs_service_packets_total{direction="out",service="api"}`:                              723,
		`govs_service_bytes_total{direction="in",service="api"}`:                                 724,
		`govs_service_bytes_total{direction="out",service="api"}`:                                725,
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

// TestMetricValuesDaemon: reloads, the sync daemon's parts and BGP carry the
// values of the counters they are named after; a part that does not run
// has no series but its govs_sync_running 0.
func TestMetricValuesDaemon(t *testing.T) {
	f := countingDataPath()
	noHealth := func() (map[string]bool, map[string]uint64) { return nil, nil }
	master := connsync.SenderStats{Messages: 801, Datagrams: 802, Entries: 803, Bytes: 804, SendErrors: 805, Dropped: 806, Invalid: 807}
	backup := connsync.ReceiverStats{Datagrams: 811, Messages: 812, Entries: 813}
	for i := range backup.Rejected {
		backup.Rejected[i] = uint64(820 + i)
	}
	onlyDaemon := func(st daemonStats) map[string]float64 {
		c := newCollector(f, noHealth)
		c.daemon = func() daemonStats { return st }
		got := gather(t, c)
		for k := range gather(t, newCollector(f, noHealth)) { // the data path's, checked above
			delete(got, k)
		}
		return got
	}
	got := onlyDaemon(daemonStats{reloadsOK: 3, reloadsRefused: 2, master: &master, backup: &backup, bgp: true,
		bgpPeers:  map[netip.Addr]string{netip.MustParseAddr("198.18.0.1"): "established", netip.MustParseAddr("2001:db8::1"): "active"},
		bgpRoutes: 4})
	want := map[string]float64{
		`govs_config_reloads_total{result="ok"}`:                     3,
		`govs_config_reloads_total{result="refused"}`:                2,
		`govs_sync_running{role="master"}`:                           1,
		`govs_sync_running{role="backup"}`:                           1,
		`govs_sync_messages_total{role="master"}`:                    801,
		`govs_sync_entries_total{role="master"}`:                     803,
		`govs_sync_send_errors_total`:                                805,
		`govs_sync_dropped_entries_total{stage="sender"}`:            806,
		`govs_sync_messages_total{role="backup"}`:                    812,
		`govs_sync_entries_total{role="backup"}`:                     813,
		`govs_bgp_session_up{peer="198.18.0.1",state="established"}`: 1,
		`govs_bgp_session_up{peer="2001:db8::1",state="active"}`:     0,
		`govs_bgp_announced_routes`:                                  4,
	}
	for i := range backup.Rejected {
		want[`govs_sync_rejected_messages_total{reason="`+connsync.Reason(i).String()+`"}`] = float64(820 + i)
	}
	diffMetrics(t, got, want)

	// Nothing running: the reloads, and the sync roles at 0.
	got = onlyDaemon(daemonStats{})
	diffMetrics(t, got, map[string]float64{
		`govs_config_reloads_total{result="ok"}`:      0,
		`govs_config_reloads_total{result="refused"}`: 0,
		`govs_sync_running{role="master"}`:            0,
		`govs_sync_running{role="backup"}`:            0,
	})
}

// TestReloadMetrics: SIGHUP's and govsadm --reload's Reload counts each
// result.
func TestReloadMetrics(t *testing.T) {
	d, _ := newTestDaemon(t, reloadBefore)
	reloads := func() (ok, refused float64) {
		t.Helper()
		got := daemonMetrics(t, d)
		return got[`govs_config_reloads_total{result="ok"}`], got[`govs_config_reloads_total{result="refused"}`]
	}
	if ok, refused := reloads(); ok != 0 || refused != 0 {
		t.Errorf("before any reload: ok %v refused %v", ok, refused)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	rewrite(t, d, "services: [")
	if err := d.Reload(); err == nil {
		t.Fatal("a broken file was reloaded")
	}
	if err := d.Reload(); err == nil {
		t.Fatal("a broken file was reloaded")
	}
	if ok, refused := reloads(); ok != 1 || refused != 2 {
		t.Errorf("after 1 reload and 2 refused: ok %v refused %v", ok, refused)
	}
}

// daemonMetrics scrapes what d's /metrics serves of govs's own metrics.
func daemonMetrics(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	c := newCollector(d.dp, d.healthMetrics)
	c.daemon = d.metricsStats
	return gather(t, c)
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
		"rx": 101, "rx_bytes": 102, "tx": 103, "tx_bytes": 104, "tx_errors": 105,
		"new_conns": 106, "inbound": 107, "outbound": 108, "icmp_forwarded": 109, "icmp_sent": 110,
		"handed_off": 111, "sync_dropped": 112, "sync_unknown": 113, "sync_installed": 114, "mirror_dropped": 122, "mirror_failed": 123,
		"fast_installed": 115, "fast_failed": 116, "syncookies_accepted": 117, "syncookies_rejected": 118,
		"synproxy_dropped": 119, "synproxy_resets": 124, "conns": 120, "half_open": 501, "evicted_half_open": 502, "csum_finished": 121,
		"proxy_headers": 125, "toa_inserted": 126,
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
		"syncookies_sent": 311, "syn_throttled": 312, "syn_spread": 316, "steer_metered": 313, "fast_csum_finished": 320, "steered_frag": 314, "foreign_mac": 315}
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

// fillDistinct sets every integer of *v (struct fields, array elements,
// embedded structs) to its own value from *next on, and returns them.
func fillDistinct(v reflect.Value, next *uint64) []uint64 {
	var out []uint64
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			out = append(out, fillDistinct(v.Field(i), next)...)
		}
	case reflect.Array:
		for i := range v.Len() {
			out = append(out, fillDistinct(v.Index(i), next)...)
		}
	case reflect.Uint64, reflect.Uint32:
		if !v.CanSet() {
			break
		}
		*next++
		v.SetUint(*next)
		out = append(out, *next)
	case reflect.Int, reflect.Int64:
		if !v.CanSet() {
			break
		}
		*next++
		v.SetInt(int64(*next))
		out = append(out, *next)
	}
	return out
}

// tableCoverage fails unless every counter of the snapshot s has exactly
// one line in the table: a counter added to dataplane.Counters or
// bpf.Counters without its line is shown nowhere.
func tableCoverage[S any](t *testing.T, section string, table []counterDef[S]) {
	t.Helper()
	var s S
	var next uint64 = 1000
	counters := fillDistinct(reflect.ValueOf(&s).Elem(), &next)
	lines := map[uint64][]string{}
	names := map[string]bool{}
	for _, d := range table {
		if names[d.name] {
			t.Errorf("%s %s: two lines", section, d.name)
		}
		names[d.name] = true
		v := d.value(&s)
		lines[v] = append(lines[v], d.name)
	}
	for _, v := range counters {
		if len(lines[v]) != 1 {
			t.Errorf("%s: the counter holding %d is read by %d lines %v, want 1", section, v, len(lines[v]), lines[v])
		}
	}
	if len(table) != len(counters) {
		t.Errorf("%s: %d lines for %d counters", section, len(table), len(counters))
	}
}

// TestCounterTables: each data-path and XDP counter has one line in its
// table, and Prometheus exports it under govsadm's name: as its family's
// label (less the family's unit: rx_bytes is event="rx", drop_REASON is
// reason="REASON"), or alone in a family of its own.
func TestCounterTables(t *testing.T) {
	tableCoverage(t, "datapath", dataPathCounterTable)
	tableCoverage(t, "xdp", xdpCounterTable)

	f := countingDataPath()
	got := gather(t, newCollector(f, func() (map[string]bool, map[string]uint64) { return nil, nil }))
	check := func(section string, values map[string]uint64, series func(name string) (string, bool)) {
		for name, v := range values {
			s, ok := series(name)
			if !ok {
				continue // govsadm only
			}
			if g, found := got[s]; !found || g != float64(v) {
				t.Errorf("%s %s = %d, but %s = %v (exported %v)", section, name, v, s, g, found)
			}
		}
	}
	seriesIn := func(table map[string]*family) func(string) (string, bool) {
		return func(name string) (string, bool) {
			fam := table[name]
			if fam == nil {
				return "", false
			}
			m := descName.FindStringSubmatch(fam.desc.String())[1]
			if fam.label == nil {
				return m, true
			}
			key := regexp.MustCompile(`variableLabels: \{(\w+)\}`).FindStringSubmatch(fam.desc.String())[1]
			return m + `{` + key + `="` + fam.label(name) + `"}`, true
		}
	}
	dp, xdp := map[string]*family{}, map[string]*family{}
	for _, d := range dataPathCounterTable {
		dp[d.name] = d.family
		if d.family == datapathPackets && d.family.label(d.name) != d.name {
			t.Errorf("datapath %s is event %q", d.name, d.family.label(d.name))
		}
	}
	for _, d := range xdpCounterTable {
		xdp[d.name] = d.family
		if d.family == xdpVerdicts && d.family.label(d.name) != d.name {
			t.Errorf("xdp %s is verdict %q", d.name, d.family.label(d.name))
		}
	}
	check("datapath", dataPathCounters(f.counters, f.pressure), seriesIn(dp))
	check("xdp", xdpCounters(f.steer), seriesIn(xdp))
}
