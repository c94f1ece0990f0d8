package main

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/govs/govs/control"
)

// The header lines ipvsadm prints; scripts that parse `ipvsadm -Ln` skip them
// by count, so they are kept as they are.
const (
	ipvsVersion   = "IP Virtual Server version 1.2.1 (size=4096)"
	serviceHeader = "Prot LocalAddress:Port Scheduler Flags"
	destHeader    = "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
)

func hostPort(addr string, port uint16) string {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), port).String()
}

func printServices(w io.Writer, svcs []control.Service) {
	fmt.Fprintln(w, ipvsVersion)
	fmt.Fprintln(w, serviceHeader)
	fmt.Fprintln(w, destHeader)
	for _, s := range svcs {
		line := fmt.Sprintf("%s  %s %s", s.Protocol, hostPort(s.VIP, s.Port), s.Scheduler)
		if len(s.Flags) > 0 {
			line += " (" + strings.Join(s.Flags, ",") + ")"
		}
		if s.Persistent > 0 {
			line += " persistent " + strconv.Itoa(s.Persistent)
			if s.Netmask != "" && s.Netmask != "255.255.255.255" && s.Netmask != "128" {
				line += " mask " + s.Netmask
			}
		}
		fmt.Fprintln(w, line)
		for _, d := range s.Dests {
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n",
				hostPort(d.Address, d.Port), d.Forward, d.Weight, d.ActiveConns, d.InactiveConns)
		}
	}
}

func printConnections(w io.Writer, conns []control.Connection) {
	fmt.Fprintln(w, "IPVS connection entries")
	fmt.Fprintln(w, "pro expire state       source             virtual            destination")
	for _, c := range conns {
		secs := (c.Expire + 999) / 1000
		fmt.Fprintf(w, "%-3s %02d:%02d  %-11s %-18s %-18s %s\n",
			c.Protocol, secs/60, secs%60, c.State, c.Source, c.Virtual, c.Dest)
	}
}

func printCounters(w io.Writer, k control.Counters) {
	for _, part := range []struct {
		name string
		m    map[string]uint64
	}{{"datapath", k.DataPath}, {"xdp", k.XDP}} {
		names := make([]string, 0, len(part.m))
		for n := range part.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "%-8s %-20s %d\n", part.name, n, part.m[n])
		}
	}
}
