package connsync

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// collector gathers delivered entries for a test.
type collector struct {
	mu      sync.Mutex
	from    []netip.Addr
	entries []Entry
	notify  chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) deliver(from netip.Addr, es []Entry) {
	c.mu.Lock()
	c.from = append(c.from, from)
	c.entries = append(c.entries, es...) // es is reused after the call: copy
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait returns the entries once n have arrived, or fails after 5 s.
func (c *collector) wait(t *testing.T, n int) []Entry {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		got := slices.Clone(c.entries)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("%d entries arrived in 5 s, want %d", len(got), n)
		}
	}
}

// waitStats polls r until cond holds, or fails after 5 s.
func waitStats(t *testing.T, r *Receiver, what string, cond func(ReceiverStats) bool) ReceiverStats {
	t.Helper()
	for range 500 {
		if st := r.Stats(); cond(st) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in 5 s: %+v", what, r.Stats())
	return ReceiverStats{}
}

func newTestReceiver(t *testing.T, cfg ReceiverConfig) *Receiver {
	t.Helper()
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newTestSender(t *testing.T, cfg SenderConfig) *Sender {
	t.Helper()
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestUnicast(t *testing.T) {
	for _, loop := range []string{"127.0.0.1", "::1"} {
		t.Run(loop, func(t *testing.T) {
			lo := netip.MustParseAddr(loop)
			col := newCollector()
			r := newTestReceiver(t, ReceiverConfig{Listen: lo, SyncID: 3, Key: testKey, Deliver: col.deliver})
			if lo.Is6() && !r.Addr().Addr().Is6() {
				t.Fatalf("bound %s", r.Addr())
			}
			s := newTestSender(t, SenderConfig{Peers: []netip.Addr{lo}, Port: r.Addr().Port(), SyncID: 3, Key: testKey,
				SenderID: 0x5e4d})
			// 40 entries: two full messages sent at once, 8 on the next tick.
			want := append(manyEntries(34), sampleEntries(lo.Is6())...)
			if err := s.Send(want[:10]); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(want[10:]); err != nil {
				t.Fatal(err)
			}
			got := col.wait(t, len(want))
			if !slices.Equal(got, want) {
				t.Fatalf("entries differ:\n got %+v\nwant %+v", got, want)
			}
			if col.from[0] != lo {
				t.Errorf("from %s, want %s", col.from[0], lo)
			}
			// The writer counts after writing: Flush waits for it.
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			ss := s.Stats()
			if ss.Messages != 3 || ss.Entries != 40 || ss.Datagrams != 3 || ss.SendErrors+ss.Dropped+ss.Invalid != 0 {
				t.Errorf("sender stats %+v, want 3 messages of 16+16+8", ss)
			}
			rs := waitStats(t, r, "counters", func(s ReceiverStats) bool { return s.Messages >= 3 })
			if rs.Messages != 3 || rs.Entries != 40 || rs.RejectedTotal() != 0 {
				t.Errorf("receiver stats %+v", rs)
			}
		})
	}
}

// TestReceiverRejects sends crafted datagrams from a plain socket and
// checks that each is counted under its reason and none is delivered.
func TestReceiverRejects(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	col := newCollector()
	r := newTestReceiver(t, ReceiverConfig{Listen: lo, SyncID: 3, Key: testKey, Deliver: col.deliver, MaxAge: time.Hour})
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(msg []byte) {
		t.Helper()
		if _, err := conn.WriteToUDPAddrPort(msg, r.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixNano()
	hdr := Header{SyncID: 3, Sender: 77, Seq: 1, SendTime: now}
	good := mustEncode(t, hdr, sampleEntries(false))

	send(good)
	waitStats(t, r, "first delivery", func(s ReceiverStats) bool { return s.Messages == 1 })

	cases := []struct {
		name string
		msg  []byte
		want Reason
	}{
		{"replayed", good, ReasonDuplicate},
		{"tampered", func() []byte { m := slices.Clone(good); m[60] ^= 1; return m }(), ReasonBadMAC},
		{"short", good[:20], ReasonBadLength},
		{"magic", append([]byte("XXXX"), good[4:]...), ReasonBadMagic},
		{"wrong sync id", mustEncode(t, Header{SyncID: 4, Sender: 77, Seq: 2, SendTime: now}, nil), ReasonWrongSyncID},
		{"own process", mustEncode(t, Header{SyncID: 3, Sender: ProcessID(), Seq: 1, SendTime: now}, nil), ReasonOwn},
		{"too old", mustEncode(t, Header{SyncID: 3, Sender: 77, Seq: 3, SendTime: now - int64(2*time.Hour)}, nil), ReasonTooOld},
		{"from the future", mustEncode(t, Header{SyncID: 3, Sender: 77, Seq: 4, SendTime: now + int64(2*time.Hour)}, nil), ReasonTooOld},
	}
	var want [NumReasons]uint64
	for i, tc := range cases {
		send(tc.msg)
		want[tc.want]++
		st := waitStats(t, r, tc.name, func(s ReceiverStats) bool { return s.RejectedTotal() == uint64(i+1) })
		if st.Rejected != want {
			t.Errorf("%s: counted %v, want %v", tc.name, st.Rejected, want)
		}
	}
	// A sender restart (new id) is accepted at once.
	send(mustEncode(t, Header{SyncID: 3, Sender: 78, Seq: 1, SendTime: now}, nil))
	st := waitStats(t, r, "restarted sender", func(s ReceiverStats) bool { return s.Messages == 2 })
	if st.Datagrams != uint64(len(cases)+2) || st.Entries != uint64(len(sampleEntries(false))) {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverAllowFrom(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	col := newCollector()
	r := newTestReceiver(t, ReceiverConfig{Listen: lo, SyncID: 1, Key: testKey, Deliver: col.deliver,
		AllowFrom: []netip.Addr{netip.MustParseAddr("127.0.0.2")}})
	s := newTestSender(t, SenderConfig{Peers: []netip.Addr{lo}, Port: r.Addr().Port(), SyncID: 1, Key: testKey, SenderID: 9})
	if err := s.Send(sampleEntries(false)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, r, "rejection", func(s ReceiverStats) bool { return s.RejectedTotal() == 1 })
	if st.Rejected[ReasonPeer] != 1 || st.Messages != 0 {
		t.Errorf("stats %+v, want one unknown_peer rejection", st)
	}
}

// Close sends what is pending, even with a flush interval never reached.
func TestSenderCloseFlushes(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	col := newCollector()
	r := newTestReceiver(t, ReceiverConfig{Listen: lo, Key: testKey, Deliver: col.deliver})
	s, err := NewSender(SenderConfig{Peers: []netip.Addr{lo}, Port: r.Addr().Port(), Key: testKey,
		SenderID: 10, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := sampleEntries(true)
	if err := s.Send(want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, len(want)); !slices.Equal(got, want) {
		t.Errorf("got %+v", got)
	}
	if err := s.Send(want); err != ErrClosed {
		t.Errorf("Send after Close: %v", err)
	}
	if err := s.Flush(); err != ErrClosed {
		t.Errorf("Flush after Close: %v", err)
	}
}

func TestSenderInvalidEntries(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	col := newCollector()
	r := newTestReceiver(t, ReceiverConfig{Listen: lo, Key: testKey, Deliver: col.deliver})
	s := newTestSender(t, SenderConfig{Peers: []netip.Addr{lo}, Port: r.Addr().Port(), Key: testKey, SenderID: 11})
	es := sampleEntries(false)
	es[1].Kind = 0
	if err := s.Send(es); err == nil {
		t.Fatal("Send accepted an entry with kind 0")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got := col.wait(t, len(es)-1)
	if !slices.Equal(got, append(es[:1:1], es[2:]...)) {
		t.Errorf("got %+v", got)
	}
	if st := s.Stats(); st.Invalid != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	group := netip.MustParseAddr("224.0.0.81")
	peer := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for name, cfg := range map[string]SenderConfig{
		"short key":      {Peers: peer, Port: 1, Key: testKey[:5]},
		"no destination": {Port: 1, Key: testKey},
		"both":           {Group: group, Peers: peer, Port: 1, Key: testKey, Interface: "lo"},
		"not multicast":  {Group: peer[0], Port: 1, Key: testKey, Interface: "lo"},
		"no interface":   {Group: group, Port: 1, Key: testKey},
		"no port":        {Peers: peer, Key: testKey},
		"payload small":  {Peers: peer, Port: 1, Key: testKey, MaxPayload: MessageLen(1) - 1},
		"payload big":    {Peers: peer, Port: 1, Key: testKey, MaxPayload: 70000},
		"bad interface":  {Peers: peer, Port: 1, Key: testKey, Interface: "gs-nonexistent"},
	} {
		if s, err := NewSender(cfg); err == nil {
			s.Close()
			t.Errorf("sender %s: no error", name)
		}
	}
	deliver := func(netip.Addr, []Entry) {}
	for name, cfg := range map[string]ReceiverConfig{
		"short key":     {Key: testKey[:5], Deliver: deliver},
		"no deliver":    {Key: testKey},
		"not multicast": {Group: peer[0], Key: testKey, Deliver: deliver, Interface: "lo"},
		"no interface":  {Group: group, Key: testKey, Deliver: deliver},
	} {
		if r, err := NewReceiver(cfg); err == nil {
			r.Close()
			t.Errorf("receiver %s: no error", name)
		}
	}
}

// When the writer is behind by QueueLen messages, Send drops whole
// messages and counts their entries instead of blocking.
func TestSenderDropsWhenQueueFull(t *testing.T) {
	s := &Sender{perMsg: 2, full: make(chan []byte, 1), free: make(chan []byte, 1)}
	s.pending = s.buffer()
	// No writer runs: the first full message fills the queue.
	if err := s.Send(manyEntries(7)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Dropped != 4 {
		t.Errorf("dropped %d entries, want 4 (two messages of 2)", st.Dropped)
	}
	if len(s.full) != 1 || s.n != 1 {
		t.Errorf("queued %d messages, %d pending; want 1 and 1", len(s.full), s.n)
	}
}

// Concurrent Send calls lose nothing (run with -race).
func TestSenderConcurrent(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	var mu sync.Mutex
	seen := map[uint16]int{}
	col := newCollector()
	r := newTestReceiver(t, ReceiverConfig{Listen: lo, Key: testKey, Deliver: func(from netip.Addr, es []Entry) {
		mu.Lock()
		for _, e := range es {
			seen[e.CPort]++
		}
		mu.Unlock()
		col.deliver(from, es)
	}})
	s := newTestSender(t, SenderConfig{Peers: []netip.Addr{lo}, Port: r.Addr().Port(), Key: testKey, SenderID: 12})
	const workers, each = 4, 100
	all := manyEntries(workers * each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Send(all[w*each+i : w*each+i+1]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	col.wait(t, len(all))
	mu.Lock()
	defer mu.Unlock()
	for _, e := range all {
		if seen[e.CPort] != 1 {
			t.Fatalf("entry with port %d delivered %d times", e.CPort, seen[e.CPort])
		}
	}
	if st := r.Stats(); st.RejectedTotal() != 0 {
		t.Errorf("rejections %v", st.Rejected)
	}
}
