package daemon

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/version"
)

// metricsSource is what the collector reads; the Daemon's data path in
// production, a fake in tests.
type metricsSource interface {
	Counters() dataplane.Counters
	SteeringCounters() (bpf.Counters, error)
	Services() []*dataplane.Service
	SynProxyStatus() []dataplane.SynProxyStatus
	ConnPressure() dataplane.ConnPressure
	RingStats() ([]dataplane.RingStats, error)
	FastPathStates() []dataplane.FastPathState
}

// collector exports the director's counters as govs_* metrics. It reads the
// atomically updated counters at scrape time, so the data path pays nothing.
type collector struct {
	src    metricsSource
	health func() (map[string]bool, map[string]uint64)

	dp, drops, xdp, conns    *prometheus.Desc
	destActive, destInactive *prometheus.Desc
	destWeight, destConns    *prometheus.Desc
	destUp, destTransitions  *prometheus.Desc
	// SYN-flood defence and AF_XDP rings (README "SYN floods and overload")
	halfOpen, evictedHalfOpen *prometheus.Desc
	synEngaged, synSYNs       *prometheus.Desc
	rxDropped, rxRingFull     *prometheus.Desc
	fillRingEmpty, txInvalid  *prometheus.Desc
	txRingEmpty               *prometheus.Desc
	steerLimit                *prometheus.Desc
	fastPathUp                *prometheus.Desc
}

func newMetricsHandler(d *Daemon) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d.dp, d.healthMetrics), buildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// buildInfo is govs_build_info: 1, labelled with govs's and Go's versions.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "govs_build_info",
		Help:        "Always 1; the labels say which govs (and Go) built govsd.",
		ConstLabels: prometheus.Labels{"version": version.String(), "goversion": version.Go()},
	})
	g.Set(1)
	return g
}

