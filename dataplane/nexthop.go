package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/inet"
)

// NextHop says how to put a frame on the wire toward an address.
type NextHop struct {
	Iface  int // index into the director's interfaces
	SrcMAC [6]byte
	DstMAC [6]byte
	MTU    int
	// Src is the director's source address toward the destination (the
	// route's preferred source), the outer source of a tunnel.
	Src inet.Addr
}

// resolver keeps next hops toward the addresses the data path sends to (real
// servers) resolved from the kernel's route and neighbour tables. Workers read
// an immutable map through one atomic load; a miss is reported on a channel
// without blocking or allocating, and the resolver picks the address up.
type resolver struct {
	log    *slog.Logger
	ifaces []*Interface

	table atomic.Pointer[map[inet.Addr]NextHop]
	miss  chan inet.Addr

	mu     sync.Mutex
	wanted map[inet.Addr]struct{}
	warned map[inet.Addr]string
	// onChange, when set, is called (with mu held) after a refresh that
	// changed or lost a next hop the previous table had: the XDP fast
	// path's entries embed next hops and must be rewritten.
	onChange func()
}

func newResolver(log *slog.Logger, ifaces []*Interface) *resolver {
	r := &resolver{
		log:    log,
		ifaces: ifaces,
		miss:   make(chan inet.Addr, 1024),
		wanted: map[inet.Addr]struct{}{},
		warned: map[inet.Addr]string{},
	}
	empty := map[inet.Addr]NextHop{}
	r.table.Store(&empty)
	return r
}

// lookup is called by workers per packet.
func (r *resolver) lookup(a inet.Addr) (NextHop, bool) {
	nh, ok := (*r.table.Load())[a]
	if !ok {
		select {
		case r.miss <- a:
		default:
		}
	}
	return nh, ok
}

// want sets the addresses to keep resolved and resolves new ones now.
func (r *resolver) want(addrs []inet.Addr) {
	next := make(map[inet.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		next[a] = struct{}{}
	}
	r.mu.Lock()
	same := maps.Equal(next, r.wanted)
	r.wanted = next
	r.mu.Unlock()
	if !same {
		r.refresh()
	}
}

func (r *resolver) run(ctx context.Context) {
	neighUpdates := make(chan netlink.NeighUpdate, 64)
	routeUpdates := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.NeighSubscribe(neighUpdates, done); err != nil {
		r.log.Warn("neighbour updates unavailable, polling only", "err", err)
	}
	if err := netlink.RouteSubscribe(routeUpdates, done); err != nil {
		r.log.Warn("route updates unavailable, polling only", "err", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-r.miss:
			r.mu.Lock()
			_, known := r.wanted[a]
			r.mu.Unlock()
			if known {
				r.refresh()
			}
		case <-neighUpdates:
			r.refresh()
		case <-routeUpdates:
			r.refresh()
		case <-tick.C:
			r.refresh()
		}
	}
}

// refresh recomputes every wanted next hop and publishes a new table.
func (r *resolver) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[inet.Addr]NextHop, len(r.wanted))
	for a := range r.wanted {
		nh, err := r.resolve(a)
		if errors.Is(err, errNeighPending) {
			r.log.Debug("next hop being resolved", "addr", a.String())
			r.warned[a] = err.Error()
			continue
		}
		if err != nil {
			if r.warned[a] != err.Error() {
				r.warned[a] = err.Error()
				r.log.Warn("next hop unresolved", "addr", a.String(), "err", err)
			}
			continue
		}
		if _, was := r.warned[a]; was {
			delete(r.warned, a)
			r.log.Debug("next hop resolved", "addr", a.String(), "iface", r.ifaces[nh.Iface].Name,
				"mac", net.HardwareAddr(nh.DstMAC[:]).String())
		}
		next[a] = nh
	}
	old := r.table.Swap(&next)
	if r.onChange != nil {
		for a, nh := range *old {
			if now, ok := next[a]; !ok || now != nh {
				r.onChange()
				break
			}
		}
	}
}

var errNeighPending = errors.New("neighbour resolution in progress")

func (r *resolver) resolve(a inet.Addr) (NextHop, error) {
	ip := net.IP(a.Netip().AsSlice())
	routes, err := netlink.RouteGet(ip)
	if err != nil {
		return NextHop{}, err
	}
	if len(routes) == 0 {
		return NextHop{}, errors.New("no route")
	}
	rt := routes[0]
	idx := -1
	for i, ifc := range r.ifaces {
		if ifc.Index == rt.LinkIndex {
			idx = i
		}
	}
	if idx < 0 {
		return NextHop{}, errors.New("route leaves through an interface govsd does not serve")
	}
	gw := ip
	if rt.Gw != nil {
		gw = rt.Gw
	}
	family := netlink.FAMILY_V4
	if gw.To4() == nil {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(rt.LinkIndex, family)
	if err != nil {
		return NextHop{}, err
	}
	for _, n := range neighs {
		if !n.IP.Equal(gw) || len(n.HardwareAddr) != 6 {
			continue
		}
		if n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) == 0 {
			continue
		}
		ifc := r.ifaces[idx]
		nh := NextHop{Iface: idx, SrcMAC: ifc.CurrentMAC(), DstMAC: [6]byte(n.HardwareAddr), MTU: ifc.MTU}
		if src, ok := netip.AddrFromSlice(rt.Src); ok && rt.Src != nil {
			nh.Src = inet.AddrFromNetip(src.Unmap())
		} else if a.Is4() {
			nh.Src = ifc.Addr4
		} else {
			nh.Src = ifc.Addr6
		}
		return nh, nil
	}
	// A managed neighbour entry makes the kernel resolve the address and keep
	// it reachable on its own (Linux 5.16+), without us sending anything.
	err = netlink.NeighSet(&netlink.Neigh{
		LinkIndex: rt.LinkIndex,
		Family:    family,
		IP:        gw,
		FlagsExt:  netlink.NTF_EXT_MANAGED,
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return NextHop{}, err
	}
	return NextHop{}, errNeighPending
}

// waitResolved waits until every wanted address has a next hop, or timeout.
func (r *resolver) waitResolved(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		n := len(r.wanted)
		r.mu.Unlock()
		if len(*r.table.Load()) >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
