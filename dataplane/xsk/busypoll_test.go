package xsk

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetBusyPoll sets the busy-poll options on a socket bound to a veth and
// reads them back. A kernel that refuses one (ENOPROTOOPT, or EPERM without
// CAP_NET_ADMIN) must say so with that errno, which callers ignore.
func TestSetBusyPoll(t *testing.T) {
	requireRoot(t)
	tp := newPairTopo(t)
	u := newTestUMEM(t, 64, 0)
	s := openSocket(t, u, &tp.x, tp.xsks, Options{})
	err := s.SetBusyPoll(0, 0)
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) || !isErrno(err, unix.ENOPROTOOPT, unix.EPERM) {
			t.Fatalf("SetBusyPoll: %v (want nil, ENOPROTOOPT or EPERM)", err)
		}
		t.Skipf("busy polling not available here: %v", err)
	}
	for _, o := range []struct {
		name string
		opt  int
		want int
	}{
		{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
		{"SO_BUSY_POLL", unix.SO_BUSY_POLL, int(DefaultBusyPollTimeout.Microseconds())},
		{"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, DefaultBusyPollBudget},
	} {
		got, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, o.opt)
		if errors.Is(err, unix.ENOPROTOOPT) && o.opt == unix.SO_BUSY_POLL_BUDGET {
			continue // Linux has no getsockopt for it (6.18 answers ENOPROTOOPT)
		}
		if err != nil {
			t.Fatalf("get %s: %v", o.name, err)
		}
		if got != o.want {
			t.Errorf("%s = %d, want %d", o.name, got, o.want)
		}
	}
	// Stats still read (getsockopt on another level) and start at zero.
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RxDropped != 0 || st.RxRingFull != 0 || st.TxInvalidDescs != 0 {
		t.Errorf("fresh socket stats %+v", st)
	}
}
