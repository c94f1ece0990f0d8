package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// SYN spreading (include/spread.h): a SYN beyond the SYN budget to a
// service that cannot be SYN-proxied (DR, TUN) is dropped, unless the
// service has a Maglev table here; then the program forwards the SYN to
// the real server of the client's slot, statelessly, and the worker that
// gets the client's next segment starts the connection with the same
// server (a sloppy mh service).
const (
	// SpreadTableSize is the slots of a service's Maglev table: the
	// scheduler's (sched.MaglevTableSize), whose hash the program repeats.
	SpreadTableSize = 65537
	// SpreadServices is how many services may spread SYNs at once.
	SpreadServices = 16
)

// spreadHashPort is SPREAD_HASH_PORT (include/spread.h).
const spreadHashPort = 0x1

// SetSpreadTable writes Maglev table number table (0 to SpreadServices-1):
// dests[slot] is the real server id of each slot plus one, 0 for none.
func (s *Steering) SetSpreadTable(table int, dests []uint32) error {
	if table < 0 || table >= SpreadServices {
		return fmt.Errorf("spread table %d: out of range (0 to %d)", table, SpreadServices-1)
	}
	if len(dests) != SpreadTableSize {
		return fmt.Errorf("spread table %d: %d slots, want %d", table, len(dests), SpreadTableSize)
	}
	keys := make([]uint32, SpreadTableSize)
	for i := range keys {
		keys[i] = uint32(table*SpreadTableSize + i)
	}
	n, err := s.objs.SpreadTables.BatchUpdate(keys, dests, nil)
	if errors.Is(err, ebpf.ErrNotSupported) {
		for i := range keys {
			if err = s.objs.SpreadTables.Update(&keys[i], &dests[i], ebpf.UpdateAny); err != nil {
				break
			}
		}
	} else if err == nil && n != len(keys) {
		err = fmt.Errorf("%d of %d slots written", n, len(keys))
	}
	if err != nil {
		return fmt.Errorf("spread table %d: %w", table, err)
	}
	return nil
}

// SetSpreadService spreads the SYNs over the budget to service id by
// table, hashing the client's port too when hashPort (mh-port).
func (s *Steering) SetSpreadService(id uint32, table int, hashPort bool) error {
	if table < 0 || table >= SpreadServices {
		return fmt.Errorf("spread service %d: table %d out of range", id, table)
	}
	v := steerSpreadService{Table: uint32(table)}
	if hashPort {
		v.Flags |= spreadHashPort
	}
	if err := s.objs.SpreadServices.Update(&id, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("spread service %d: %w", id, err)
	}
	return nil
}

// DelSpreadService stops spreading service id's SYNs (they are dropped
// over the budget again); deleting a service that spreads none is no error.
func (s *Steering) DelSpreadService(id uint32) error {
	if err := s.objs.SpreadServices.Delete(&id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("stop spreading service %d: %w", id, err)
	}
	return nil
}

// SetSpreadDest sets how a spread SYN reaches real server a.DestID: a
// FlowForward (DR: the MACs) or FlowEncap (TUN: the outer addresses, of the
// family of the services' VIPs) action, as for a fast-path flow.
func (s *Steering) SetSpreadDest(a *FlowAction) error {
	if a.Op&(FlowSetSrc|FlowSetDst) != 0 || a.SeqAdd != 0 || a.AckAdd != 0 || a.WinShift != 0 {
		return fmt.Errorf("spread real server %d: only forwarding or encapsulation", a.DestID)
	}
	// flowEntry checks the rest; the flow stands for any SYN of the
	// encapsulation's family.
	f := Flow{Dst: a.Dst, Proto: unix.IPPROTO_TCP}
	v, err := flowEntry(&f, a, 0)
	if err != nil {
		return fmt.Errorf("spread real server %d: %w", a.DestID, err)
	}
	if err := s.objs.SpreadDests.Update(&a.DestID, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("spread real server %d: %w", a.DestID, err)
	}
	return nil
}

// DelSpreadDest stops spreading SYNs to real server id (their slots' SYNs
// are dropped over the budget).
func (s *Steering) DelSpreadDest(id uint32) error {
	if id >= FastDests {
		return nil
	}
	var none steerFlowAction
	if err := s.objs.SpreadDests.Update(&id, &none, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("stop spreading to real server %d: %w", id, err)
	}
	return nil
}
