package dataplane

import (
	"github.com/govs/govs/bpf"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// SYN spreading (bpf/include/spread.h). A DR or TUN service cannot be
// SYN-proxied, so under a flood its SYNs beyond the SYN budget were
// dropped, a legitimate client's with the flood's. A TCP service scheduled
// by mh (sloppy, as every mh service is) is spread instead: the XDP program
// holds a copy of the service's Maglev table and, for each of its real
// servers that takes connections, the forwarding toward it, and sends such
// a SYN to the server the workers' mh would pick for the client, keeping
// no state. The client's next segment reaches a worker without a
// connection; the service being sloppy, mh schedules it to the same server
// (as for a flow another director of an ECMP group started), and the
// connection goes on there. The real server's own SYN cookies answer the
// flood.
//
// What is not spread: fwmark services, services whose real servers are not
// all DR or TUN (the SYN proxy is their defence), real servers without a
// resolved next hop or behind an interface that cannot take redirected
// frames, and everything with the fast path off. The program does not
// rehash (mh-fallback): a SYN whose slot's server is unavailable is
// dropped over the budget, as before.

// spreadMaps are the steering program's spreading maps (bpf.Steering's
// methods), behind an interface so that tests can watch what is written.
type spreadMaps interface {
	SetSpreadTable(table int, dests []uint32) error
	SetSpreadService(id uint32, table int, hashPort bool) error
	DelSpreadService(id uint32) error
	SetSpreadDest(a *bpf.FlowAction) error
	DelSpreadDest(id uint32) error
}

// spreadService is a service whose SYNs the program spreads.
type spreadService struct {
	table    int    // its table among the program's SpreadServices
	first    *int32 // the first slot of the Maglev table copied there, to tell a new one
	hashPort bool   // mh-port
}

// initSpread readies syncSpread to write to maps, all tables free.
func (d *Director) initSpread(maps spreadMaps) {
	d.spreadTo = maps
	d.spread = map[uint32]*spreadService{}
	d.spreadDests = map[uint32]bpf.FlowAction{}
	d.spreadFree = d.spreadFree[:0]
	for t := bpf.SpreadServices - 1; t >= 0; t-- {
		d.spreadFree = append(d.spreadFree, t)
	}
}

// spreads reports whether svc's SYNs over the budget are spread: a plain TCP
// service scheduled by mh whose real servers all forward by DR or TUN.
func spreads(svc *Service) bool {
	if svc.FwMark != 0 || svc.Proto != lvs.ProtoTCP || !sched.Consistent(svc.SchedName) || len(svc.Dests) == 0 {
		return false
	}
	for _, dst := range svc.Dests {
		if dst.Fwd != lvs.FwdDR && dst.Fwd != lvs.FwdTun {
			return false
		}
	}
	return true
}

// syncSpread brings the program's spreading up to date with s: a table for
// each service that spreads (while tables last), an entry for each of their
// real servers that takes connections now. Under d.mu; after Apply and
// with the housekeeping, which follows weights, health and next hops.
func (d *Director) syncSpread(s *snapshot) {
	if d.spreadTo == nil || !d.opts.FastPath {
		return
	}
	want := map[uint32]*Service{}
	for _, svc := range s.services {
		if svc != nil && spreads(svc) {
			want[svc.ID] = svc
		}
	}
	for id, sp := range d.spread {
		if want[id] == nil {
			if err := d.spreadTo.DelSpreadService(id); err != nil {
				d.log.Warn("syn spreading", "err", err)
				continue
			}
			d.spreadFree = append(d.spreadFree, sp.table)
			delete(d.spread, id)
		}
	}
	dests := map[uint32]bpf.FlowAction{}
	for id, svc := range want {
		sp := d.spread[id]
		if sp == nil {
			if len(d.spreadFree) == 0 {
				if !d.spreadWarned {
					d.spreadWarned = true
					d.log.Warn("syn spreading: more DR/TUN mh services than the XDP program has tables for; the others' SYNs over syn_limit are dropped",
						"service", svc.Name, "tables", bpf.SpreadServices)
				}
				continue
			}
			sp = &spreadService{table: d.spreadFree[len(d.spreadFree)-1]}
			d.spreadFree = d.spreadFree[:len(d.spreadFree)-1]
			d.spread[id] = sp
		}
		sdests, table, _ := sched.MaglevTable(svc.Sched)
		var first *int32
		if len(table) > 0 {
			first = &table[0]
		}
		hashPort := svc.Flags&sched.FlagPort != 0 // mh-port
		if first != sp.first || hashPort != sp.hashPort {
			slots := make([]uint32, bpf.SpreadTableSize)
			if len(table) == len(slots) {
				for i, di := range table {
					slots[i] = sdests[di].ID + 1
				}
			}
			if err := d.spreadTo.SetSpreadTable(sp.table, slots); err != nil {
				d.log.Warn("syn spreading", "service", svc.Name, "err", err)
				continue
			}
			if err := d.spreadTo.SetSpreadService(id, sp.table, hashPort); err != nil {
				d.log.Warn("syn spreading", "service", svc.Name, "err", err)
				continue
			}
			sp.first, sp.hashPort = first, hashPort
		}
		for _, dst := range svc.Dests {
			if a, ok := d.spreadAction(svc, dst); ok {
				dests[dst.ID] = a
			}
		}
	}
	for id, a := range dests {
		if old, ok := d.spreadDests[id]; ok && old == a {
			continue
		}
		if err := d.spreadTo.SetSpreadDest(&a); err != nil {
			d.log.Warn("syn spreading", "real server id", id, "err", err)
			continue
		}
		d.spreadDests[id] = a
	}
	for id := range d.spreadDests {
		if _, ok := dests[id]; !ok {
			if err := d.spreadTo.DelSpreadDest(id); err != nil {
				d.log.Warn("syn spreading", "real server id", id, "err", err)
				continue
			}
			delete(d.spreadDests, id)
		}
	}
}

// spreadAction is how the program sends a spread SYN of svc to real server
// dst, as a worker would: DR's MACs, or TUN's encapsulation; ok is false
// when dst takes no connections now or cannot be reached from XDP.
func (d *Director) spreadAction(svc *Service, dst *Dest) (bpf.FlowAction, bool) {
	if dst.ID >= bpf.FastDests || dst.Removed.Load() || !dst.Available() {
		return bpf.FlowAction{}, false
	}
	nh, ok := d.res.lookup(dst.Addr)
	if !ok || nh.Iface < 0 || nh.Iface >= len(d.ifaces) {
		return bpf.FlowAction{}, false
	}
	out := d.ifaces[nh.Iface]
	if !out.fastOK.Load() {
		return bpf.FlowAction{}, false
	}
	a := bpf.FlowAction{Op: bpf.FlowForward, DstMAC: nh.DstMAC, SrcMAC: nh.SrcMAC, Ifindex: out.Index, DestID: dst.ID}
	if dst.Fwd == lvs.FwdTun {
		// The program builds an outer header of the packet's family.
		if nh.Src.IsZero() || nh.Src.Is4() != svc.VIP.Is4() || dst.Addr.Is4() != svc.VIP.Is4() {
			return bpf.FlowAction{}, false
		}
		a.Op, a.Src, a.Dst = bpf.FlowEncap, nh.Src, dst.Addr
		a.MaxL3Len = nh.MTU - packet.EncapOverhead(familyOf(dst.Addr))
	}
	return a, true
}
