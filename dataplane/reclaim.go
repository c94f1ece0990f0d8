package dataplane

import (
	"context"
	"slices"
	"time"
)

// Real server ids are reused. A real server that leaves the configuration
// stays in the snapshot (Removed) while connections drain from it, and
// keeps its id, by which connections, templates and the fast path's
// counters name it. Once it has been removed for destReclaimAfter and no
// connection uses it, housekeeping frees its id (reclaimDests): the
// workers delete the templates that still name it, the fast path's
// counters of the id start again from zero, and the next real server
// added takes the id (buildService). Without it, a director whose real
// servers come and go (autoscaling) would grow its tables for ever, and
// real servers past the fast path's bpf.FastDests ids would never have the
// fast path.

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
