package sched

func init() { Register("lblc", func(Flags) Scheduler { return newLocalityLeastConn() }) }

// localityLeastConn is IPVS's lblc: a destination address goes to the server
// it went to last time, unless that server is gone, quiescent, overloaded by
// its thresholds, or has more active connections than its weight while some
// server is less than half loaded; then, and for a new address, the wlc
// choice, which is remembered. An entry unused for the expiration time (24h
// by default, see Expirer) is forgotten.
//
// Pick locks one of 1024 cache buckets, as IPVS serialises cache updates;
// lookups of different addresses rarely contend.
type localityLeastConn struct {
	localityCache[lblcEntry, *lblcEntry]
}

type lblcEntry struct {
	localityKey
	dest *Dest
}

func newLocalityLeastConn() *localityLeastConn {
	s := &localityLeastConn{}
	s.init()
	return s
}

func (s *localityLeastConn) Pick(k *Key) *Dest {
	st, b, k, now, exp := s.lock(k)
	if st == nil {
		return nil
	}
	defer b.mu.Unlock()

	e := b.find(&k.Dst, now, exp)
	if e != nil {
		e.lastUse = now
		d := e.dest
		// The kernel checks weight and the lblc overload rule; the
		// threshold overload is checked too, so that a server over its
		// upper threshold takes no new connection from any scheduler.
		if st.has(d) && d.Available() && !localityOverloaded(d, st.dests) {
			return d
		}
	}
	d := pickWeightedLeastConn(st.dests)
	if d == nil {
		return nil
	}
	if e == nil {
		e = b.victim(now, exp)
		e.addr, e.used = k.Dst, true
	}
	e.dest, e.lastUse = d, now
	return d
}

var _ Expirer = (*localityLeastConn)(nil)
