package daemon

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/config"
	"github.com/govs/govs/dataplane"
)

// TestSynGuardMapping: the director's syn_* keys reach dataplane.Options and
// each service's syn_proxy its ServiceSpec.
func TestSynGuardMapping(t *testing.T) {
	in := `director:
  interfaces: [eth0]
  busy_poll: true
  syn_proxy_half_open: 100
  syn_proxy_syn_rate: 2000
  syn_limit: 3000
  syn_limit_burst: 40
  syn_proxy_mss: 1400
services:
  - {name: a, vip: 198.18.0.100, port: 80}
  - {name: b, vip: 198.18.0.100, port: 81, syn_proxy: on}
  - {name: c, vip: 198.18.0.100, port: 82, syn_proxy: off, forward: dr}
`
	cfg, err := config.Parse([]byte(in), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := dataplaneOptions(cfg)
	want := dataplane.SynGuardOptions{HalfOpen: 100, SynRate: 2000, Limit: 3000, Burst: 40, MSS: 1400}
	if o.SynGuard != want || !o.BusyPoll {
		t.Errorf("options: busy poll %v, syn guard %+v, want true, %+v", o.BusyPoll, o.SynGuard, want)
	}
	specs, err := Specs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []dataplane.SynProxyMode{dataplane.SynProxyAuto, dataplane.SynProxyOn, dataplane.SynProxyOff} {
		if specs[i].SynProxy != m {
			t.Errorf("service %s: syn proxy %v, want %v", specs[i].Name, specs[i].SynProxy, m)
		}
	}
	// The defaults, as config documents them.
	cfg, err = config.Parse([]byte("director: {interfaces: [eth0]}\n"), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := dataplaneOptions(cfg).SynGuard
	if def != (dataplane.SynGuardOptions{HalfOpen: config.DefaultSynProxyHalfOpen, SynRate: config.DefaultSynProxySynRate,
		Limit: config.DefaultSynLimit, Burst: config.DefaultSynLimitBurst, MSS: config.DefaultSynProxyMSS}) {
		t.Errorf("default options %+v", def)
	}
}

// fakeSource is a data path for the collector.
type fakeSource struct{}

func (fakeSource) Counters() dataplane.Counters {
	return dataplane.Counters{SynCookiesAccepted: 3, SynCookiesRejected: 2, SynProxyDropped: 1}
}
func (fakeSource) SteeringCounters() (bpf.Counters, error) {
	return bpf.Counters{SynCookiesSent: 9, SynThrottled: 4, SteerMetered: 8}, nil
}
func (fakeSource) Services() []*dataplane.Service { return nil }
func (fakeSource) SynProxyStatus() []dataplane.SynProxyStatus {
	return []dataplane.SynProxyStatus{{Service: "web", Mode: dataplane.SynProxyAuto, Capable: true, Engaged: true, SYNs: 77}}
}
func (fakeSource) ConnPressure() dataplane.ConnPressure {
	return dataplane.ConnPressure{HalfOpen: 5, EvictedHalfOpen: 6}
}
func (fakeSource) FastPathStates() []dataplane.FastPathState { return nil }
func (fakeSource) RingStats() ([]dataplane.RingStats, error) {
	return []dataplane.RingStats{{Interface: "eth0", Queue: 1, RxDropped: 10, RxRingFull: 11, FillRingEmpty: 12, TxInvalid: 13, TxRingEmpty: 14, SteerLimit: 15}}, nil
}

// TestMetricNames: the SYN-flood and AF_XDP ring metrics exist with the
// values and labels of the data path, under the names the README lists,
// and the counters govsadm --counters shows under the same names.
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(fakeSource{}, func() (map[string]bool, map[string]uint64) { return nil, nil }))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// name{label=value,...} -> value
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+labelString(m)] = value(m)
		}
	}
	want := map[string]float64{
		`govs_datapath_packets_total{event="syncookies_accepted"}`:   3,
		`govs_datapath_packets_total{event="syncookies_rejected"}`:   2,
		`govs_datapath_packets_total{event="synproxy_dropped"}`:      1,
		`govs_xdp_packets_total{verdict="syncookies_sent"}`:          9,
		`govs_xdp_packets_total{verdict="syn_throttled"}`:            4,
		`govs_conntrack_half_open`:                                   5,
		`govs_conntrack_evicted_half_open_total`:                     6,
		`govs_service_syn_proxy_engaged{service="web"}`:              1,
		`govs_service_syns_total{service="web"}`:                     77,
		`govs_xsk_rx_dropped_total{interface="eth0",queue="1"}`:      10,
		`govs_xsk_rx_ring_full_total{interface="eth0",queue="1"}`:    11,
		`govs_xsk_fill_ring_empty_total{interface="eth0",queue="1"}`: 12,
		`govs_xsk_tx_invalid_total{interface="eth0",queue="1"}`:      13,
		`govs_xsk_tx_ring_empty_total{interface="eth0",queue="1"}`:   14,
		`govs_xsk_steer_limit{interface="eth0",queue="1"}`:           15,
		`govs_xdp_packets_total{verdict="steer_metered"}`:            8,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// One name per thing: each --counters name of the SYN defence appears
	// in a metric, as an event/verdict label or in the metric's name.
	names := []string{"syncookies_accepted", "syncookies_rejected", "synproxy_dropped", "synproxy_resets", "half_open", "evicted_half_open"}
	for n := range xdpCounters(bpf.Counters{}) {
		names = append(names, n)
	}
	for _, n := range names {
		found := false
		for k := range got {
			if strings.Contains(k, `"`+n+`"`) || strings.HasPrefix(k, "govs_conntrack_"+n) || strings.HasPrefix(k, "govs_xdp_"+n+"_total") {
				found = true
			}
		}
		if !found {
			t.Errorf("counter %q has no metric of that name", n)
		}
	}
}

func labelString(m *dto.Metric) string {
	if len(m.GetLabel()) == 0 {
		return ""
	}
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}