func newCollector(src metricsSource, health func() (map[string]bool, map[string]uint64)) *collector {
	ring := []string{"interface", "queue"}
	return &collector{
		src:             src,
		health:          health,
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
		halfOpen:        prometheus.NewDesc("govs_conntrack_half_open", "Half-open (SYN_RECV, SYN_SENT, SYNACK) connections in the connection tables.", nil, nil),
		evictedHalfOpen: prometheus.NewDesc("govs_conntrack_evicted_half_open_total", "Half-open connections evicted to make room in a full table.", nil, nil),
		synEngaged:      prometheus.NewDesc("govs_service_syn_proxy_engaged", "1 while every SYN to the TCP service is answered with a SYN cookie.", []string{"service"}, nil),
		synSYNs:         prometheus.NewDesc("govs_service_syns_total", "SYNs to the TCP service seen by the XDP program.", []string{"service"}, nil),
		rxDropped:       prometheus.NewDesc("govs_xsk_rx_dropped_total", "Frames the kernel dropped for an AF_XDP socket (no fill ring entry, or too long).", ring, nil),
		rxRingFull:      prometheus.NewDesc("govs_xsk_rx_ring_full_total", "Frames dropped because an AF_XDP socket's RX ring was full.", ring, nil),
		fillRingEmpty:   prometheus.NewDesc("govs_xsk_fill_ring_empty_total", "Times the kernel found an AF_XDP socket's fill ring empty.", ring, nil),
		txInvalid:       prometheus.NewDesc("govs_xsk_tx_invalid_total", "TX descriptors the kernel refused.", ring, nil),
		txRingEmpty:     prometheus.NewDesc("govs_xsk_tx_ring_empty_total", "Times the kernel found an AF_XDP socket's TX ring empty.", ring, nil),
		fastPathUp:      prometheus.NewDesc("govs_fast_path_up", "1 while the XDP fast path sends toward the interface (0: the workers forward that traffic; govsadm --counters says why).", []string{"interface"}, nil),
		steerLimit:      prometheus.NewDesc("govs_xsk_steer_limit", "Packets per second of flows the workers do not know yet that the XDP program passes to the queue's socket (0 = unlimited).", ring, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dp, c.drops, c.xdp, c.conns, c.destActive, c.destInactive, c.destWeight, c.destConns, c.destUp, c.destTransitions,
		c.halfOpen, c.evictedHalfOpen, c.synEngaged, c.synSYNs, c.rxDropped, c.rxRingFull, c.fillRingEmpty, c.txInvalid, c.txRingEmpty, c.steerLimit, c.fastPathUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	k := c.src.Counters()
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
	counter(c.dp, k.CsumFinished, "csum_finished")
	for i, v := range k.Drops {
		counter(c.drops, v, dropName(i))
	}
	gauge(c.conns, float64(k.Conns))
	pressure := c.src.ConnPressure()
	for name, v := range fragCounters(k) {
		counter(c.dp, v, name)
	}
	for name, v := range synCounters(k, pressure) {
		switch name {
		case "half_open":
			gauge(c.halfOpen, float64(v))
		case "evicted_half_open":
			counter(c.evictedHalfOpen, v)
		default: // packets: syncookies_accepted, syncookies_rejected, synproxy_dropped
			counter(c.dp, v, name)
		}
	}
	for _, s := range c.src.SynProxyStatus() {
		v := 0.0
		if s.Engaged {
			v = 1
		}
		gauge(c.synEngaged, v, s.Service)
		counter(c.synSYNs, s.SYNs, s.Service)
	}
	rings, _ := c.src.RingStats() // what could be read; Counters logs the rest
	for _, r := range rings {
		q := strconv.Itoa(r.Queue)
		counter(c.rxDropped, r.RxDropped, r.Interface, q)
		counter(c.rxRingFull, r.RxRingFull, r.Interface, q)
		counter(c.fillRingEmpty, r.FillRingEmpty, r.Interface, q)
		counter(c.txInvalid, r.TxInvalid, r.Interface, q)
		counter(c.txRingEmpty, r.TxRingEmpty, r.Interface, q)
		gauge(c.steerLimit, float64(r.SteerLimit), r.Interface, q)
	}
	for _, f := range c.src.FastPathStates() {
		v := 0.0
		if f.On {
			v = 1
		}
		gauge(c.fastPathUp, v, f.Interface)
	}
	if x, err := c.src.SteeringCounters(); err == nil {
		for name, v := range xdpCounters(x) {
			counter(c.xdp, v, name)
		}
	}
	up, transitions := c.health()
	for key, isUp := range up {
		service, server, _ := strings.Cut(key, "/")
		v := 0.0
		if isUp {
			v = 1
		}
		gauge(c.destUp, v, service, server)
		counter(c.destTransitions, transitions[key], service, server)
	}
	for _, svc := range c.src.Services() {
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

// synCounters are the SYN-flood defence's data-path counters, by the names
// govsadm --counters shows (and Prometheus: the packet counters as events of
// govs_datapath_packets_total, half_open as govs_conntrack_half_open,
// evicted_half_open as govs_conntrack_evicted_half_open_total).
func synCounters(k dataplane.Counters, p dataplane.ConnPressure) map[string]uint64 {
	return map[string]uint64{
		"syncookies_accepted": k.SynCookiesAccepted,
		"syncookies_rejected": k.SynCookiesRejected,
		"synproxy_dropped":    k.SynProxyDropped,
		"synproxy_resets":     k.SynProxyResets,
		"half_open":           uint64(p.HalfOpen),
		"evicted_half_open":   p.EvictedHalfOpen,
	}
}

func synProxyService(s dataplane.SynProxyStatus) control.SynProxyService {
	return control.SynProxyService{Service: s.Service, Mode: s.Mode.String(), Capable: s.Capable, Engaged: s.Engaged, SYNs: s.SYNs}
}

func ringCounters(r dataplane.RingStats) control.RingCounters {
	return control.RingCounters{Interface: r.Interface, Queue: r.Queue, RxDropped: r.RxDropped, RxRingFull: r.RxRingFull,
		FillRingEmpty: r.FillRingEmpty, TxInvalid: r.TxInvalid, TxRingEmpty: r.TxRingEmpty, SteerLimit: r.SteerLimit}
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
		"syncookies_sent": x.SynCookiesSent,
		"syn_throttled":   x.SynThrottled,
		"steer_metered":   x.SteerMetered,
		"steered_frag":    x.SteeredFrag,
		"foreign_mac":     x.ForeignMAC,
		// besides the verdict above: fast_forwarded packets whose
		// unfinished checksum (TX checksum offload) was finished
		"fast_csum_finished": x.FastCsumFinished,
	}
}

func dropName(i int) string { return dataplane.DropReason(i).String() }
