package main

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/govs/govs/control"
)

// ipvsVersion is the IPVS version ipvsadm prints in its first line; scripts
// that parse `ipvsadm -Ln` match or skip these header lines, so they are
// printed as IPVS prints them.
const ipvsVersion = control.IPVSVersion

// printTable is `ipvsadm -L`: version line, column titles, then each service
// with its real servers.
func printTable(w io.Writer, size int, svcs []control.Service, f listFormat) {
	fmt.Fprintf(w, "IP Virtual Server version %s (size=%d)\n", ipvsVersion, size)
	printTitle(w, f)
	for i := range svcs {
		printService(w, &svcs[i], f)
	}
}

// printTitle prints the column titles of the chosen listing; --stats wins
// over --rate, over --thresholds, over --persistent-conn, as in ipvsadm.
func printTitle(w io.Writer, f listFormat) {
	const prot = "Prot LocalAddress:Port"
	switch {
	case f.stats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			prot, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f.rate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			prot, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f.thresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			prot, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f.persistentConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			prot, "Weight", "PersistConn", "ActiveConn", "InActConn")
	default:
		fmt.Fprint(w, "Prot LocalAddress:Port Scheduler Flags\n"+
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// printService prints one service line and its real servers.
func printService(w io.Writer, s *control.Service, f listFormat) {
	v6 := isIPv6(s.VIP)
	name := fmt.Sprintf("%-4s %s", strings.ToUpper(s.Protocol), hostPort(s.VIP, s.Port))
	if s.FwMark != 0 {
		// ipvsadm: "FWM  %u", and " IPv6" for an IPv6 mark.
		name = fmt.Sprintf("FWM  %d", s.FwMark)
		if s.IPv6 {
			name += " IPv6"
		}
	}
	if !v6 && len(name) > 33 {
		// ipvsadm cuts IPv4 names to its column width.
		name = name[:33]
	}
	var b strings.Builder
	switch {
	case f.stats:
		fmt.Fprintf(&b, "%-33s", name)
		st := s.Stats
		for _, n := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			b.WriteString(largeNum(n, f.exact))
		}
	case f.rate:
		fmt.Fprintf(&b, "%-33s", name)
		r := s.Rates
		for _, n := range []uint64{r.CPS, r.InPPS, r.OutPPS, r.InBPS, r.OutBPS} {
			b.WriteString(largeNum(n, f.exact))
		}
	default:
		b.WriteString(name + " " + s.Scheduler)
		if flags := schedFlagNames(s.Scheduler, s.Flags); len(flags) > 0 {
			b.WriteString(" (" + strings.Join(flags, ",") + ")")
		}
		if s.Persistent > 0 {
			b.WriteString(" persistent " + strconv.Itoa(s.Persistent))
			if m := persistenceMask(s); m != "" {
				b.WriteString(" mask " + m)
			}
		}
		// govs's own, after all ipvsadm prints, and only when set: a
		// service without them is listed as ipvsadm lists it.
		if s.ProxyProtocol != "" {
			b.WriteString(" proxy-protocol " + s.ProxyProtocol)
		}
		if s.TOA {
			b.WriteString(" toa")
		}
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())

	for i := range s.Dests {
		printDest(w, &s.Dests[i], f)
	}
}

func printDest(w io.Writer, d *control.Dest, f listFormat) {
	name := hostPort(d.Address, d.Port)
	if !isIPv6(d.Address) && len(name) > 28 {
		name = name[:28]
	}
	switch {
	case f.stats:
		st := d.Stats
		fmt.Fprintf(w, "  -> %-28s%s%s%s%s%s\n", name,
			largeNum(st.Conns, f.exact), largeNum(st.InPkts, f.exact), largeNum(st.OutPkts, f.exact),
			largeNum(st.InBytes, f.exact), largeNum(st.OutBytes, f.exact))
	case f.rate:
		// ipvsadm prints a server's CPS and packet rates in full and only
		// its byte rates shortened.
		r := d.Rates
		fmt.Fprintf(w, "  -> %-28s %8d %8d %8d%s%s\n", name, r.CPS, r.InPPS, r.OutPPS,
			largeNum(r.InBPS, f.exact), largeNum(r.OutBPS, f.exact))
	case f.thresholds:
		fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", name,
			d.UpperThresh, d.LowerThresh, d.ActiveConns, d.InactiveConns)
	case f.persistentConn:
		fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", name,
			d.Weight, d.PersistConns, d.ActiveConns, d.InactiveConns)
	default:
		fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", name,
			d.Forward, d.Weight, d.ActiveConns, d.InactiveConns)
	}
}

