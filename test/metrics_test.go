package test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// The fast path is off so that every packet passes through the workers and
// the data-path counters can be predicted exactly.
var metricsConfig = testutil.Config{
	Director: []string{"metrics_listen: 127.0.0.1:9469", "fast_path: false"},
	Services: []testutil.Service{httpService("web", labVIP4, 80, 2), echoService("dns", labVIP4, 53, 2)},
}.YAML()

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, lab *topo.Lab) map[string]float64 {
	t.Helper()
	body, err := topo.Get(context.Background(), topo.HTTPClient(lab.Director, 2*time.Second), "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// listing is govsadm -L -n or --stats parsed: per "PROTO VIP:PORT" the
// numbers of the service line, and per "PROTO VIP:PORT SERVER" those of each
// real server ("Masq" dropped from -L -n).
func listing(t *testing.T, out string) map[string][]uint64 {
	t.Helper()
	res := map[string][]uint64{}
	svc := ""
	nums := func(fields []string) []uint64 {
		var n []uint64
		for _, f := range fields {
			if v, err := strconv.ParseUint(f, 10, 64); err == nil {
				n = append(n, v)
			}
		}
		return n
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP"):
			svc = f[0] + " " + f[1]
			res[svc] = nums(f[2:])
		case len(f) >= 2 && f[0] == "->" && svc != "" && f[1] != "RemoteAddress:Port":
			res[svc+" "+f[1]] = nums(f[2:])
		}
	}
	return res
}

// counterLines is govsadm --counters' "part name value" lines.
func counterLines(out string) map[string]uint64 {
	res := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[0] == "datapath" || f[0] == "xdp") {
			if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				res[f[0]+" "+f[1]] = v
			}
		}
	}
	return res
}

