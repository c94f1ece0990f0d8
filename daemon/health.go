package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/healthcheck"
	"github.com/govs/govs/lvs"
)

// healthState runs the health checks of the real servers and feeds their
// transitions into the effective configuration (daemon.effectiveSpecs).
type healthState struct {
	m *healthcheck.Manager

	mu          sync.Mutex
	transitions map[string]uint64 // by destKey
	viaVIP      map[string]*vipRoute
	stopped     bool // stopHealth ran (it runs when the data path stops and again at exit)
}

// vipRoute is the policy route that sends a check_via_vip probe to the VIP
// through one real server: packets marked mark look up table, where the VIP
// is routed via the real server's address, so the probe leaves with the
// VIP as destination and the real server's MAC, as a client's packet does
// after govsd's DR rewrite.
type vipRoute struct {
	mark  uint32
	table int
	rule  *netlink.Rule
	route *netlink.Route
}

// Marks and tables for check_via_vip; chosen out of the way of common ones.
const (
	viaVIPMarkBase  = 0x6f760000
	viaVIPTableBase = 26000
)

func (d *Daemon) startHealth() {
	d.health = &healthState{transitions: map[string]uint64{}, viaVIP: map[string]*vipRoute{}}
	d.health.m = healthcheck.NewManager(nil, d.onHealthChange, d.log)
	d.mu.Lock()
	d.setHealthTargets()
	d.mu.Unlock()
}

func (d *Daemon) stopHealth() {
	if d.health == nil {
		return
	}
	d.health.mu.Lock()
	if d.health.stopped {
		d.health.mu.Unlock()
		return
	}
	d.health.stopped = true
	d.health.mu.Unlock()
	d.health.m.Close()
	d.health.mu.Lock()
	for key, r := range d.health.viaVIP {
		r.remove()
		delete(d.health.viaVIP, key)
	}
	d.health.mu.Unlock()
}

// onHealthChange applies a real server's up/down transition.
func (d *Daemon) onHealthChange(tr healthcheck.Transition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, known := d.health.m.State(tr.Key); !known {
		return // removed while this transition was on its way
	}
	d.up[tr.Key] = tr.Up
	d.health.mu.Lock()
	d.health.transitions[tr.Key]++
	d.health.mu.Unlock()
	if tr.Up {
		d.log.Info("real server up", "server", tr.Key, "reason", tr.Reason)
	} else {
		d.log.Warn("real server down", "server", tr.Key, "reason", tr.Reason)
	}
	if err := d.apply(); err != nil {
		d.log.Error("apply health change", "server", tr.Key, "err", err)
	}
}

// setHealthTargets gives the checker the current real servers. Callers hold d.mu.
func (d *Daemon) setHealthTargets() {
	if d.health == nil {
		return
	}
	var targets []healthcheck.Target
	keep := map[string]bool{}
	for _, s := range d.services {
		for i := range s.spec.Dests {
			ds := &s.spec.Dests[i]
			if i >= len(s.checks) || s.checks[i].Probe == nil { // type none
				continue
			}
			key := destKey(&s.spec, ds)
			t := healthcheck.Target{Key: key, Service: s.spec.Name, Addr: ds.Addr, Port: s.checks[i].Port, Check: s.checks[i].Spec()}
			if t.Port == 0 {
				t.Port = ds.Port
			}
			if s.checkViaVIP && ds.Fwd == lvs.FwdDR {
				r, err := d.health.routeViaVIP(key, s.spec.VIP, ds.Addr)
				if err != nil {
					d.log.Error("check_via_vip: cannot route the probe, checking the real server's own address", "server", key, "err", err)
				} else {
					t.Addr, t.Mark = s.spec.VIP, r.mark
					keep[key] = true
				}
			}
			targets = append(targets, t)
		}
	}
	d.health.m.Set(targets)
	d.health.mu.Lock()
	for key, r := range d.health.viaVIP {
		if !keep[key] {
			r.remove()
			delete(d.health.viaVIP, key)
		}
	}
	d.health.mu.Unlock()
	// Forget the state of servers that are no longer checked.
	for key := range d.up {
		if _, known := d.health.m.State(key); !known {
			delete(d.up, key)
		}
	}
}

// routeViaVIP installs (once) the policy route of a check_via_vip probe.
func (h *healthState) routeViaVIP(key string, vip, rip netip.Addr) (*vipRoute, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.viaVIP[key]; r != nil && r.route.Dst.IP.Equal(vip.AsSlice()) && r.route.Gw.Equal(rip.AsSlice()) {
		return r, nil
	}
	if r := h.viaVIP[key]; r != nil {
		r.remove()
	}
	used := map[uint32]bool{}
	for _, r := range h.viaVIP {
		used[r.mark] = true
	}
	n := uint32(1)
	for used[viaVIPMarkBase+n] {
		n++
	}
	routes, err := netlink.RouteGet(rip.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, fmt.Errorf("no route to %s: %v", rip, err)
	}
	family := unix.AF_INET
	if vip.Is6() {
		family = unix.AF_INET6
	}
	bits := vip.BitLen()
	r := &vipRoute{mark: viaVIPMarkBase + n, table: viaVIPTableBase + int(n)}
	r.route = &netlink.Route{
		Dst:       &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)},
		Gw:        rip.AsSlice(),
		LinkIndex: routes[0].LinkIndex,
		Table:     r.table,
		Flags:     int(netlink.FLAG_ONLINK),
	}
	if err := netlink.RouteReplace(r.route); err != nil {
		return nil, fmt.Errorf("route %s via %s in table %d: %w", vip, rip, r.table, err)
	}
	r.rule = netlink.NewRule()
	r.rule.Family = family
	r.rule.Mark = r.mark
	r.rule.Mask = &[]uint32{0xffffffff}[0]
	r.rule.Table = r.table
	r.rule.Priority = 100 + int(n)
	if err := netlink.RuleAdd(r.rule); err != nil && err != unix.EEXIST {
		netlink.RouteDel(r.route)
		return nil, fmt.Errorf("rule fwmark %#x lookup %d: %w", r.mark, r.table, err)
	}
	h.viaVIP[key] = r
	return r, nil
}

func (r *vipRoute) remove() {
	netlink.RuleDel(r.rule)
	netlink.RouteDel(r.route)
}

// healthMetrics returns, per destKey, whether it is up and how many
// transitions it went through.
func (d *Daemon) healthMetrics() (up map[string]bool, transitions map[string]uint64) {
	d.mu.Lock()
	up = map[string]bool{}
	for _, s := range d.services {
		for i := range s.spec.Dests {
			up[destKey(&s.spec, &s.spec.Dests[i])] = d.isUp(destKey(&s.spec, &s.spec.Dests[i]))
		}
	}
	d.mu.Unlock()
	transitions = map[string]uint64{}
	if d.health != nil {
		d.health.mu.Lock()
		for k, v := range d.health.transitions {
			transitions[k] = v
		}
		d.health.mu.Unlock()
	}
	return up, transitions
}
