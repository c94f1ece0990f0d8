package daemon

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/dataplane"
)

// collector exports the director's counters as govs_* metrics. It reads the
// atomically updated counters at scrape time, so the data path pays nothing.
type collector struct {
	d *Daemon

	dp, drops, xdp, conns    *prometheus.Desc
	destActive, destInactive *prometheus.Desc
	destWeight, destConns    *prometheus.Desc
	destUp, destTransitions  *prometheus.Desc
}

func newMetricsHandler(d *Daemon) http.Handler {
	c := &collector{
		d:               d,
		dp:              prometheus.NewDesc("govs_datapath_packets_total", "Packets by data-path event.", []string{"event"}, nil),
		drops:           prometheus.NewDesc("govs_datapath_drops_total", "Packets dropped by the workers, by reason.", []string{"reason"}, nil),
		xdp:             prometheus.NewDesc("govs_xdp_packets_total", "Packets seen by the steering XDP program, by verdict.", []string{"verdict"}, nil),
		conns:           prometheus.NewDesc("govs_conntrack_entries", "Connections in the connection tables.", nil, nil),
		destActive:      prometheus.NewDesc("govs_real_server_active_conns", "Active (ESTABLISHED) connections.", []string{"service", "server"}, nil),
		destInactive:    prometheus.NewDesc("govs_real_server_inactive_conns", "Inactive connections.", []string{"service", "server"}, nil),
		destWeight:      prometheus.NewDesc("govs_real_server_weight", "Current weight (0 = quiescent).", []string{"service", "server"}, nil),
		destConns:       prometheus.NewDesc("govs_real_server_connections_total", "Connections scheduled to the server.", []string{"service", "server"}, nil),
		destUp:          prometheus.NewDesc("govs_real_server_up", "1 while the server's health check passes (or it has none).", []string{"service", "server"}, nil),
		destTransitions: prometheus.NewDesc("govs_real_server_health_transitions_total", "Health state changes of the server.", []string{"service", "server"}, nil),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dp, c.drops, c.xdp, c.conns, c.destActive, c.destInactive, c.destWeight, c.destConns, c.destUp, c.destTransitions} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	k := c.d.dp.Counters()
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter(c.dp, k.RxPackets, "rx")
	counter(c.dp, k.TxPackets, "tx")
	counter(c.dp, k.TxErrors, "tx_error")
	counter(c.dp, k.Inbound, "inbound")
	counter(c.dp, k.Outbound, "outbound")
	counter(c.dp, k.NewConns, "new_conn")
	counter(c.dp, k.ICMP, "icmp_forwarded")
	counter(c.dp, k.ICMPSent, "icmp_sent")
	counter(c.dp, k.HandedOff, "handed_off")
	for i, v := range k.Drops {
		counter(c.drops, v, dropName(i))
	}
	gauge(c.conns, float64(k.Conns))
	if x, err := c.d.dp.SteeringCounters(); err == nil {
		for name, v := range xdpCounters(x) {
			counter(c.xdp, v, name)
		}
	}
	up, transitions := c.d.healthMetrics()
	for key, isUp := range up {
		service, server, _ := strings.Cut(key, "/")
		v := 0.0
		if isUp {
			v = 1
		}
		gauge(c.destUp, v, service, server)
		counter(c.destTransitions, transitions[key], service, server)
	}
	for _, svc := range c.d.dp.Services() {
		sname := svc.Name
		for _, dst := range svc.Dests {
			server := dst.Addr.String() + ":" + strconv.Itoa(int(dst.Port))
			gauge(c.destActive, float64(dst.ActiveConns()), sname, server)
			gauge(c.destInactive, float64(dst.InactiveConns()), sname, server)
			gauge(c.destWeight, float64(dst.Weight()), sname, server)
			counter(c.destConns, dst.Stats().Conns, sname, server)
		}
	}
}

func xdpCounters(x bpf.Counters) map[string]uint64 {
	return map[string]uint64{
		"steered_vip":     x.SteeredVIP,
		"steered_reply":   x.SteeredReply,
		"steered_icmp":    x.SteeredICMP,
		"passed":          x.Passed,
		"malformed":       x.Malformed,
		"frag_passed":     x.FragPassed,
		"unknown_iface":   x.UnknownIface,
		"redirect_failed": x.RedirectFailed,
		"fast_forwarded":  x.FastForwarded,
		"fast_aborted":    x.FastAborted,
	}
}

func dropName(i int) string { return dataplane.DropReason(i).String() }
