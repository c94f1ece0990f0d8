package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// ServiceSpec is a virtual service as the control plane describes it.
type ServiceSpec struct {
	Name string
	// FwMark, when not 0, makes this a firewall-mark service: it takes the
	// packets Match matches, and VIP, Port and Proto are unused (invalid,
	// 0, 0). Persistence binds a client across every address, port and
	// protocol of the mark, and a real server of port 0 keeps the packet's
	// destination port.
	FwMark    uint32
	Match     []MarkMatch
	VIP       netip.Addr
	Port      uint16    // 0: every port (persistent services only)
	Proto     lvs.Proto // lvs.ProtoTCP or lvs.ProtoUDP
	Scheduler string
	Flags     sched.Flags
	Fwd       lvs.Fwd
	// Persistence > 0 makes the service persistent (ipvsadm -p) with the
	// client address masked to PersistBits leading bits (ipvsadm -M).
	Persistence time.Duration
	PersistBits int
	LocalAddrs  []netip.Addr // full-NAT source addresses
	SynProxy    SynProxyMode
	// ProxyProtocol (full-NAT TCP only) sends the real server a PROXY
	// header with the client's and the VIP's addresses and ports in front
	// of the client's bytes; TOA puts the client's address and port in a
	// TCP option (kind 254) of the segment that completes the real
	// server's handshake (proxyproto.go).
	ProxyProtocol lvs.ProxyProtocol
	TOA           bool
	// Sloppy: a TCP packet other than a SYN or RST of an unknown
	// connection starts one toward a DR or TUN real server (IPVS's
	// sloppy_tcp); always so with a consistent scheduler (mh).
	Sloppy bool
	Dests  []DestSpec
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

// MarkMatch is one part of a firewall mark's match: packets to an address
// of Prefix, a destination port in Lo..Hi and protocol Proto carry it.
type MarkMatch struct {
	Prefix netip.Prefix
	Lo, Hi uint16
	Proto  lvs.Proto
}

// MaxMarkMatches bounds the entries of all fwmark services together: the
// workers scan them linearly (after the plain services' hash lookup
// misses), longest prefix first.
const MaxMarkMatches = 1024

// DestSpec is a real server of a service.
type DestSpec struct {
	Addr         netip.Addr
	Port         uint16
	Weight       int
	Fwd          lvs.Fwd
	Upper, Lower uint32
}

// serviceKey identifies a service by what the XDP program matches.
type serviceKey struct {
	Addr  inet.Addr
	Port  uint16
	Proto lvs.Proto
}

// Service is a virtual service in the data path. Fields other than the
// atomics are fixed for the life of the value; a change builds a new
// snapshot.
type Service struct {
	ID          uint32
	Name        string
	FwMark      uint32 // 0 for a plain service; VIP, Port and Proto are then 0
	Match       []MarkMatch
	VIP         inet.Addr
	Port        uint16
	Proto       lvs.Proto
	Fwd         lvs.Fwd
	SchedName   string
	Flags       sched.Flags
	Sched       sched.Scheduler
	Persistence time.Duration
	PersistBits int
	LocalAddrs  []inet.Addr
	SynProxy    SynProxyMode
	// ProxyProtocol and TOA: ServiceSpec's.
	ProxyProtocol lvs.ProxyProtocol
	TOA           bool
	// Sloppy: mid-flow TCP packets of unknown connections are scheduled
	// (ServiceSpec.Sloppy, or a consistent scheduler).
	Sloppy bool
	Dests  []*Dest // the scheduler's current list, in config order
}

// Dest is a real server in the data path.
type Dest struct {
	*sched.Dest
	ID      uint32
	Service uint32
	Proto   lvs.Proto   // the service's; 0 for an fwmark service's (see Protos)
	Protos  []lvs.Proto // an fwmark service's protocols
	Fwd     lvs.Fwd
	// Removed dests stay in the table while connections may still refer
	// to them (draining); they are out of the scheduler's list.
	Removed atomic.Bool
	stats   *destStats
	// removedAt (nanotime) and reclaimed: when it was removed, and
	// whether its id is free again (reclaim.go). Under Director.mu.
	removedAt int64
	reclaimed bool
}

// snapshot is the immutable view of services and dests that workers read
// with one atomic load per batch.
type snapshot struct {
	byKey  map[serviceKey]*Service
	byMark map[uint32]*Service // fwmark services
	// marks4 and marks6 are the fwmark services' matches per family,
	// longest prefix first (a prefix inside another may take other ports).
	marks4, marks6 []markEntry
	locals         map[inet.Addr]bool // full-NAT local addresses
	services       []*Service         // by ID; nil once removed
	dests          []*Dest            // by ID; never shrinks (ids of drained ones are reused: reclaim.go)
}

// markEntry is one MarkMatch of an fwmark service, ready for lookup.
type markEntry struct {
	addr   inet.Addr // masked to bits
	bits   int       // prefix length within the family
	lo, hi uint16
	proto  lvs.Proto
	svc    *Service
}

// lookup returns the service of a packet to addr:port of protocol proto:
// a plain service's (addr:port, then addr:0), else the firewall mark's
// that matches. Allocation-free: the marks are a short slice scanned in
// order (MaxMarkMatches), skipped entirely while there are none.
func (s *snapshot) lookup(addr inet.Addr, port uint16, proto lvs.Proto) *Service {
	if svc := s.byKey[serviceKey{addr, port, proto}]; svc != nil {
		return svc
	}
	if svc := s.byKey[serviceKey{addr, 0, proto}]; svc != nil {
		return svc
	}
	return s.lookupMark(addr, port, proto)
}

func (s *snapshot) lookupMark(addr inet.Addr, port uint16, proto lvs.Proto) *Service {
	list := s.marks6
	if addr.Is4() {
		list = s.marks4
	}
	for i := range list {
		e := &list[i]
		if e.proto == proto && port >= e.lo && port <= e.hi && addr.Mask(e.bits) == e.addr {
			return e.svc
		}
	}
	return nil
}

// familyAddr returns an address that stands for the family of an
// fwmark service (its first prefix's), for the family checks.
func (sp *ServiceSpec) familyAddr() netip.Addr {
	if sp.FwMark != 0 {
		if len(sp.Match) == 0 {
			return netip.Addr{}
		}
		return sp.Match[0].Prefix.Addr()
	}
	return sp.VIP
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
	if sp.FwMark != 0 {
		if len(sp.Match) == 0 {
			return fmt.Errorf("service %q: fwmark %d matches nothing", sp.Name, sp.FwMark)
		}
		fam := sp.Match[0].Prefix.Addr().Is4()
		for _, m := range sp.Match {
			if !m.Prefix.IsValid() || m.Prefix.Addr().Is4() != fam {
				return fmt.Errorf("service %q: fwmark %d: prefixes of one family only", sp.Name, sp.FwMark)
			}
			if !serviceProto(m.Proto) {
				return fmt.Errorf("service %q: fwmark %d: protocol %d not supported", sp.Name, sp.FwMark, m.Proto)
			}
			if m.Lo > m.Hi {
				return fmt.Errorf("service %q: fwmark %d: empty port range %d-%d", sp.Name, sp.FwMark, m.Lo, m.Hi)
			}
		}
	} else {
		if !sp.VIP.IsValid() {
			return fmt.Errorf("service %q: no vip", sp.Name)
		}
		if !serviceProto(sp.Proto) {
			return fmt.Errorf("service %q: protocol %d not supported", sp.Name, sp.Proto)
		}
	}
	fam := sp.familyAddr()
	for _, d := range sp.Dests {
		if d.Addr.Is4() != fam.Is4() {
			return fmt.Errorf("service %q: real server %s is not of the vip's address family", sp.Name, d.Addr)
		}
	}
	return nil
}

// serviceProto reports whether a service may have protocol proto (the
// specs keep the wire's byte).
func serviceProto(proto lvs.Proto) bool { return slices.Contains(lvs.ServiceProtos, proto) }
