package dataplane

import (
	"context"
	"slices"
	"time"
)

// Real server and service ids are reused. A real server that leaves the configuration
// stays in the snapshot (Removed) while connections drain from it, and
// keeps its id, by which connections, templates and the fast path's
// counters name it. Once it has been removed for destReclaimAfter and no
// connection uses it, housekeeping frees its id (reclaimDests): the
// workers delete the templates that still name it, the fast path's
// counters of the id start again from zero, and the next real server
// added takes the id (buildService). Without it, a director whose real
// servers come and go (autoscaling) would grow its tables for ever, and
// real servers past the fast path's bpf.FastDests ids would never have the
// fast path. A removed service's id follows once every real server of it
// has been reclaimed (reclaimServices); services past the steering
// program's SYN counters (16,384 ids) would otherwise have no SYN rate.

// destReclaimAfter is how long a removed real server keeps its id at the
// least: a worker that scheduled onto it from the snapshot before its
// removal has long counted that connection by then.
const destReclaimAfter = 30 * time.Second

// removeDest takes dst out of service: quiescent, out of the scheduler,
// draining. Under d.mu (Apply).
func removeDest(dst *Dest, now int64) {
	dst.SetWeight(0)
	if !dst.Removed.Swap(true) {
		dst.removedAt = now
	}
}

// reclaimDests frees the ids of the real servers of s that have drained
// (see above). Under d.mu; ctx bounds the wait for the workers.
func (d *Director) reclaimDests(ctx context.Context, s *snapshot, now int64) {
	var ids []uint32
	for _, dst := range s.dests {
		if dst == nil || dst.reclaimed || !dst.Removed.Load() || now-dst.removedAt < int64(destReclaimAfter) ||
			dst.ActiveConns()+dst.InactiveConns() > 0 {
			continue
		}
		ids = append(ids, dst.ID)
	}
	if len(ids) == 0 {
		return
	}
	// Bounded: housekeeping holds d.mu, which Apply waits for.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, w := range d.workers {
		if err := w.request(ctx, func() {
			for _, id := range ids {
				w.ct.DeleteTemplatesForDest(id)
			}
		}); err != nil {
			return // tried again at the next round
		}
	}
	for _, id := range ids {
		s.dests[id].reclaimed = true
		if d.steer != nil {
			if err := d.steer.ResetFastDestCounters(id); err != nil {
				d.log.Warn("reset a reclaimed real server's fast-path counters", "id", id, "err", err)
			}
		}
		d.freeDests = append(d.freeDests, id)
	}
	d.log.Info("real server ids reclaimed", "ids", len(ids), "free", len(d.freeDests))
}

// removedService is a service taken out of the configuration whose id is
// not free yet: connections may still name it while its real servers
// drain.
type removedService struct {
	id uint32
	at int64 // nanotime of its removal
}

// reclaimServices frees the ids of removed services that no connection
// names any more: removed destReclaimAfter ago at least, and every real
// server that was theirs reclaimed (a connection names its real server's
// service). A reused id starts with a fresh SYN-rate baseline (synguard
// keeps no state for a service that is gone). Under d.mu.
func (d *Director) reclaimServices(s *snapshot, now int64) {
	keep := d.removedSvcs[:0]
	for _, rs := range d.removedSvcs {
		if now-rs.at < int64(destReclaimAfter) || serviceDraining(s, rs.id) {
			keep = append(keep, rs)
			continue
		}
		d.freeSvcs = append(d.freeSvcs, rs.id)
		d.log.Info("service id reclaimed", "id", rs.id, "free", len(d.freeSvcs))
	}
	d.removedSvcs = keep
}

// serviceDraining reports whether a real server of service id still
// holds its id (connections may name the service).
func serviceDraining(s *snapshot, id uint32) bool {
	for _, dst := range s.dests {
		if dst != nil && dst.Service == id && !dst.reclaimed {
			return true
		}
	}
	return false
}

// serviceID returns the id for a new service: a reclaimed one if there is
// one, else the next unused.
func (d *Director) serviceID() uint32 {
	if n := len(d.freeSvcs); n > 0 {
		id := d.freeSvcs[n-1]
		d.freeSvcs = d.freeSvcs[:n-1]
		return id
	}
	id := d.nextSvc
	d.nextSvc++
	return id
}

// destID returns the id for a new real server of next: a reclaimed one if
// there is one, else the next unused.
func (d *Director) destID(next *snapshot) uint32 {
	if n := len(d.freeDests); n > 0 {
		id := d.freeDests[n-1]
		d.freeDests = d.freeDests[:n-1]
		return id
	}
	return uint32(len(next.dests))
}

// setDest puts dst into next's table at its id, copying the table first
// (it is shared with the snapshot in force).
func (next *snapshot) setDest(dst *Dest) {
	if int(dst.ID) == len(next.dests) {
		next.dests = append(next.dests[:len(next.dests):len(next.dests)], dst)
		return
	}
	next.dests = slices.Clone(next.dests)
	next.dests[dst.ID] = dst
}
