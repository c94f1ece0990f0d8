package control

import (
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
)

// countersBackend serves fixed counters.
type countersBackend struct {
	stubBackend
	c Counters
}

func (b countersBackend) Counters() (Counters, error) { return b.c, nil }

// TestCountersRoundTrip: every part of the counters, the SYN-proxy states
// and the AF_XDP ring counters included, survives the socket unchanged.
func TestCountersRoundTrip(t *testing.T) {
	want := Counters{
		DataPath: map[string]uint64{"rx": 10, "syncookies_accepted": 3, "syncookies_rejected": 1,
			"synproxy_dropped": 2, "half_open": 40, "evicted_half_open": 7},
		XDP: map[string]uint64{"syncookies_sent": 100, "syn_throttled": 5},
		SynProxy: []SynProxyService{
			{Service: "web", Mode: "auto", Capable: true, Engaged: true, SYNs: 123456},
			{Service: "ssh", Mode: "off", SYNs: 9},
		},
		Rings: []RingCounters{
			{Interface: "eth0", Queue: 0, RxDropped: 1, RxRingFull: 2, FillRingEmpty: 3, TxInvalid: 4, TxRingEmpty: 5},
			{Interface: "eth0", Queue: 1, RxRingFull: 1 << 40},
		},
	}
	path := filepath.Join(t.TempDir(), "govs.sock")
	srv, err := Listen(path, countersBackend{c: want}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got, err := NewClient(path).Counters()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counters after the round trip:\n got %+v\nwant %+v", got, want)
	}
}
