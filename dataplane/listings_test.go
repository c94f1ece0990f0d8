package dataplane

import (
	"context"
	"testing"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/lvs"
)

// TestListConnsInSlices: a listing (govsadm -Lnc) takes a worker's table
// listSlice slots per request, so that a large table never holds the
// worker for the whole walk, and still lists every connection once.
func TestListConnsInSlices(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	w := l.w
	w.setTable(conntrack.New(conntrack.Config{Capacity: 3 * listSlice, Timeouts: conntrack.DefaultTimeouts(),
		OnState: w.d.countState, OnRemove: w.onRemove}))
	const n = listSlice + 1000 // past the first slice
	now := nanotime()          // the listing reads the clock: SYN_RECV lives 60 s from here
	for i := range n {
		l.mustForward(t, 0, l.request(uint16(10000+i), lvs.TCPSyn, 0), 0, 1, now)
	}
	w.reqs = make(chan func())
	requests := 0
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the worker's loop, as far as requests go
		for {
			select {
			case f := <-w.reqs:
				requests++
				f()
			case <-stop:
				return
			}
		}
	}()
	conns, err := w.listConns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if requests != 3 {
		t.Errorf("listing a table of %d slots took %d requests, want 3 of %d slots", w.ct.Cap(), requests, listSlice)
	}
	ports := map[uint16]bool{}
	for _, c := range conns {
		ports[c.Client.Port()] = true
	}
	if len(conns) != n || len(ports) != n {
		t.Errorf("listed %d connections (%d client ports), want each of the %d once", len(conns), len(ports), n)
	}
}
