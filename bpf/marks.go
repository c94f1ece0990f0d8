package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/inet"
)

// MarkRanges is the most (protocol, port range) entries the marks trie
// holds per prefix (MARK_RANGES in maps.h), counting those inherited from
// enclosing prefixes.
const MarkRanges = 16

// MarkRange is one (protocol, port range) of a firewall mark's match and
// the service that takes it.
type MarkRange struct {
	Lo, Hi    uint16 // inclusive, host byte order
	Proto     uint8
	ServiceID uint32
}

// MarkPrefix is a destination prefix of a firewall-mark service and the
// ranges that belong to it.
type MarkPrefix struct {
	Prefix netip.Prefix
	Ranges []MarkRange
}

// markKeyOf returns the trie key of p: IPv4 prefixes become ::ffff:a.b.c.d/96+n.
func markKeyOf(p netip.Prefix) steerMarkKey {
	a := inet.AddrFromNetip(p.Addr())
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return steerMarkKey{Prefixlen: uint32(bits), Addr: [16]uint8(a)}
}

// SetMarks makes the marks trie hold exactly the prefixes of want (the
// firewall-mark services' matches): each prefix's entry lists its own
// ranges and those of every prefix of want that encloses it, so the
// longest match alone answers. Prefixes are masked. Entries no longer
// wanted are deleted; flags of an entry's services (SetMarkFlags) are kept
// by id. It fails, changing nothing, when a prefix would need more than
// MarkRanges entries.
func (s *Steering) SetMarks(want []MarkPrefix) error {
	merged := map[netip.Prefix][]MarkRange{}
	for _, mp := range want {
		p := mp.Prefix.Masked()
		merged[p] = append(merged[p], mp.Ranges...)
	}
	values := make(map[netip.Prefix]*steerMarkValue, len(merged))
	for p := range merged {
		var all []MarkRange
		for q, rs := range merged {
			if q.Addr().Is4() == p.Addr().Is4() && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				all = append(all, rs...)
			}
		}
		if len(all) > MarkRanges {
			return fmt.Errorf("firewall marks: %s falls under %d (protocol, port range) entries, at most %d", p, len(all), MarkRanges)
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].Proto != all[j].Proto {
				return all[i].Proto < all[j].Proto
			}
			return all[i].Lo < all[j].Lo
		})
		v := &steerMarkValue{N: uint32(len(all))}
		for i, r := range all {
			v.R[i] = steerMarkRange{Lo: r.Lo, Hi: r.Hi, Proto: r.Proto, Ev: steerEndpointValue{ServiceId: r.ServiceID}}
		}
		values[p] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markFlags == nil {
		s.markFlags = map[uint32]uint32{}
	}
	for p, v := range values {
		for i := 0; i < int(v.N); i++ {
			v.R[i].Ev.Flags = s.markFlags[v.R[i].Ev.ServiceId]
		}
		key := markKeyOf(p)
		if err := s.objs.Marks.Update(&key, v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("firewall mark prefix %s: %w", p, err)
		}
	}
	for p := range s.markPrefixes {
		if _, keep := values[p]; keep {
			continue
		}
		key := markKeyOf(p)
		if err := s.objs.Marks.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("firewall mark prefix %s: %w", p, err)
		}
	}
	s.markPrefixes = values
	return nil
}

// SetMarkFlags sets the VIP_SYNPROXY_* flags of every entry of firewall-mark
// service serviceID (none today: the director never engages the SYN proxy
// of fwmark services, see dataplane/synguard.go; kept for symmetry with
// SetVIPFlags and tests).
func (s *Steering) SetMarkFlags(serviceID, flags uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markFlags == nil {
		s.markFlags = map[uint32]uint32{}
	}
	s.markFlags[serviceID] = flags
	for p, v := range s.markPrefixes {
		changed := false
		for i := 0; i < int(v.N); i++ {
			if v.R[i].Ev.ServiceId == serviceID && v.R[i].Ev.Flags != flags {
				v.R[i].Ev.Flags, changed = flags, true
			}
		}
		if changed {
			key := markKeyOf(p)
			if err := s.objs.Marks.Update(&key, v, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("firewall mark prefix %s: %w", p, err)
			}
		}
	}
	return nil
}

// LookupMark returns the service id of the firewall mark a packet to
// addr:port of protocol proto carries, as the XDP program finds it: for
// tests and diagnostics.
func (s *Steering) LookupMark(addr netip.Addr, port uint16, proto uint8) (uint32, bool) {
	var v steerMarkValue
	key := markKeyOf(netip.PrefixFrom(addr, addr.BitLen()))
	if err := s.objs.Marks.Lookup(&key, &v); err != nil {
		return 0, false
	}
	for i := 0; i < int(v.N) && i < MarkRanges; i++ {
		r := v.R[i]
		if r.Proto == proto && port >= r.Lo && port <= r.Hi {
			return r.Ev.ServiceId, true
		}
	}
	return 0, false
}
