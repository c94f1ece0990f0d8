package dataplane

import (
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// NewDetachedDest returns a real server that belongs to no Director, with
// the counters st (as if one worker had counted them) and active and
// inactive connections. What reads a Director's services (govsd's listings,
// govsadm's and Prometheus' views) is tested with it, without a data path.
func NewDetachedDest(spec DestSpec, proto lvs.Proto, st Stats, active, inactive int) *Dest {
	d := &Dest{
		Dest:  sched.NewDest(inet.AddrFromNetip(spec.Addr), spec.Port, spec.Weight),
		Proto: proto,
		Fwd:   spec.Fwd,
		stats: newDestStats(1),
	}
	d.SetThresholds(spec.Upper, spec.Lower)
	c := &d.stats.perWorker[0]
	c.conns.Store(st.Conns)
	c.inPkts.Store(st.InPkts)
	c.outPkts.Store(st.OutPkts)
	c.inBytes.Store(st.InBytes)
	c.outBytes.Store(st.OutBytes)
	for range active {
		d.Transition(sched.ClassNone, sched.ClassActive)
	}
	for range inactive {
		d.Transition(sched.ClassNone, sched.ClassInactive)
	}
	return d
}
