package daemon

import (
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/connsync"
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

// daemonStats is what the collector reads from the Daemon besides the data
// path: reloads, the sync daemon's parts and the BGP speaker.
type daemonStats struct {
	reloadsOK, reloadsRefused uint64
	master                    *connsync.SenderStats   // nil: no master sync daemon runs
	backup                    *connsync.ReceiverStats // nil: no backup sync daemon runs
	bgp                       bool                    // a BGP speaker runs (director.bgp)
	bgpPeers                  map[netip.Addr]string   // session state by peer
	bgpRoutes                 int                     // routes announced
}

// reloadCounts counts Reload's results.
type reloadCounts struct{ ok, refused atomic.Uint64 }

func (r *reloadCounts) count(err error) {
	if err != nil {
		r.refused.Add(1)
	} else {
		r.ok.Add(1)
	}
}

// metricsStats reads the Daemon's part of the metrics.
func (d *Daemon) metricsStats() daemonStats {
	st := daemonStats{reloadsOK: d.reloads.ok.Load(), reloadsRefused: d.reloads.refused.Load()}
	s := d.sync
	s.mu.Lock()
	if s.master != nil {
		m := s.master.sender.Stats()
		st.master = &m
	}
	if s.backup != nil {
		b := s.backup.receiver.Stats()
		st.backup = &b
	}
	s.mu.Unlock()
	if d.bgp != nil { // set before /metrics is served, never changed
		st.bgp = true
		st.bgpPeers = d.bgp.PeerStates()
		st.bgpRoutes = len(d.bgp.Announced())
	}
	return st
}

// collector exports the director's counters as govs_* metrics. It reads the
// atomically updated counters at scrape time, so the data path pays nothing.
// Each family counts one kind of thing (packets, bytes, connections,
// errors, messages, entries); its labels say which of them.
type collector struct {
	src    metricsSource
	health func() (map[string]bool, map[string]uint64)
	daemon func() daemonStats // nil: only the data path's metrics

	dp, drops, xdp, conns    *prometheus.Desc
	dpBytes, newConns        *prometheus.Desc
	txErrors, xdpCsum        *prometheus.Desc
	svcPackets, svcBytes     *prometheus.Desc
	destPackets, destBytes   *prometheus.Desc
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
	// reloads, sync daemon, BGP
	reloads                                   *prometheus.Desc
	syncRunning, syncMessages, syncEntries    *prometheus.Desc
	syncRejected, syncSendErrors, syncDropped *prometheus.Desc
	syncInstalled, syncUnknown                *prometheus.Desc
	bgpUp, bgpRoutes                          *prometheus.Desc
}

func newMetricsHandler(d *Daemon) http.Handler {
	c := newCollector(d.dp, d.healthMetrics)
	c.daemon = d.metricsStats
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollectors(c)...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// metricsCollectors is everything /metrics serves: govs's own metrics,
// govs_build_info, and the Go runtime's and the process's.
func metricsCollectors(c *collector) []prometheus.Collector {
	return []prometheus.Collector{c, buildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricNames returns the name of every metric family govsd's /metrics can
// serve, sorted (for dashboards and their tests).
func MetricNames() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, col := range metricsCollectors(newCollector(nil, nil)) {
			col.Describe(ch)
		}
		close(ch)
	}()
	seen := map[string]bool{}
	var out []string
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
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
		dpBytes:         prometheus.NewDesc("govs_datapath_bytes_total", "Bytes the workers received (rx) and sent (tx).", []string{"event"}, nil),
		newConns:        prometheus.NewDesc("govs_datapath_new_connections_total", "Connections the workers created.", nil, nil),
		txErrors:        prometheus.NewDesc("govs_datapath_tx_errors_total", "Packets the workers could not send.", nil, nil),
		xdpCsum:         prometheus.NewDesc("govs_xdp_fast_csum_finished_total", "Unfinished TCP/UDP checksums the XDP fast path finished (these packets count as verdict fast_forwarded too).", nil, nil),
		svcPackets:      prometheus.NewDesc("govs_service_packets_total", "Packets of the service's connections, from clients (in) and to them (out); the sum of its real servers'.", []string{"service", "direction"}, nil),
		svcBytes:        prometheus.NewDesc("govs_service_bytes_total", "Bytes of the service's connections, from clients (in) and to them (out); the sum of its real servers'.", []string{"service", "direction"}, nil),
		destPackets:     prometheus.NewDesc("govs_real_server_packets_total", "Packets of the server's connections, from clients (in) and to them (out), fast path included.", []string{"service", "server", "direction"}, nil),
		destBytes:       prometheus.NewDesc("govs_real_server_bytes_total", "Bytes of the server's connections, from clients (in) and to them (out), fast path included.", []string{"service", "server", "direction"}, nil),
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
		reloads:         prometheus.NewDesc("govs_config_reloads_total", "Configuration reloads (SIGHUP, govsadm --reload), applied (ok) or refused (the running configuration unchanged).", []string{"result"}, nil),
		syncRunning:     prometheus.NewDesc("govs_sync_running", "1 while the sync daemon's part of the role runs (master: sends, backup: receives).", []string{"role"}, nil),
		syncMessages:    prometheus.NewDesc("govs_sync_messages_total", "Sync messages sent (master) or received and accepted (backup).", []string{"role"}, nil),
		syncEntries:     prometheus.NewDesc("govs_sync_entries_total", "Connection entries in the sync messages sent (master) or accepted (backup).", []string{"role"}, nil),
		syncRejected:    prometheus.NewDesc("govs_sync_rejected_messages_total", "Sync datagrams the backup refused, by reason.", []string{"reason"}, nil),
		syncSendErrors:  prometheus.NewDesc("govs_sync_send_errors_total", "Sync datagrams the master failed to write.", nil, nil),
		syncDropped:     prometheus.NewDesc("govs_sync_dropped_entries_total", "Connection entries the master lost: the workers' queue to the sender was full (worker), or the writer was behind (sender).", []string{"stage"}, nil),
		syncInstalled:   prometheus.NewDesc("govs_sync_installed_connections_total", "Connections the workers installed from a master's entries.", nil, nil),
		syncUnknown:     prometheus.NewDesc("govs_sync_unknown_entries_total", "A master's entries for a service or real server this director does not have, not installed.", nil, nil),
		bgpUp:           prometheus.NewDesc("govs_bgp_session_up", "1 while the BGP session with the peer is established; the state label says which state it is in.", []string{"peer", "state"}, nil),
		bgpRoutes:       prometheus.NewDesc("govs_bgp_announced_routes", "VIP host routes announced to the BGP peers.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dp, c.dpBytes, c.newConns, c.txErrors, c.drops, c.xdp, c.xdpCsum, c.conns,
		c.svcPackets, c.svcBytes, c.destPackets, c.destBytes,
		c.destActive, c.destInactive, c.destWeight, c.destConns, c.destUp, c.destTransitions,
		c.halfOpen, c.evictedHalfOpen, c.synEngaged, c.synSYNs, c.rxDropped, c.rxRingFull, c.fillRingEmpty, c.txInvalid, c.txRingEmpty, c.steerLimit, c.fastPathUp,
		c.reloads, c.syncRunning, c.syncMessages, c.syncEntries, c.syncRejected, c.syncSendErrors, c.syncDropped, c.syncInstalled, c.syncUnknown,
		c.bgpUp, c.bgpRoutes} {
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
	counter(c.dpBytes, k.RxBytes, "rx")
	counter(c.dpBytes, k.TxBytes, "tx")
	counter(c.txErrors, k.TxErrors)
	counter(c.dp, k.Inbound, "inbound")
	counter(c.dp, k.Outbound, "outbound")
	counter(c.newConns, k.NewConns)
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
			if name == "fast_csum_finished" { // not a verdict: these were fast_forwarded
				counter(c.xdpCsum, v)
				continue
			}
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
		var sum dataplane.Stats // the service's, as -L --stats shows it
		for _, dst := range svc.Dests {
			server := dst.Addr.String() + ":" + strconv.Itoa(int(dst.Port))
			st := dst.Stats() // the workers' and the fast path's, since -Z
			gauge(c.destActive, float64(dst.ActiveConns()), sname, server)
			gauge(c.destInactive, float64(dst.InactiveConns()), sname, server)
			gauge(c.destWeight, float64(dst.Weight()), sname, server)
			counter(c.destConns, st.Conns, sname, server)
			counter(c.destPackets, st.InPkts, sname, server, "in")
			counter(c.destPackets, st.OutPkts, sname, server, "out")
			counter(c.destBytes, st.InBytes, sname, server, "in")
			counter(c.destBytes, st.OutBytes, sname, server, "out")
			sum.InPkts += st.InPkts
			sum.OutPkts += st.OutPkts
			sum.InBytes += st.InBytes
			sum.OutBytes += st.OutBytes
		}
		counter(c.svcPackets, sum.InPkts, sname, "in")
		counter(c.svcPackets, sum.OutPkts, sname, "out")
		counter(c.svcBytes, sum.InBytes, sname, "in")
		counter(c.svcBytes, sum.OutBytes, sname, "out")
	}
	// The sync daemon's data-path counters are the workers': always there.
	counter(c.syncDropped, k.SyncDropped, "worker")
	counter(c.syncInstalled, k.SyncInstalled)
	counter(c.syncUnknown, k.SyncUnknown)
	if c.daemon != nil {
		c.collectDaemon(ch, c.daemon())
	}
}

// collectDaemon exports reloads, the sync daemon's parts and BGP.
func (c *collector) collectDaemon(ch chan<- prometheus.Metric, st daemonStats) {
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter(c.reloads, st.reloadsOK, "ok")
	counter(c.reloads, st.reloadsRefused, "refused")
	running := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(c.syncRunning, running(st.master != nil), "master")
	gauge(c.syncRunning, running(st.backup != nil), "backup")
	if m := st.master; m != nil {
		counter(c.syncMessages, m.Messages, "master")
		counter(c.syncEntries, m.Entries, "master")
		counter(c.syncSendErrors, m.SendErrors)
		counter(c.syncDropped, m.Dropped, "sender")
	}
	if b := st.backup; b != nil {
		counter(c.syncMessages, b.Messages, "backup")
		counter(c.syncEntries, b.Entries, "backup")
		for i, n := range b.Rejected {
			counter(c.syncRejected, n, connsync.Reason(i).String())
		}
	}
	if st.bgp {
		for peer, state := range st.bgpPeers {
			gauge(c.bgpUp, running(state == "established"), peer.String(), state)
		}
		gauge(c.bgpRoutes, float64(st.bgpRoutes))
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
