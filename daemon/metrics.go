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

	svcPackets, svcBytes     *prometheus.Desc
	destPackets, destBytes   *prometheus.Desc
	destActive, destInactive *prometheus.Desc
	destWeight, destConns    *prometheus.Desc
	destUp, destTransitions  *prometheus.Desc
	// SYN-flood defence and AF_XDP rings (README "SYN floods and overload")
	synEngaged, synSYNs      *prometheus.Desc
	rxDropped, rxRingFull    *prometheus.Desc
	fillRingEmpty, txInvalid *prometheus.Desc
	txRingEmpty              *prometheus.Desc
	steerLimit               *prometheus.Desc
	fastPathUp               *prometheus.Desc
	// reloads, sync daemon, BGP
	reloads                                *prometheus.Desc
	syncRunning, syncMessages, syncEntries *prometheus.Desc
	syncRejected, syncSendErrors           *prometheus.Desc
	bgpUp, bgpRoutes                       *prometheus.Desc
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
		svcPackets:      prometheus.NewDesc("govs_service_packets_total", "Packets of the service's connections, from clients (in) and to them (out); the sum of its real servers'.", []string{"service", "direction"}, nil),
		svcBytes:        prometheus.NewDesc("govs_service_bytes_total", "Bytes of the service's connections, from clients (in) and to them (out); the sum of its real servers'.", []string{"service", "direction"}, nil),
		destPackets:     prometheus.NewDesc("govs_real_server_packets_total", "Packets of the server's connections, from clients (in) and to them (out), fast path included.", []string{"service", "server", "direction"}, nil),
		destBytes:       prometheus.NewDesc("govs_real_server_bytes_total", "Bytes of the server's connections, from clients (in) and to them (out), fast path included.", []string{"service", "server", "direction"}, nil),
		destActive:      prometheus.NewDesc("govs_real_server_active_conns", "Active (ESTABLISHED) connections.", []string{"service", "server"}, nil),
		destInactive:    prometheus.NewDesc("govs_real_server_inactive_conns", "Inactive connections.", []string{"service", "server"}, nil),
		destWeight:      prometheus.NewDesc("govs_real_server_weight", "Current weight (0 = quiescent).", []string{"service", "server"}, nil),
		destConns:       prometheus.NewDesc("govs_real_server_connections_total", "Connections scheduled to the server.", []string{"service", "server"}, nil),
		destUp:          prometheus.NewDesc("govs_real_server_up", "1 while the server's health check passes (or it has none).", []string{"service", "server"}, nil),
		destTransitions: prometheus.NewDesc("govs_real_server_health_transitions_total", "Health state changes of the server.", []string{"service", "server"}, nil),
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
		bgpUp:           prometheus.NewDesc("govs_bgp_session_up", "1 while the BGP session with the peer is established; the state label says which state it is in.", []string{"peer", "state"}, nil),
		bgpRoutes:       prometheus.NewDesc("govs_bgp_announced_routes", "VIP host routes announced to the BGP peers.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	describeTable(ch, dataPathCounterTable)
	describeTable(ch, xdpCounterTable)
	for _, d := range []*prometheus.Desc{
		c.svcPackets, c.svcBytes, c.destPackets, c.destBytes,
		c.destActive, c.destInactive, c.destWeight, c.destConns, c.destUp, c.destTransitions,
		c.synEngaged, c.synSYNs, c.rxDropped, c.rxRingFull, c.fillRingEmpty, c.txInvalid, c.txRingEmpty, c.steerLimit, c.fastPathUp,
		c.reloads, c.syncRunning, c.syncMessages, c.syncEntries, c.syncRejected, c.syncSendErrors,
		c.bgpUp, c.bgpRoutes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	k := dataPathCounts{c.src.Counters(), c.src.ConnPressure()}
	collectTable(ch, dataPathCounterTable, &k)
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
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
	if x, err := c.src.SteeringCounters(); err == nil { // unreadable: left out, not 0
		collectTable(ch, xdpCounterTable, &x)
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
		counter(syncDroppedEntries.desc, m.Dropped, "sender")
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

func synProxyService(s dataplane.SynProxyStatus) control.SynProxyService {
	return control.SynProxyService{Service: s.Service, Mode: s.Mode.String(), Capable: s.Capable, Engaged: s.Engaged, SYNs: s.SYNs}
}

func ringCounters(r dataplane.RingStats) control.RingCounters {
	return control.RingCounters{Interface: r.Interface, Queue: r.Queue, RxDropped: r.RxDropped, RxRingFull: r.RxRingFull,
		FillRingEmpty: r.FillRingEmpty, TxInvalid: r.TxInvalid, TxRingEmpty: r.TxRingEmpty, SteerLimit: r.SteerLimit}
}

// The counter tables: every counter govsadm --counters lists under
// "datapath" (the workers') and "xdp" (the steering program's), each on one
// line that says its name and where Prometheus has it. govsadm and
// Prometheus take their names from here, so they cannot drift apart: a
// counter in a labelled family is the series whose label is the counter's
// name (packets: rx is event="rx"), or the name less the family's unit
// (bytes: rx_bytes is event="rx"; drops: drop_no_dest is reason="no_dest");
// a counter alone in its family names the family on its line. A new
// counter is one line here, plus its field in dataplane.Counters (or
// bpf.Counters) and the code that counts it; TestCounterTables fails for a
// field without its line.

// A counterDef is one counter of a table over the snapshot S.
type counterDef[S any] struct {
	name   string  // govsadm --counters' name
	family *family // where Prometheus has it; nil: govsadm only
	value  func(*S) uint64
}

// A family is a Prometheus metric family that counters are exported in.
type family struct {
	desc  *prometheus.Desc
	gauge bool
	// label is the value of the family's one variable label for the counter
	// named name; nil for a family of one counter, without labels.
	label func(name string) string
}

func (f *family) valueType() prometheus.ValueType {
	if f.gauge {
		return prometheus.GaugeValue
	}
	return prometheus.CounterValue
}

// labelled is a family of many counters, told apart by the label key;
// label gives its value from a counter's name.
func labelled(name, help, key string, label func(name string) string) *family {
	return &family{desc: prometheus.NewDesc(name, help, []string{key}, nil), label: label}
}

func sameName(name string) string { return name }

// own is a family of one counter; ownGauge one of a value that goes down.
func own(name, help string) *family {
	return &family{desc: prometheus.NewDesc(name, help, nil, nil)}
}

func ownGauge(name, help string) *family {
	f := own(name, help)
	f.gauge = true
	return f
}

// The families many counters share.
var (
	datapathPackets = labelled("govs_datapath_packets_total", "Packets by data-path event.", "event", sameName)
	datapathBytes   = labelled("govs_datapath_bytes_total", "Bytes the workers received (rx) and sent (tx).", "event",
		func(name string) string { return strings.TrimSuffix(name, "_bytes") })
	datapathDrops = labelled("govs_datapath_drops_total", "Packets dropped by the workers, by reason.", "reason",
		func(name string) string { return strings.TrimPrefix(name, "drop_") })
	xdpVerdicts = labelled("govs_xdp_packets_total", "Packets seen by the steering XDP program, by verdict.", "verdict", sameName)
	// The workers' share of the entries a master lost (stage="worker");
	// collectDaemon adds the sender's (stage="sender").
	syncDroppedEntries = &family{
		desc: prometheus.NewDesc("govs_sync_dropped_entries_total",
			"Connection entries the master lost: the workers' queue to the sender was full (worker), or the writer was behind (sender).", []string{"stage"}, nil),
		label: func(string) string { return "worker" },
	}
)

// dataPathCounts is what the datapath table reads: the workers' counters
// and the connection tables' pressure.
type dataPathCounts struct {
	dataplane.Counters
	dataplane.ConnPressure
}

type dpCounter = counterDef[dataPathCounts]

// dataPathCounterTable is govsadm --counters' datapath section: the
// workers' counters, one per line, then one per drop reason.
var dataPathCounterTable = append([]dpCounter{
	{"rx", datapathPackets, func(k *dataPathCounts) uint64 { return k.RxPackets }},
	{"tx", datapathPackets, func(k *dataPathCounts) uint64 { return k.TxPackets }},
	{"rx_bytes", datapathBytes, func(k *dataPathCounts) uint64 { return k.RxBytes }},
	{"tx_bytes", datapathBytes, func(k *dataPathCounts) uint64 { return k.TxBytes }},
	{"tx_errors", own("govs_datapath_tx_errors_total", "Packets the workers could not send."), func(k *dataPathCounts) uint64 { return k.TxErrors }},
	{"new_conns", own("govs_datapath_new_connections_total", "Connections the workers created."), func(k *dataPathCounts) uint64 { return k.NewConns }},
	{"inbound", datapathPackets, func(k *dataPathCounts) uint64 { return k.Inbound }},
	{"outbound", datapathPackets, func(k *dataPathCounts) uint64 { return k.Outbound }},
	{"icmp_forwarded", datapathPackets, func(k *dataPathCounts) uint64 { return k.ICMP }},
	{"icmp_sent", datapathPackets, func(k *dataPathCounts) uint64 { return k.ICMPSent }},
	{"handed_off", datapathPackets, func(k *dataPathCounts) uint64 { return k.HandedOff }},
	{"csum_finished", datapathPackets, func(k *dataPathCounts) uint64 { return k.CsumFinished }},
	{"frag_forwarded", datapathPackets, func(k *dataPathCounts) uint64 { return k.FragForwarded }},
	{"frag_held", datapathPackets, func(k *dataPathCounts) uint64 { return k.FragHeld }},
	{"frag_timed_out", datapathPackets, func(k *dataPathCounts) uint64 { return k.FragTimedOut }},
	{"frag_table_full", datapathPackets, func(k *dataPathCounts) uint64 { return k.FragTableFull }},
	{"syncookies_accepted", datapathPackets, func(k *dataPathCounts) uint64 { return k.SynCookiesAccepted }},
	{"syncookies_rejected", datapathPackets, func(k *dataPathCounts) uint64 { return k.SynCookiesRejected }},
	{"synproxy_dropped", datapathPackets, func(k *dataPathCounts) uint64 { return k.SynProxyDropped }},
	{"synproxy_resets", datapathPackets, func(k *dataPathCounts) uint64 { return k.SynProxyResets }},
	{"proxy_headers", datapathPackets, func(k *dataPathCounts) uint64 { return k.ProxyHeaders }},
	{"toa_inserted", datapathPackets, func(k *dataPathCounts) uint64 { return k.TOAInserted }},
	{"conns", ownGauge("govs_conntrack_entries", "Connections in the connection tables."), func(k *dataPathCounts) uint64 { return uint64(k.Conns) }},
	{"half_open", ownGauge("govs_conntrack_half_open", "Half-open (SYN_RECV, SYN_SENT, SYNACK) connections in the connection tables."),
		func(k *dataPathCounts) uint64 { return uint64(k.HalfOpen) }},
	{"evicted_half_open", own("govs_conntrack_evicted_half_open_total", "Half-open connections evicted to make room in a full table."),
		func(k *dataPathCounts) uint64 { return k.EvictedHalfOpen }},
	{"sync_dropped", syncDroppedEntries, func(k *dataPathCounts) uint64 { return k.SyncDropped }},
	{"sync_installed", own("govs_sync_installed_connections_total", "Connections the workers installed from a master's entries."),
		func(k *dataPathCounts) uint64 { return k.SyncInstalled }},
	{"sync_unknown", own("govs_sync_unknown_entries_total", "A master's entries for a service or real server this director does not have, not installed."),
		func(k *dataPathCounts) uint64 { return k.SyncUnknown }},
	// XDP flow entries the workers wrote and failed to write (map full),
	// and connection-mirror records lost and refused: govsadm only.
	{"fast_installed", nil, func(k *dataPathCounts) uint64 { return k.FastInstalled }},
	{"fast_failed", nil, func(k *dataPathCounts) uint64 { return k.FastFailed }},
	{"mirror_dropped", nil, func(k *dataPathCounts) uint64 { return k.MirrorDropped }},
	{"mirror_failed", nil, func(k *dataPathCounts) uint64 { return k.MirrorFailed }},
}, dropCounters()...)

// dropCounters are drop_REASON, one per reason a worker drops a frame.
func dropCounters() []dpCounter {
	var out []dpCounter
	for _, r := range dataplane.DropReasons() {
		out = append(out, dpCounter{"drop_" + r.String(), datapathDrops, func(k *dataPathCounts) uint64 { return k.Drops[r] }})
	}
	return out
}

type xdpCounter = counterDef[bpf.Counters]

// xdpCounterTable is govsadm --counters' xdp section: the steering
// program's counters, all verdicts but fast_csum_finished.
var xdpCounterTable = []xdpCounter{
	{"steered_vip", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SteeredVIP }},
	{"steered_reply", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SteeredReply }},
	{"steered_icmp", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SteeredICMP }},
	{"passed", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.Passed }},
	{"malformed", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.Malformed }},
	{"frag_passed", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.FragPassed }},
	{"unknown_iface", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.UnknownIface }},
	{"redirect_failed", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.RedirectFailed }},
	{"fast_forwarded", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.FastForwarded }},
	{"fast_aborted", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.FastAborted }},
	{"syncookies_sent", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SynCookiesSent }},
	{"syn_throttled", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SynThrottled }},
	{"syn_spread", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SynSpread }},
	{"steer_metered", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SteerMetered }},
	{"steered_frag", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.SteeredFrag }},
	{"foreign_mac", xdpVerdicts, func(x *bpf.Counters) uint64 { return x.ForeignMAC }},
	// Not a verdict: these packets count as fast_forwarded too.
	{"fast_csum_finished", own("govs_xdp_fast_csum_finished_total",
		"Unfinished TCP/UDP checksums the XDP fast path finished (these packets count as verdict fast_forwarded or syn_spread too)."),
		func(x *bpf.Counters) uint64 { return x.FastCsumFinished }},
}

