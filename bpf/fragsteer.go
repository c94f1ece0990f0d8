package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/inet"
)

// Fragments (include/frag.h). A later fragment of a datagram carries no
// ports, so the steering program matches it by address alone: frag_addrs
// holds every VIP address (a fragment to it is a request) and every NAT or
// full-NAT real server address (a fragment from it, to anything but an own
// address, is a reply). AddVIP, DelVIP, AddReal and DelReal keep it, with a
// reference count per address and role, since several services share a
// VIP address and a real server may serve several ports.

// frag_addrs values, as frag.h defines them.
const (
	fragAddrVIP  = 0x1
	fragAddrReal = 0x2
)

// fragRef counts the vips and reals entries of one address.
type fragRef struct{ vips, reals int }

// fragAddrRef adds dv VIP and dr real-server references to addr and
// writes its frag_addrs entry, or deletes it with the last reference.
// s.mu must be held.
func (s *Steering) fragAddrRef(addr inet.Addr, dv, dr int) error {
	if s.fragRefs == nil {
		s.fragRefs = make(map[inet.Addr]fragRef)
	}
	r := s.fragRefs[addr]
	r.vips = max(r.vips+dv, 0)
	r.reals = max(r.reals+dr, 0)
	var flags uint32
	if r.vips > 0 {
		flags |= fragAddrVIP
	}
	if r.reals > 0 {
		flags |= fragAddrReal
	}
	key := steerAddrKey{Addr: addr}
	if flags == 0 {
		delete(s.fragRefs, addr)
		if err := s.objs.FragAddrs.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("fragment address %s: %w", addr, err)
		}
		return nil
	}
	s.fragRefs[addr] = r
	if err := s.objs.FragAddrs.Update(key, flags, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fragment address %s: %w", addr, err)
	}
	return nil
}

// FragAddrFlags returns the frag_addrs entry of addr (fragAddrVIP,
// fragAddrReal), 0 when there is none: for tests and diagnostics.
func (s *Steering) FragAddrFlags(addr inet.Addr) uint32 {
	var v uint32
	if err := s.objs.FragAddrs.Lookup(steerAddrKey{Addr: addr}, &v); err != nil {
		return 0
	}
	return v
}
