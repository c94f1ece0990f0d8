package dataplane

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/sched"
)

// ServiceSpec is a virtual service as the control plane describes it.
type ServiceSpec struct {
	Name      string
	VIP       netip.Addr
	Port      uint16 // 0: every port (persistent services only)
	Proto     uint8  // 6 or 17
	Scheduler string
	Flags     sched.Flags
	Fwd       conntrack.Fwd
	// Persistence > 0 makes the service persistent (ipvsadm -p) with the
	// client address masked to PersistBits leading bits (ipvsadm -M).
	Persistence time.Duration
	PersistBits int
	LocalAddrs  []netip.Addr // full-NAT source addresses
	SynProxy    SynProxyMode
	Dests       []DestSpec
}

// SynProxyMode says when the director answers a TCP service's SYNs itself
// with SYN cookies (NAT and full-NAT only: DR and TUN replies bypass it).
type SynProxyMode uint8

const (
	// SynProxyAuto: while the service is under SYN pressure (director
	// thresholds), and for SYNs over the rate the workers take.
	SynProxyAuto SynProxyMode = iota
	// SynProxyOn: always.
	SynProxyOn
	// SynProxyOff: never; SYNs over the workers' rate are dropped.
	SynProxyOff
)

func (m SynProxyMode) String() string {
	switch m {
	case SynProxyAuto:
		return "auto"
	case SynProxyOn:
		return "on"
	case SynProxyOff:
		return "off"
	}
	return fmt.Sprintf("SynProxyMode(%d)", uint8(m))
}

// DestSpec is a real server of a service.
type DestSpec struct {
	Addr         netip.Addr
	Port         uint16
	Weight       int
	Fwd          conntrack.Fwd
	Upper, Lower uint32
}

// serviceKey identifies a service by what the XDP program matches.
type serviceKey struct {
	Addr  inet.Addr
	Port  uint16
	Proto uint8
}

// Service is a virtual service in the data path. Fields other than the
// atomics are fixed for the life of the value; a change builds a new
// snapshot.
type Service struct {
	ID          uint32
	Name        string
	VIP         inet.Addr
	Port        uint16
	Proto       uint8
	Fwd         conntrack.Fwd
	SchedName   string
	Flags       sched.Flags
	Sched       sched.Scheduler
	Persistence time.Duration
	PersistBits int
	LocalAddrs  []inet.Addr
	SynProxy    SynProxyMode
	Dests       []*Dest // the scheduler's current list, in config order
}

// Dest is a real server in the data path.
type Dest struct {
	*sched.Dest
	ID      uint32
	Service uint32
	Proto   uint8
	Fwd     conntrack.Fwd
	// Removed dests stay in the table while connections may still refer
	// to them (draining); they are out of the scheduler's list.
	Removed atomic.Bool
	stats   *destStats
}

// snapshot is the immutable view of services and dests that workers read
// with one atomic load per batch.
type snapshot struct {
	byKey    map[serviceKey]*Service
	locals   map[inet.Addr]bool // full-NAT local addresses
	services []*Service         // by ID; nil once removed
	dests    []*Dest            // by ID; never shrinks (IDs are not reused)
}

func (s *snapshot) lookup(addr inet.Addr, port uint16, proto uint8) *Service {
	if svc := s.byKey[serviceKey{addr, port, proto}]; svc != nil {
		return svc
	}
	return s.byKey[serviceKey{addr, 0, proto}]
}

func (s *snapshot) dest(id uint32) *Dest {
	if int(id) < len(s.dests) {
		return s.dests[id]
	}
	return nil
}

func (s *snapshot) service(id uint32) *Service {
	if int(id) < len(s.services) {
		return s.services[id]
	}
	return nil
}

func validateSpec(sp *ServiceSpec) error {
	if !sp.VIP.IsValid() {
		return fmt.Errorf("service %q: no vip", sp.Name)
	}
	if sp.Proto != 6 && sp.Proto != 17 {
		return fmt.Errorf("service %q: protocol %d not supported", sp.Name, sp.Proto)
	}
	for _, d := range sp.Dests {
		if d.Addr.Is4() != sp.VIP.Is4() {
			return fmt.Errorf("service %q: real server %s is not of the vip's address family", sp.Name, d.Addr)
		}
	}
	return nil
}