// largeNum is ipvsadm's print_largenum: nine columns, shortened with K, M,
// G or T (powers of 1000) once a number has nine digits, unless --exact.
func largeNum(n uint64, exact bool) string {
	if exact {
		s := strconv.FormatUint(n, 10)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		return fmt.Sprintf("%*s", width, s)
	}
	switch {
	case n < 100_000_000:
		return fmt.Sprintf("%9d", n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%8dK", n/1_000)
	case n < 100_000_000_000:
		return fmt.Sprintf("%8dM", n/1_000_000)
	case n < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", n/1_000_000_000)
	default:
		return fmt.Sprintf("%8dT", n/1_000_000_000_000)
	}
}

// persistenceMask returns the -M value to show, or "" for the default
// (255.255.255.255, /128). govsd may report an IPv4 mask as a dotted mask
// or as a prefix length; ipvsadm shows the dotted mask.
func persistenceMask(s *control.Service) string {
	m := strings.TrimPrefix(s.Netmask, "/")
	if m == "" {
		return ""
	}
	if isIPv6(s.VIP) || s.IPv6 {
		if m == "128" {
			return ""
		}
		return m
	}
	if n, ok := parseNumber(m, 0, 32); ok {
		m = prefixToMask4(n)
	}
	if m == "255.255.255.255" {
		return ""
	}
	return m
}

// printConnections is `ipvsadm -Lc`. With --persistent-conn ipvsadm adds
// persistence-engine columns to the title; govsd has no persistence
// engines, so rows never fill them, as with ipvsadm without one.
func printConnections(w io.Writer, conns []control.Connection, f listFormat) {
	fmt.Fprintln(w, "IPVS connection entries")
	if f.persistentConn {
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %s\n",
			"state", "source", "virtual", "destination")
	}
	for i := range conns {
		c := &conns[i]
		// The kernel shows whole seconds left, rounded down.
		secs := max(c.Expire, 0) / 1000
		expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %s\n",
			c.Protocol, expire, c.State, endpoint(c.Source), endpoint(c.Virtual), endpoint(c.Dest))
	}
}

// printTimeouts is `ipvsadm -L --timeout`.
func printTimeouts(w io.Writer, t control.Timeouts) {
	fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", t.TCP, t.TCPFin, t.UDP)
}

