package dataplane

import (
	"testing"
	"time"

	"github.com/govs/govs/lvs"
)

// TestRefreshSyncFarFromExpiry: the periodic re-send carries every
// established connection, and asks the fast path for its last-seen stamps
// (two system calls) only where the expiry comes within two periods: a
// connection 15 minutes from its expiry goes with the table's expiry. The
// lab has no steering program, so a lookup would fail the test.
func TestRefreshSyncFarFromExpiry(t *testing.T) {
	l := newLab(t, lvs.FwdNAT, false)
	w := l.w
	w.d.syncOn.Store(true)
	l.establish(t, 40000)
	c := onlyConn(t, w)
	w.path(c).flags |= flagFastIn // as if it had a flow entry
	w.syncBuf = w.syncBuf[:0]
	now := int64(syncRefresh)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("refreshSync asked the fast path about a connection %v from its expiry: %v", time.Duration(c.Expires-now), r)
			}
		}()
		w.refreshSync(0, w.ct.Cap(), now, l.st)
	}()
	if len(w.syncBuf) != 1 || w.syncBuf[0].Remaining != time.Duration(c.Expires-now) {
		t.Fatalf("refresh recorded %+v, want the connection with %v remaining", w.syncBuf, time.Duration(c.Expires-now))
	}
}