// TestMetrics sends a known number of connections and packets through a NAT
// service and checks every metric family's value, and that /metrics,
// govsadm -L -n, --stats and --counters agree.
//
// Per real server (rr over two): UDP service dns, 3 flows of 3 exchanges
// (3 inactive connections, 9 packets each way); TCP service web, 2
// connections held open (active) and 1 closed by both sides (inactive).
func TestMetrics(t *testing.T) {
	needRoot(t)
	lab := newServingLab(t, "mx", topo.LabOptions{RealServers: 2})
	g := startGovsd(t, lab.Director, metricsConfig)

	const (
		udpFlows, udpExchanges = 6, 3
		tcpHeld, tcpClosed     = 4, 2
		msg                    = "metrics-probe-0123456789"
	)
	servers := []string{"198.18.1.1", "198.18.1.2"}

	// UDP: each flow is a new connection; every exchange one packet each way.
	udpSeen := map[string]int{}
	for i := 0; i < udpFlows; i++ {
		c, err := lab.Client.Dial("udp", "198.18.0.100:53", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var first string
		for j := 0; j < udpExchanges; j++ {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("udp flow %d exchange %d: %v", i, j, err)
			}
			name := strings.Fields(string(buf[:n]))[0]
			if first == "" {
				first = name
				udpSeen[name]++
			} else if name != first {
				t.Errorf("udp flow %d moved from %s to %s", i, first, name)
			}
		}
		c.Close()
	}
	if udpSeen["rs1"] != udpFlows/2 || udpSeen["rs2"] != udpFlows/2 {
		t.Fatalf("udp flows per server %v, want %d each", udpSeen, udpFlows/2)
	}

	// TCP: connections held open (ESTABLISHED), then ones closed by both
	// ends (inactive until their FIN states time out).
	tcpSeen := map[string]int{}
	request := func() (net.Conn, *bufio.ReadWriter) {
		c, err := lab.Client.Dial("tcp", "198.18.0.100:80", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		tcpSeen[keepAliveGet(t, rw)]++
		return c, rw
	}
	for i := 0; i < tcpHeld; i++ {
		c, _ := request()
		t.Cleanup(func() { c.Close() })
	}
	for i := 0; i < tcpClosed; i++ {
		c, rw := request()
		c.(*net.TCPConn).CloseWrite()
		// The server closes its side on our FIN: read to its FIN.
		if _, err := rw.ReadByte(); err == nil {
			t.Fatal("the server sent more after the response")
		}
		c.Close()
	}
	perServer := (tcpHeld + tcpClosed) / 2
	if tcpSeen["rs1"] != perServer || tcpSeen["rs2"] != perServer {
		t.Fatalf("tcp connections per server %v, want %d each", tcpSeen, perServer)
	}

	key := func(service, server string, port int) string {
		return fmt.Sprintf(`{server="%s:%d",service="%s"}`, server, port, service)
	}
	// Wait until the closed connections have left ESTABLISHED, and for the
	// values published periodically: the workers publish their table sizes
	// at their expiry pass (10 ms, or after an idle poll of 50 ms), the SYN
	// guard reads the per-service SYN counters every 100 ms.
	waitFor(t, 5*time.Second, "the closed connections to turn inactive and the periodic values", func() bool {
		m := scrape(t, lab)
		for _, s := range servers {
			if m["govs_real_server_inactive_conns"+key("web", s, 8080)] != tcpClosed/2 {
				return false
			}
		}
		return m["govs_conntrack_entries"] == udpFlows+tcpHeld+tcpClosed && m["govs_conntrack_half_open"] == 0 &&
			m[`govs_service_syns_total{service="web"}`] == tcpHeld+tcpClosed
	})

	// One consistent view: /metrics before and after govsadm's are equal
	// (no traffic in between; TCP keep-alive probes could move them).
	var m map[string]float64
	var ls, st map[string][]uint64
	var ctr map[string]uint64
	for try := 0; ; try++ {
		m = scrape(t, lab)
		ls = listing(t, g.admOK(t, "-L", "-n"))
		st = listing(t, g.admOK(t, "-L", "-n", "--stats", "--exact"))
		ctr = counterLines(g.admOK(t, "--counters"))
		again := scrape(t, lab)
		if again[`govs_datapath_packets_total{event="rx"}`] == m[`govs_datapath_packets_total{event="rx"}`] {
			break
		}
		if try == 3 {
			t.Fatal("the counters kept moving without traffic")
		}
	}
	want := func(name string, v float64) {
		t.Helper()
		if g, ok := m[name]; !ok {
			t.Errorf("%s not exported", name)
		} else if g != v {
			t.Errorf("%s = %v, want %v", name, g, v)
		}
	}
	agree := func(what string, got uint64, metricName string) {
		t.Helper()
		if float64(got) != m[metricName] {
			t.Errorf("%s = %d, but %s = %v", what, got, metricName, m[metricName])
		}
	}

	// Real servers: the gauges and counters, and govsadm's columns.
	var inPkts, outPkts uint64
	for _, s := range servers {
		for _, svc := range []struct {
			name, proto          string
			port                 int
			conns, active, inact float64
			inPkts, outPkts      float64 // -1: not predictable (TCP)
		}{
			{"web", "TCP", 8080, tcpHeld/2 + tcpClosed/2, tcpHeld / 2, tcpClosed / 2, -1, -1},
			{"dns", "UDP", 5353, udpFlows / 2, 0, udpFlows / 2, udpFlows / 2 * udpExchanges, udpFlows / 2 * udpExchanges},
		} {
			k := key(svc.name, s, svc.port)
			want("govs_real_server_connections_total"+k, svc.conns)
			want("govs_real_server_active_conns"+k, svc.active)
			want("govs_real_server_inactive_conns"+k, svc.inact)
			want("govs_real_server_weight"+k, 1)
			want("govs_real_server_up"+k, 1)
			want("govs_real_server_health_transitions_total"+k, 0)
			// -L -n: Weight ActiveConn InActConn.
			row := fmt.Sprintf("%s 198.18.0.%d:%d %s:%d", svc.proto, 100, map[string]int{"web": 80, "dns": 53}[svc.name], s, svc.port)
			if l := ls[row]; len(l) != 3 {
				t.Errorf("-L -n row %q: %v", row, l)
			} else {
				agree("-L -n weight of "+row, l[0], "govs_real_server_weight"+k)
				agree("-L -n ActiveConn of "+row, l[1], "govs_real_server_active_conns"+k)
				agree("-L -n InActConn of "+row, l[2], "govs_real_server_inactive_conns"+k)
			}
			// --stats: Conns InPkts OutPkts InBytes OutBytes.
			l := st[row]
			if len(l) != 5 {
				t.Errorf("--stats row %q: %v", row, l)
				continue
			}
			agree("--stats Conns of "+row, l[0], "govs_real_server_connections_total"+k)
			if svc.inPkts >= 0 && (float64(l[1]) != svc.inPkts || float64(l[2]) != svc.outPkts) {
				t.Errorf("--stats %s: %d packets in, %d out, want %v and %v", row, l[1], l[2], svc.inPkts, svc.outPkts)
			}
			if l[1] == 0 || l[2] == 0 || l[3] < l[1]*uint64(len(msg)) || l[4] < l[2]*uint64(len(msg)) {
				t.Errorf("--stats %s: packets and bytes %v", row, l)
			}
			inPkts += l[1]
			outPkts += l[2]
		}
	}
	// A service's --stats line is the sum of its servers'.
	for _, svc := range []string{"TCP 198.18.0.100:80", "UDP 198.18.0.100:53"} {
		sum := make([]uint64, 5)
		for row, l := range st {
			if strings.HasPrefix(row, svc+" ") && len(l) == 5 {
				for i := range sum {
					sum[i] += l[i]
				}
			}
		}
		if fmt.Sprint(st[svc]) != fmt.Sprint(sum) {
			t.Errorf("--stats %s: %v, servers sum to %v", svc, st[svc], sum)
		}
	}

	// The data path: every packet the workers received was sent on.
	conns := float64(udpFlows + tcpHeld + tcpClosed)
	ev := func(e string) string { return `govs_datapath_packets_total{event="` + e + `"}` }
	want("govs_datapath_new_connections_total", conns)
	want("govs_conntrack_entries", conns)
	want(ev("inbound"), float64(inPkts))
	want(ev("outbound"), float64(outPkts))
	want(ev("rx"), float64(inPkts+outPkts))
	want(ev("tx"), float64(inPkts+outPkts))
	want("govs_datapath_tx_errors_total", 0)
	for _, e := range []string{"icmp_forwarded", "icmp_sent", "handed_off", "syncookies_accepted", "syncookies_rejected", "synproxy_dropped"} {
		want(ev(e), 0)
	}
	for _, r := range dataplane.DropReasons() {
		want(`govs_datapath_drops_total{reason="`+r.String()+`"}`, 0)
	}
	want("govs_conntrack_half_open", 0)
	want("govs_conntrack_evicted_half_open_total", 0)
	want(`govs_service_syns_total{service="web"}`, tcpHeld+tcpClosed)
	want(`govs_service_syn_proxy_engaged{service="web"}`, 0)

	// The XDP program steered exactly those packets to the workers.
	vd := func(v string) string { return `govs_xdp_packets_total{verdict="` + v + `"}` }
	want(vd("steered_vip"), float64(inPkts))
	want(vd("steered_reply"), float64(outPkts))
	for _, v := range []string{"steered_icmp", "malformed", "frag_passed", "unknown_iface", "redirect_failed", "fast_forwarded", "fast_aborted", "syncookies_sent", "syn_throttled"} {
		want(vd(v), 0)
	}
	if _, ok := m[vd("passed")]; !ok {
		t.Errorf("%s not exported", vd("passed"))
	}
	for _, dev := range []string{"d0", "d1"} {
		q := fmt.Sprintf(`{interface="%s",queue="0"}`, dev)
		want("govs_xsk_rx_dropped_total"+q, 0)
		want("govs_xsk_rx_ring_full_total"+q, 0)
		want("govs_xsk_tx_invalid_total"+q, 0)
		for _, n := range []string{"govs_xsk_fill_ring_empty_total", "govs_xsk_tx_ring_empty_total"} {
			if _, ok := m[n+q]; !ok {
				t.Errorf("%s%s not exported", n, q)
			}
		}
	}

	// govsadm --counters shows the same numbers under its names.
	for name, metricName := range map[string]string{
		"datapath rx": ev("rx"), "datapath tx": ev("tx"), "datapath tx_errors": "govs_datapath_tx_errors_total",
		"datapath new_conns": "govs_datapath_new_connections_total", "datapath inbound": ev("inbound"), "datapath outbound": ev("outbound"),
		"datapath icmp_forwarded": ev("icmp_forwarded"), "datapath icmp_sent": ev("icmp_sent"), "datapath handed_off": ev("handed_off"),
		"datapath conns": "govs_conntrack_entries", "datapath half_open": "govs_conntrack_half_open",
		"xdp steered_vip": vd("steered_vip"), "xdp steered_reply": vd("steered_reply"),
		"datapath csum_finished": ev("csum_finished"), "xdp fast_csum_finished": "govs_xdp_fast_csum_finished_total",
		// not "xdp passed": the namespaces' own IPv6 chatter moves it
	} {
		if v, ok := ctr[name]; !ok {
			t.Errorf("--counters lacks %s", name)
		} else {
			agree("--counters "+name, v, metricName)
		}
	}
	for _, r := range dataplane.DropReasons() {
		agree("--counters drop_"+r.String(), ctr["datapath drop_"+r.String()], `govs_datapath_drops_total{reason="`+r.String()+`"}`)
	}
	if t.Failed() {
		t.Logf("-L -n:\n%s\n--stats:\n%s", g.admOK(t, "-L", "-n"), g.admOK(t, "-L", "-n", "--stats", "--exact"))
	}
}