// counterValues is a table's counters by govsadm's names.
func counterValues[S any](table []counterDef[S], s *S) map[string]uint64 {
	out := make(map[string]uint64, len(table))
	for _, d := range table {
		out[d.name] = d.value(s)
	}
	return out
}

// dataPathCounters is govsadm --counters' datapath section but the sync
// daemon's own counters (Daemon.syncCounters).
func dataPathCounters(c dataplane.Counters, p dataplane.ConnPressure) map[string]uint64 {
	return counterValues(dataPathCounterTable, &dataPathCounts{c, p})
}

// xdpCounters is govsadm --counters' xdp section.
func xdpCounters(x bpf.Counters) map[string]uint64 { return counterValues(xdpCounterTable, &x) }

// describeTable sends the families of a table's counters, each once.
func describeTable[S any](ch chan<- *prometheus.Desc, table []counterDef[S]) {
	seen := map[*family]bool{}
	for _, d := range table {
		if d.family != nil && !seen[d.family] {
			seen[d.family] = true
			ch <- d.family.desc
		}
	}
}

// collectTable sends a series for each of a table's counters Prometheus has.
func collectTable[S any](ch chan<- prometheus.Metric, table []counterDef[S], s *S) {
	for _, d := range table {
		f := d.family
		if f == nil {
			continue
		}
		var labels []string
		if f.label != nil {
			labels = []string{f.label(d.name)}
		}
		ch <- prometheus.MustNewConstMetric(f.desc, f.valueType(), float64(d.value(s)), labels...)
	}
}
