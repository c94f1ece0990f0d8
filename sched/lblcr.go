package sched

func init() { Register("lblcr", func(Flags) Scheduler { return newLocalityReplicated() }) }

// lblcrSetCap bounds a server set so that the cache is allocated once. IPVS's
// sets are unbounded but grow only while every member is overloaded; when a
// set is full here, its most loaded member makes room for the new one.
const lblcrSetCap = 8

// localityReplicated is IPVS's lblcr: a destination address maps to a set of
// servers and goes to the least loaded (wlc) member of it. When no member is
// usable, or the chosen one has more active connections than its weight
// while some server is less than half loaded, the wlc choice over the whole
// service is added to the set. A set that has not changed for the expiration
// time (24h by default, see Expirer) drops its most loaded member, so sets
// shrink back once load falls; an entry unused that long is forgotten.
type localityReplicated struct {
	localityCache[lblcrEntry, *lblcrEntry]
}

type lblcrEntry struct {
	localityKey
	lastMod int64
	n       int
	// set holds the members, most recently added first (IPVS adds at
	// the head of its list, which decides ties).
	set [lblcrSetCap]*Dest
}

func newLocalityReplicated() *localityReplicated {
	s := &localityReplicated{}
	s.init()
	return s
}

func (s *localityReplicated) Pick(k *Key) *Dest {
	st, b, k, now, exp := s.lock(k)
	if st == nil {
		return nil
	}
	defer b.mu.Unlock()

	e := b.find(&k.Dst, now, exp)
	if e == nil {
		d := pickWeightedLeastConn(st.dests)
		if d == nil {
			return nil
		}
		e = b.victim(now, exp)
		e.addr, e.used = k.Dst, true
		e.lastUse, e.lastMod = now, now
		e.set[0], e.n = d, 1
		return d
	}

	e.lastUse = now
	e.dropRemoved(st)
	d := pickWeightedLeastConn(e.set[:e.n])
	if e.n > 1 && now-e.lastMod > exp {
		if m := e.mostLoaded(); m != nil {
			e.erase(m, now)
		}
	}
	if d != nil && !localityOverloaded(d, st.dests) {
		return d
	}
	d = pickWeightedLeastConn(st.dests)
	if d == nil {
		return nil
	}
	e.insert(d, now)
	return d
}

// dropRemoved forgets members no longer in the service. IPVS keeps them (in
// its trash) but never schedules to them; forgetting them at once only frees
// their room. It does not count as a change of the set.
func (e *lblcrEntry) dropRemoved(st *localityState) {
	n := 0
	for _, d := range e.set[:e.n] {
		if st.has(d) {
			e.set[n] = d
			n++
		}
	}
	clear(e.set[n:e.n])
	e.n = n
}

// mostLoaded is ip_vs_dest_set_max: the member with the highest
// overhead/weight among those with a positive weight, the first on a tie.
func (e *lblcrEntry) mostLoaded() *Dest {
	var most *Dest
	var moh, mw int64
	for _, d := range e.set[:e.n] {
		w := int64(d.Weight())
		if w <= 0 {
			continue
		}
		doh := connOverhead(d)
		if most == nil || moh*w < doh*mw {
			most, moh, mw = d, doh, w
		}
	}
	return most
}

func (e *lblcrEntry) erase(d *Dest, now int64) {
	for i, m := range e.set[:e.n] {
		if m == d {
			copy(e.set[i:e.n], e.set[i+1:e.n])
			e.n--
			e.set[e.n] = nil
			e.lastMod = now
			return
		}
	}
}

// insert adds d at the head of the set unless it is a member already.
func (e *lblcrEntry) insert(d *Dest, now int64) {
	for _, m := range e.set[:e.n] {
		if m == d {
			return
		}
	}
	if e.n == lblcrSetCap {
		m := e.mostLoaded()
		if m == nil {
			m = e.set[e.n-1]
		}
		e.erase(m, now)
	}
	copy(e.set[1:e.n+1], e.set[:e.n])
	e.set[0] = d
	e.n++
	e.lastMod = now
}

var _ Expirer = (*localityReplicated)(nil)
