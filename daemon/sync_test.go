package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/connsync"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/lvs"
)

const syncYAML = `
director:
  interfaces: [eth0]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    real_servers:
      - {address: 198.18.1.1, port: 8080}
`

// syncKeyFile writes a key file govsd accepts (mode 0600).
func syncKeyFile(t *testing.T, key []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func syncEntry(cport uint16) connsync.Entry {
	a := func(s string) inet.Addr { return inet.AddrFromNetip(netip.MustParseAddr(s)) }
	return connsync.Entry{Kind: connsync.KindConn, Proto: 6, Fwd: connsync.FwdNAT, State: 1, Timeout: 900_000,
		Client: a("198.18.3.1"), CPort: cport, Virtual: a("198.18.0.100"), VPort: 80, Dest: a("198.18.1.1"), DPort: 8080}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// daemonOf returns the listing of one role.
func daemonOf(d *Daemon, role string) (control.SyncDaemon, bool) {
	for _, sd := range d.SyncDaemons() {
		if sd.Role == role {
			return sd, true
		}
	}
	return control.SyncDaemon{}, false
}

// TestSyncDaemonUnicastListing: the sync daemons started as --start-daemon
// does, with unicast peers, list their mode, peers and counters. The other
// director is played by a plain connsync receiver and senders (one with
// the wrong key) on 127.0.0.1.
func TestSyncDaemonUnicastListing(t *testing.T) {
	key := []byte("0123456789abcdef-daemon-sync-test")
	keyFile := syncKeyFile(t, key)
	d, f := newTestDaemon(t, syncYAML)
	t.Cleanup(d.sync.stop)

	// Master: its entries reach the peer, and the listing counts them.
	var mu sync.Mutex
	var got []connsync.Entry
	peer, err := connsync.NewReceiver(connsync.ReceiverConfig{
		Listen: netip.MustParseAddr("127.0.0.1"), SyncID: 5, Key: key, AcceptOwn: true,
		Deliver: func(_ netip.Addr, es []connsync.Entry) { mu.Lock(); got = append(got, es...); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := d.StartSyncDaemon(control.SyncDaemon{Role: "master", Interface: "lo", Peers: []string{"127.0.0.1"},
		Port: peer.Addr().Port(), SyncID: 5, KeyFile: keyFile}); err != nil {
		if !testutil.IsRoot() && strings.Contains(err.Error(), "permitted") {
			t.Skipf("sync sockets need privileges here: %v", err)
		}
		t.Fatal(err)
	}
	f.mu.Lock()
	pump := f.syncPump
	f.mu.Unlock()
	if pump == nil {
		t.Fatal("the master did not enable the data path's sync pump")
	}
	pump(recordsOf([]connsync.Entry{syncEntry(40000), syncEntry(40001), syncEntry(40002)}))
	waitUntil(t, "the peer to receive 3 entries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	m, ok := daemonOf(d, "master")
	if !ok {
		t.Fatal("no master in the listing")
	}
	if m.Mode != "unicast" || m.Group != "" || !reflect.DeepEqual(m.Peers, []string{"127.0.0.1"}) || m.Received != nil {
		t.Errorf("master listed as %+v", m)
	}
	if m.Sent == nil || m.Sent.Messages != 1 || m.Sent.Entries != 3 || m.Sent.Errors != 0 || m.Sent.Dropped != 0 {
		t.Errorf("master's counters %+v; want 1 message, 3 entries", m.Sent)
	}

	// Backup: a peer's message is installed and counted; one sealed with
	// another key is rejected and counted by reason.
	port := freeUDPPort(t)
	if err := d.StartSyncDaemon(control.SyncDaemon{Role: "backup", Interface: "lo", Peers: []string{"127.0.0.1"},
		Port: port, SyncID: 5, KeyFile: keyFile}); err != nil {
		t.Fatal(err)
	}
	send := func(k []byte, id uint64, es ...connsync.Entry) {
		t.Helper()
		s, err := connsync.NewSender(connsync.SenderConfig{Peers: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Port: port, SyncID: 5, Key: k, SenderID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(es); err != nil {
			t.Fatal(err)
		}
		s.Close() // sends what is pending
	}
	send(key, 42, syncEntry(50000), syncEntry(50001))
	send([]byte("another-key-of-16-bytes-or-more"), 43, syncEntry(50002))
	waitUntil(t, "the backup to count 1 message and 1 rejection", func() bool {
		b, _ := daemonOf(d, "backup")
		return b.Received != nil && b.Received.Messages == 1 && b.Received.Rejected == 1
	})
	b, _ := daemonOf(d, "backup")
	want := &control.SyncReceived{Messages: 1, Entries: 2, Rejected: 1, RejectedBy: map[string]uint64{"bad_mac": 1}}
	if b.Mode != "unicast" || !reflect.DeepEqual(b.Peers, []string{"127.0.0.1"}) || b.Sent != nil || !reflect.DeepEqual(b.Received, want) {
		t.Errorf("backup listed as %+v, received %+v; want %+v", b, b.Received, want)
	}
	f.mu.Lock()
	installed := len(f.installed)
	f.mu.Unlock()
	if installed != 1 {
		t.Errorf("%d batches installed in the data path; want 1", installed)
	}

	// Multicast is listed as such, with its group.
	if err := d.StopSyncDaemon("master"); err != nil {
		t.Fatal(err)
	}
	if err := d.StartSyncDaemon(control.SyncDaemon{Role: "master", Interface: "lo", Port: port, SyncID: 5, KeyFile: keyFile}); err != nil {
		t.Fatal(err)
	}
	m, _ = daemonOf(d, "master")
	if m.Mode != "multicast" || m.Group != "239.255.81.49" || m.Peers != nil || m.Sent == nil || m.Sent.Messages != 0 {
		t.Errorf("multicast master listed as %+v (sent %+v)", m, m.Sent)
	}
}

// TestSyncRecordWire: the data path's sync records and connsync's entries
// convert both ways without loss (the remaining time in whole
// milliseconds, as the wire carries it), and their numberings agree.
func TestSyncRecordWire(t *testing.T) {
	a := func(s string) inet.Addr { return inet.AddrFromNetip(netip.MustParseAddr(s)) }
	for _, k := range []struct {
		rec  dataplane.SyncKind
		wire connsync.Kind
	}{{dataplane.SyncConn, connsync.KindConn}, {dataplane.SyncTemplate, connsync.KindTemplate}, {dataplane.SyncDelete, connsync.KindDelete}} {
		if uint8(k.rec) != uint8(k.wire) {
			t.Errorf("record kind %d is wire kind %d", k.rec, k.wire)
		}
	}
	for _, f := range []struct {
		fwd  lvs.Fwd
		wire uint8
	}{{lvs.FwdNAT, connsync.FwdNAT}, {lvs.FwdFullNAT, connsync.FwdFullNAT}, {lvs.FwdDR, connsync.FwdDR}, {lvs.FwdTun, connsync.FwdTun}} {
		if uint8(f.fwd) != f.wire {
			t.Errorf("%s is wire method %d", f.fwd, f.wire)
		}
	}
	r := dataplane.SyncRecord{
		Kind: dataplane.SyncConn, Proto: lvs.ProtoTCP, Fwd: lvs.FwdFullNAT, State: conntrack.StateFinWait, Flags: 0x4101,
		Remaining: 90*time.Second + 7*time.Millisecond,
		Client:    a("198.18.3.1"), Virtual: a("198.18.0.100"), Dest: a("198.18.1.1"), Local: a("198.18.2.1"),
		CPort: 40000, VPort: 80, DPort: 8080, LPort: 1025,
	}
	es := appendEntries(nil, []dataplane.SyncRecord{r})
	if len(es) != 1 || es[0].Timeout != 90_007 || es[0].Kind != connsync.KindConn || es[0].Fwd != connsync.FwdFullNAT || es[0].Flags != 0x4101 {
		t.Fatalf("entries %+v", es)
	}
	if back := recordsOf(es); len(back) != 1 || back[0] != r {
		t.Errorf("round trip %+v, want %+v", back, r)
	}
}