// printCounters prints the data-path and XDP counters, sorted by name, then
// the TCP services' SYN-proxy state and the AF_XDP sockets' ring counters,
// each table under a header line naming its columns (the Prometheus names
// end the same way: govs_service_syn_proxy_engaged, govs_xsk_rx_ring_full_total;
// steer_limit is the gauge govs_xsk_steer_limit, "-" when unlimited).
func printCounters(w io.Writer, k control.Counters) {
	for _, part := range []struct {
		name string
		m    map[string]uint64
	}{{"datapath", k.DataPath}, {"xdp", k.XDP}} {
		names := make([]string, 0, len(part.m))
		for n := range part.m {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(w, "%-8s %-32s %d\n", part.name, n, part.m[n])
		}
	}
	if len(k.SynProxy) > 0 {
		fmt.Fprintf(w, "\n%-24s %-9s %-7s %s\n", "service", "syn_proxy", "engaged", "syns")
		for _, s := range k.SynProxy {
			engaged := "no"
			switch {
			case !s.Capable:
				engaged = "-" // off, or a dr/tun real server: never
			case s.Engaged:
				engaged = "yes"
			}
			fmt.Fprintf(w, "%-24s %-9s %-7s %d\n", s.Service, s.Mode, engaged, s.SYNs)
		}
	}
	if len(k.Rings) > 0 {
		fmt.Fprintf(w, "\n%-15s %5s %12s %12s %15s %12s %13s %11s\n",
			"interface", "queue", "rx_dropped", "rx_ring_full", "fill_ring_empty", "tx_invalid", "tx_ring_empty", "steer_limit")
		for _, r := range k.Rings {
			limit := "-" // unlimited
			if r.SteerLimit > 0 {
				limit = strconv.FormatUint(r.SteerLimit, 10)
			}
			fmt.Fprintf(w, "%-15s %5d %12d %12d %15d %12d %13d %11s\n",
				r.Interface, r.Queue, r.RxDropped, r.RxRingFull, r.FillRingEmpty, r.TxInvalid, r.TxRingEmpty, limit)
		}
	}
	if len(k.FastPath) > 0 {
		// Off: the workers forward the traffic toward the interface.
		fmt.Fprintf(w, "\n%-15s %s\n", "interface", "fast_path")
		for _, f := range k.FastPath {
			state := "on"
			if !f.On {
				state = "off (" + f.Reason + ")"
			}
			fmt.Fprintf(w, "%-15s %s\n", f.Interface, state)
		}
	}
}

// hostPort formats an address and port as ipvsadm -n does: a.b.c.d:port or
// [v6]:port. An address govsd sent that does not parse is shown as sent.
func hostPort(addr string, port uint16) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(a.Unmap(), port).String()
	}
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + strconv.Itoa(int(port))
	}
	return addr + ":" + strconv.Itoa(int(port))
}

// endpoint normalises an "address:port" of the connection table.
func endpoint(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return s
}

func isIPv6(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return strings.Contains(addr, ":")
	}
	return a.Is6() && !a.Is4In6()
}

// sortServices orders services as ipvsadm does (libipvs's
// ipvs_cmp_services): by firewall mark (plain services, mark 0, first),
// IPv4 before IPv6, TCP before UDP, then address and port; each service's
// servers by address and port.
func sortServices(svcs []control.Service) {
	slices.SortStableFunc(svcs, func(a, b control.Service) int {
		return cmp.Or(
			cmp.Compare(a.FwMark, b.FwMark),
			cmp.Compare(family(a.VIP)|boolInt(a.IPv6), family(b.VIP)|boolInt(b.IPv6)),
			cmp.Compare(protoRank(a.Protocol), protoRank(b.Protocol)),
			compareAddr(a.VIP, b.VIP),
			cmp.Compare(a.Port, b.Port),
		)
	})
	for i := range svcs {
		sortDests(svcs[i].Dests)
	}
}

func sortDests(dests []control.Dest) {
	slices.SortStableFunc(dests, func(a, b control.Dest) int {
		return cmp.Or(compareAddr(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
	})
}

func family(addr string) int {
	if isIPv6(addr) {
		return 1
	}
	return 0
}

func protoRank(p string) int {
	switch strings.ToUpper(p) {
	case "TCP":
		return 0
	case "UDP":
		return 1
	}
	return 2
}

func compareAddr(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return strings.Compare(a, b)
	}
	return x.Unmap().Compare(y.Unmap())
}

// schedFlagNames spells scheduler flags as ipvsadm prints them for the
// scheduler: sh-fallback and sh-port for sh, mh-fallback and mh-port for mh,
// flag-1, flag-2 and flag-3 for the others (the same three IPVS bits).
func schedFlagNames(scheduler string, flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		bit := ""
		switch f {
		case "flag-1", "sh-fallback", "mh-fallback":
			bit = "fallback"
		case "flag-2", "sh-port", "mh-port":
			bit = "port"
		}
		switch {
		case bit == "":
		case scheduler == "sh" || scheduler == "mh":
			f = scheduler + "-" + bit
		case bit == "fallback":
			f = "flag-1"
		default:
			f = "flag-2"
		}
		if !contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
