package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// fakeStore is the mirror's store in memory (bpf.Store's tests cover the
// pinned map).
type fakeStore struct {
	m        map[[mirrorKeySize]byte][mirrorValSize]byte
	unpinned bool
}

func newFakeStore() *fakeStore {
	return &fakeStore{m: map[[mirrorKeySize]byte][mirrorValSize]byte{}}
}

func (s *fakeStore) Put(keys, values []byte, n int) error {
	for i := 0; i < n; i++ {
		s.m[[mirrorKeySize]byte(keys[i*mirrorKeySize:])] = [mirrorValSize]byte(values[i*mirrorValSize:])
	}
	return nil
}

func (s *fakeStore) Delete(keys []byte, n int) error {
	for i := 0; i < n; i++ {
		delete(s.m, [mirrorKeySize]byte(keys[i*mirrorKeySize:]))
	}
	return nil
}

func (s *fakeStore) Iterate(fn func(k, v []byte) bool) error {
	for k, v := range s.m {
		if !fn(k[:], v[:]) {
			break
		}
	}
	return nil
}

func (s *fakeStore) Unpin() error { s.unpinned = true; return nil }
func (s *fakeStore) Close() error { return nil }

// records returns the store's records decoded, by kind.
func (s *fakeStore) records(kind uint8) []mirrorRecord {
	var out []mirrorRecord
	for k, v := range s.m {
		if k[mkKind] == kind {
			out = append(out, decodeMirror(k[:], v[:]))
		}
	}
	return out
}

// mirrored makes l's director record into store s, its table reporting
// removals to the mirror as newWorker's does.
func mirrored(l *spLab, s mirrorStore) *spLab {
	w := l.w
	w.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 12, Timeouts: conntrack.DefaultTimeouts(),
		OnState: w.d.countState, OnRemove: w.onRemove, LastSeen: w.lastSeen}))
	w.d.attachMirror(s)
	return l
}

// addWorkers gives l's director n workers in all: l's (queue 0) and n-1
// that only have a table, for Adopt and allocLocal.
func addWorkers(l *spLab, n int) {
	d := l.w.d
	for q := 1; q < n; q++ {
		w := &worker{d: d, q: q, lportNext: map[inet.Addr]int{}}
		w.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 12, Timeouts: conntrack.DefaultTimeouts(), OnRemove: w.onRemove}))
		d.workers = append(d.workers, w)
	}
	if d.mirror != nil {
		d.attachMirror(d.mirror.store)
	}
}

// onlyConn returns the one connection of w's table.
func onlyConn(t *testing.T, w *worker) *conntrack.Conn {
	t.Helper()
	cs := conns(w)
	if len(cs) != 1 {
		t.Fatalf("worker %d has %d connections, want 1", w.q, len(cs))
	}
	return cs[0]
}

// sameConn fails unless adopted is old as the next govsd must see it: the
// same tuples, server, state, expiry, return path and translation; the
// fast path's bits cleared and its count saturated.
// connSnap is a copy of a connection with its data path part.
type connSnap struct {
	conntrack.Conn
	path connPath
}

func snap(w *worker, c *conntrack.Conn) connSnap { return connSnap{*c, *w.path(c)} }

func sameConn(t *testing.T, old, adopted connSnap) {
	t.Helper()
	if adopted.Orig != old.Orig || adopted.Reply != old.Reply || adopted.Fwd != old.Fwd || adopted.State != old.State ||
		adopted.Dest != old.Dest || adopted.Service != old.Service {
		t.Errorf("adopted %+v / %+v %s %s, want %+v / %+v %s %s", adopted.Orig, adopted.Reply, adopted.Fwd, adopted.State,
			old.Orig, old.Reply, old.Fwd, old.State)
	}
	if adopted.Expires != old.Expires {
		t.Errorf("adopted expiry %d, want %d", adopted.Expires, old.Expires)
	}
	ap, op := adopted.path, old.path
	if ap.inPort != op.inPort || ap.clientMAC != op.clientMAC || ap.localMAC != op.localMAC ||
		adopted.LAddr != old.LAddr || adopted.LPort != old.LPort {
		t.Errorf("adopted return path %d %x %x %v:%d, want %d %x %x %v:%d", ap.inPort, ap.clientMAC, ap.localMAC,
			adopted.LAddr, adopted.LPort, op.inPort, op.clientMAC, op.localMAC, old.LAddr, old.LPort)
	}
	if ap.seqDelta != op.seqDelta || ap.clientWin != op.clientWin || ap.winShift != op.winShift {
		t.Errorf("adopted translation %d/%d/%d, want %d/%d/%d", ap.seqDelta, ap.clientWin, ap.winShift,
			op.seqDelta, op.clientWin, op.winShift)
	}
	if adopted.Flags != old.Flags {
		t.Errorf("adopted table flags %#x, want %#x", adopted.Flags, old.Flags)
	}
	want := op.flags&^(flagFast|fastCountMask) | fastCountMask
	if ap.flags != want {
		t.Errorf("adopted flags %#x, want %#x", ap.flags, want)
	}
}

// TestMirrorAdoptForwarding: a connection of every forwarding method
// (IPv4 and IPv6), recorded by one director and adopted by the next,
// forwards its next request (and reply) without a SYN, rewritten as
// before: the same real server and, for full-NAT, local port.
func TestMirrorAdoptForwarding(t *testing.T) {
	for _, fwd := range []lvs.Fwd{lvs.FwdNAT, lvs.FwdFullNAT, lvs.FwdDR, lvs.FwdTun} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				store := newFakeStore()
				old := mirrored(newLab(t, fwd, v6), store)
				const cport = 40000
				syn := old.request(cport, lvs.TCPSyn, 0)
				lport := checkRequest(t, old, old.mustForward(t, 0, syn, 0, 1, 1), syn, fwd)
				replyTo, replyPort := old.client, uint16(cport)
				if fwd == lvs.FwdFullNAT {
					replyTo, replyPort = old.locl, lport
				}
				if fwd == lvs.FwdNAT || fwd == lvs.FwdFullNAT {
					old.mustForward(t, 1, old.fromReal(replyTo, replyPort, lvs.TCPSyn|lvs.TCPAck, 0), 1, 0, 2)
				}
				old.mustForward(t, 2, old.request(cport, lvs.TCPAck, 10), 0, 1, 3)
				oc := snap(old.w, onlyConn(t, old.w))
				if oc.State != conntrack.StateEstablished {
					t.Fatalf("state %s before the restart, want ESTABLISHED", oc.State)
				}
				old.w.d.flushMirror()
				if n := len(store.records(mirrorKindConn)); n != 1 {
					t.Fatalf("store holds %d connection records, want 1", n)
				}

				next := mirrored(newLab(t, fwd, v6), store)
				st, err := next.w.d.Adopt()
				if err != nil || st != (AdoptStats{Conns: 1}) {
					t.Fatalf("adopt: %+v %v, want 1 connection", st, err)
				}
				sameConn(t, oc, snap(next.w, onlyConn(t, next.w)))
				if a := next.st.dests[0].ActiveConns(); a != 1 {
					t.Errorf("real server's active connections %d after adoption, want 1", a)
				}
				data := next.request(cport, lvs.TCPAck, 20)
				if got := checkRequest(t, next, next.mustForward(t, 0, data, 0, 1, 4), data, fwd); got != lport {
					t.Errorf("adopted connection's request left from local port %d, want %d", got, lport)
				}
				if fwd == lvs.FwdNAT || fwd == lvs.FwdFullNAT {
					r := next.fromReal(replyTo, replyPort, lvs.TCPAck, 30)
					checkReply(t, next, next.mustForward(t, 1, r, 1, 0, 5), r, cport)
				}
				if n := next.w.ctr.NewConns.Load(); n != 0 {
					t.Errorf("%d new connections after adoption, want 0", n)
				}
			})
		}
	}
}

// TestMirrorFullNATOwner: full-NAT local ports of worker q are = q (mod
// workers) for any number of workers, lportMin not a multiple of it; an
// adopted full-NAT connection goes to the worker both its requests and
// its replies name, and one that no worker can own (the number of workers
// changed) is skipped and counted.
func TestMirrorFullNATOwner(t *testing.T) {
	for _, nw := range []int{2, 3, 5, 7} {
		l := newLab(t, lvs.FwdFullNAT, false)
		addWorkers(l, nw)
		svc, dst := l.st.services[0], l.st.dests[0]
		for _, w := range l.w.d.workers {
			want := 0
			for p := lportMin; p < 65536; p++ {
				if p%nw == w.q {
					want++
				}
			}
			seen := map[uint16]bool{}
			for i := 0; i < want; i++ {
				_, port, ok := w.allocLocal(svc, dst, 8080, 6, 1)
				if !ok || int(port)%nw != w.q || port < lportMin || seen[port] {
					t.Fatalf("%d workers, worker %d: port %d (ok %v, seen %v), want a new one = %d mod %d", nw, w.q, port, ok, seen[port], w.q, nw)
				}
				seen[port] = true
			}
		}
	}

	// Record on 3 workers, adopt on 3 and on 2.
	store := newFakeStore()
	old := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	addWorkers(old, 3)
	client := inet.AddrFromNetip(old.client)
	var ports []uint16 // client ports whose connections worker 0 owns
	for p := uint16(40000); len(ports) < 8; p++ {
		if mixEndpoint(client, p)%3 == 0 {
			ports = append(ports, p)
		}
	}
	for i, p := range ports {
		old.mustForward(t, i%8, old.request(p, lvs.TCPSyn, 0), 0, 1, int64(1+i))
	}
	old.w.d.flushMirror()
	next := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	addWorkers(next, 3)
	if st, err := next.w.d.Adopt(); err != nil || st != (AdoptStats{Conns: len(ports)}) {
		t.Fatalf("adopt on 3 workers: %+v %v, want %d connections", st, err, len(ports))
	}
	if n := len(conns(next.w)); n != len(ports) {
		t.Errorf("worker 0 adopted %d connections, want all %d", n, len(ports))
	}
	// On 2 workers: owned where client and local port agree.
	want := AdoptStats{}
	for _, c := range conns(next.w) {
		if uint32(c.LPort)%2 == mixEndpoint(c.Orig.Src, c.Orig.SrcPort)%2 {
			want.Conns++
		} else {
			want.Misplaced++
		}
	}
	two := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	addWorkers(two, 2)
	if st, err := two.w.d.Adopt(); err != nil || st != want {
		t.Errorf("adopt on 2 workers: %+v %v, want %+v", st, err, want)
	}
	for _, w := range two.w.d.workers {
		for _, c := range conns(w) {
			if int(c.LPort)%2 != w.q || int(mixEndpoint(c.Orig.Src, c.Orig.SrcPort)%2) != w.q {
				t.Errorf("worker %d adopted a connection of client port %d, local port %d", w.q, c.Orig.SrcPort, c.LPort)
			}
		}
	}
	if len(store.m) != want.Conns {
		t.Errorf("store holds %d records after adoption, want the %d adopted (the others deleted)", len(store.m), want.Conns)
	}
}

// TestMirrorSynProxy: proxied connections keep their sequence translation
// across a restart: an established one translates its next segments both
// ways, a pending one completes its real server's handshake.
func TestMirrorSynProxy(t *testing.T) {
	store := newFakeStore()
	old := mirrored(newSPLab(t, lvs.FwdNAT, false), store)
	now := int64(time.Second)
	o := packet.SynOptions{MSS: 1460, WScale: 7, HasWScale: true}
	const isn, sisn = 5, 77
	client := seg{srcMAC: clientMAC, dstMAC: dirMAC0, src: old.client, dst: old.vip, dport: 80, ackf: true, seq: isn + 1, win: 100}
	synack := seg{srcMAC: realMAC, dstMAC: dirMAC1, src: old.real, dst: old.client, sport: 8080, syn: true, ackf: true, seq: sisn, ack: isn + 1,
		opts: []layers.TCPOption{opt(layers.TCPOptionKindWindowScale, 9)}}
	// Port 40000: established; 40001: the real server's SYN-ACK pending.
	var cookies [2]uint32
	for i, p := range []uint16{40000, 40001} {
		cookies[i] = old.cookie(now, isn, p, o)
		a := client
		a.sport, a.ack = p, cookies[i]+1
		if _, ok, _ := old.run(t, i, a.bytes(t), 0, now); !ok {
			t.Fatalf("cookie ACK dropped: %v", dropSummary(old.w))
		}
	}
	sa := synack
	sa.dport = 40000
	if _, ok, _ := old.run(t, 2, sa.bytes(t), 1, now+1); !ok {
		t.Fatalf("SYN-ACK dropped: %v", dropSummary(old.w))
	}
	before := map[uint16]connSnap{}
	for _, c := range conns(old.w) {
		before[c.Orig.SrcPort] = snap(old.w, c)
	}
	if c := before[40000].path; c.seqDelta != sisn-cookies[0] || c.winShift != 9-int8(packet.SynProxyWScale) || c.flags&flagSynPending != 0 {
		t.Fatalf("established proxied connection: delta %d shift %d flags %#x", c.seqDelta, c.winShift, c.flags)
	}
	old.w.d.flushMirror()

	next := mirrored(newSPLab(t, lvs.FwdNAT, false), store)
	if st, err := next.w.d.Adopt(); err != nil || st != (AdoptStats{Conns: 2}) {
		t.Fatalf("adopt: %+v %v, want 2 connections", st, err)
	}
	for _, c := range conns(next.w) {
		sameConn(t, before[c.Orig.SrcPort], snap(next.w, c))
	}
	// The established one: a request's ack moves into the server's space.
	req := client
	req.sport, req.ack, req.psh, req.payload = 40000, cookies[0]+1, true, []byte("GET /")
	out, ok, frame := next.run(t, 0, req.bytes(t), 0, now+2)
	if !ok || out != 1 {
		t.Fatalf("request of the adopted proxied connection: out %d ok %v drops %v", out, ok, dropSummary(next.w))
	}
	if g := decodeOut(t, frame); g.tcp.Ack != sisn+1 {
		t.Errorf("request's ack %d, want %d (translated by the adopted delta)", g.tcp.Ack, sisn+1)
	}
	// The pending one: the real server's SYN-ACK completes its handshake.
	sa.dport = 40001
	out, ok, frame = next.run(t, 1, sa.bytes(t), 1, now+3)
	if !ok || out != 1 {
		t.Fatalf("SYN-ACK of the adopted pending connection: out %d ok %v drops %v", out, ok, dropSummary(next.w))
	}
	if g := decodeOut(t, frame); !g.tcp.ACK || g.tcp.SYN || g.tcp.Seq != isn+1 || g.tcp.Ack != sisn+1 {
		t.Errorf("answer to the SYN-ACK: %+v, want the handshake's ACK", g.tcp)
	}
}

// TestMirrorTemplates: persistence templates are recorded and adopted, and
// the adopted connections bind to them.
func TestMirrorTemplates(t *testing.T) {
	store := newFakeStore()
	persistent := func() *spLab {
		l := mirrored(newLab(t, lvs.FwdNAT, false), store)
		l.st.services[0].Persistence, l.st.services[0].PersistBits = time.Minute, 32
		return l
	}
	old := persistent()
	old.mustForward(t, 0, old.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	old.w.d.flushMirror()
	if n := len(store.records(mirrorKindTemplate)); n != 1 {
		t.Fatalf("store holds %d template records, want 1", n)
	}
	next := persistent()
	if st, err := next.w.d.Adopt(); err != nil || st != (AdoptStats{Conns: 1, Templates: 1}) {
		t.Fatalf("adopt: %+v %v, want 1 connection and 1 template", st, err)
	}
	n := 0
	next.w.ct.WalkTemplates(func(k *conntrack.TemplateKey, dest uint32, expires int64, conns int) bool {
		n++
		if k.Client != inet.AddrFromNetip(next.client) || k.VIP != inet.AddrFromNetip(next.vip) || k.VPort != 80 || dest != 0 || conns != 1 {
			t.Errorf("template %+v -> %d with %d connections, want the client's to server 0 with 1", k, dest, conns)
		}
		return true
	})
	if n != 1 {
		t.Errorf("%d templates adopted, want 1", n)
	}
	if c := onlyConn(t, next.w); c.Flags&conntrack.FlagPersistent == 0 {
		t.Error("adopted connection not bound to its template")
	}
	// A new connection of the client goes where the template says.
	next.mustForward(t, 0, next.request(40001, lvs.TCPSyn, 0), 0, 1, 2)
}

// TestMirrorSkips: expired records, records of services, real servers or
// local addresses the configuration no longer has, and records of another
// format version are not adopted, are counted, and leave the store.
func TestMirrorSkips(t *testing.T) {
	store := newFakeStore()
	old := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	for i := 0; i < 6; i++ {
		old.mustForward(t, i, old.request(uint16(40000+i), lvs.TCPSyn, 0), 0, 1, int64(1+i))
	}
	old.w.d.flushMirror()
	edit := func(port uint16, f func(v []byte)) {
		for k, v := range store.m {
			if binary.LittleEndian.Uint16(k[mkSPort:]) == port {
				f(v[:])
				store.m[k] = v
				return
			}
		}
		t.Fatalf("no record of port %d", port)
	}
	edit(40001, func(v []byte) {
		binary.LittleEndian.PutUint64(v[mvExpires:], uint64(bpf.MonotonicNow()-1))
	})
	edit(40002, func(v []byte) { binary.LittleEndian.PutUint16(v[mvSvcPort:], 81) })  // no such service
	edit(40003, func(v []byte) { binary.LittleEndian.PutUint16(v[mvDestPort:], 81) }) // no such real server
	edit(40004, func(v []byte) { v[mvFwd] = uint8(lvs.FwdDR) })                       // the server forwards otherwise now
	edit(40005, func(v []byte) { v[mvVersion] = mirrorVersion + 1 })                  // another govs
	var k [mirrorKeySize]byte
	k[mkKind] = 9 // a kind this govs does not know
	var v [mirrorValSize]byte
	v[mvVersion] = mirrorVersion
	store.m[k] = v

	next := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	if st, err := next.w.d.Adopt(); err != nil || st != (AdoptStats{Conns: 1, Expired: 1, Unknown: 5}) {
		t.Fatalf("adopt: %+v %v, want 1 adopted, 1 expired, 5 unknown", st, err)
	}
	if c := onlyConn(t, next.w); c.Orig.SrcPort != 40000 {
		t.Errorf("adopted client port %d, want 40000", c.Orig.SrcPort)
	}
	if len(store.m) != 1 {
		t.Errorf("store holds %d records after adoption, want 1", len(store.m))
	}
	// Without the local address, full-NAT connections cannot be adopted.
	again := mirrored(newLab(t, lvs.FwdFullNAT, false), store)
	again.st.locals = nil
	if st, _ := again.w.d.Adopt(); st != (AdoptStats{Unknown: 1}) {
		t.Errorf("adopt without the local address: %+v, want 1 unknown", st)
	}
}

// TestMirrorRecordsChanges: the store follows the table: a state change is
// recorded, a removal deletes the record, a tuple reused right after its
// removal is recorded again (the order within a buffer is kept), the
// refresh brings expiries forward, and the sweep deletes expired records.
func TestMirrorRecordsChanges(t *testing.T) {
	store := newFakeStore()
	l := mirrored(newLab(t, lvs.FwdNAT, false), store)
	d := l.w.d
	l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	d.flushMirror()
	recs := store.records(mirrorKindConn)
	if len(recs) != 1 || recs[0].state != conntrack.StateSynRecv {
		t.Fatalf("records %+v, want one in SYN_RECV", recs)
	}
	l.mustForward(t, 1, l.fromReal(l.client, 40000, lvs.TCPSyn|lvs.TCPAck, 0), 1, 0, 2)
	l.mustForward(t, 2, l.request(40000, lvs.TCPAck, 0), 0, 1, 3)
	l.w.pushMirror()
	d.drainMirror()
	if recs = store.records(mirrorKindConn); len(recs) != 1 || recs[0].state != conntrack.StateEstablished {
		t.Fatalf("records %+v, want one ESTABLISHED", recs)
	}
	// The refresh leaves an idle connection's record while its expiry is
	// two refresh periods ahead or more. Later packets move the expiry
	// without a record; the next refresh records it.
	l.w.refreshMirror(int64(mirrorRefresh), d.state.Load(), false)
	if l.w.mir.n != 0 {
		t.Errorf("a refresh 15 minutes before an idle connection's recorded expiry wrote %d records, want none", l.w.mir.n)
	}
	l.mustForward(t, 2, l.request(40000, lvs.TCPAck, 10), 0, 1, int64(time.Minute))
	c := onlyConn(t, l.w)
	l.w.pushMirror()
	d.drainMirror()
	l.w.tickMirror(2*int64(mirrorRefresh), d.state.Load())
	d.drainMirror()
	if recs = store.records(mirrorKindConn); recs[0].expires != c.Expires {
		t.Errorf("refreshed expiry %d, want %d", recs[0].expires, c.Expires)
	}
	// An expiry the table moved past the record's (the expiry sweep
	// touches a connection with its fast-path traffic) is recorded too.
	recorded := c.Expires
	c.Expires += int64(time.Minute) / 2
	l.w.path(c).mirExpires = uint32(recorded / int64(time.Second))
	l.w.refreshMirror(3*int64(mirrorRefresh), d.state.Load(), false)
	if l.w.mir.n != 1 {
		t.Errorf("a refresh with the expiry lagging 30 s wrote %d records, want 1", l.w.mir.n)
	}
	l.w.pushMirror()
	d.drainMirror()
	// And an idle connection's once its recorded expiry comes within two
	// periods.
	c.Expires = recorded + int64(time.Second)/2
	l.w.path(c).mirExpires = uint32(recorded / int64(time.Second))
	l.w.tickMirror(recorded-int64(mirrorRefresh), d.state.Load())
	d.drainMirror()
	if recs = store.records(mirrorKindConn); recs[0].expires != c.Expires {
		t.Errorf("refreshed expiry %d, want %d", recs[0].expires, c.Expires)
	}
	// Removed, and the tuple reused, within one buffer.
	l.w.ct.Delete(c)
	l.mustForward(t, 3, l.request(40000, lvs.TCPSyn, 0), 0, 1, int64(time.Minute)+1)
	l.w.pushMirror()
	d.drainMirror()
	if recs = store.records(mirrorKindConn); len(recs) != 1 || recs[0].state != conntrack.StateSynRecv {
		t.Fatalf("records %+v after delete and reuse, want the new connection's", recs)
	}
	l.w.ct.Delete(onlyConn(t, l.w))
	l.w.pushMirror()
	d.drainMirror()
	if len(store.m) != 0 {
		t.Fatalf("store holds %d records after the connection's removal, want none", len(store.m))
	}
	// The sweep: an expired record goes, a live one stays.
	var live, dead [mirrorKeySize]byte
	live[0], dead[0] = 1, 2
	var v [mirrorValSize]byte
	v[mvVersion] = mirrorVersion
	binary.LittleEndian.PutUint64(v[mvExpires:], uint64(bpf.MonotonicNow()+int64(time.Hour)))
	store.m[live] = v
	binary.LittleEndian.PutUint64(v[mvExpires:], uint64(bpf.MonotonicNow()-1))
	store.m[dead] = v
	d.sweepMirror()
	if _, ok := store.m[live]; !ok || len(store.m) != 1 {
		t.Errorf("after the sweep the store holds %d records (live kept: %v), want the live one", len(store.m), ok)
	}
	if err := d.unpinMirror(); err != nil || !store.unpinned {
		t.Errorf("unpin: %v, unpinned %v", err, store.unpinned)
	}
}

// TestMirrorCoalesces: a connection's records within one buffer are one
// record, its latest: a one-request connection's five states cost the
// store one write, its removal in the same buffer turns that record into
// the delete, and a state change after the buffer was handed over is a
// new record (in the next buffer) that the store ends with.
func TestMirrorCoalesces(t *testing.T) {
	store := newFakeStore()
	l := mirrored(newLab(t, lvs.FwdNAT, false), store)
	w, d := l.w, l.w.d
	l.establish(t, 40000)
	l.mustForward(t, 3, l.request(40000, lvs.TCPAck|0x08, 80), 0, 1, 4)
	l.mustForward(t, 4, l.fromReal(l.client, 40000, lvs.TCPAck|0x08, 200), 1, 0, 5)
	l.mustForward(t, 5, l.fromReal(l.client, 40000, lvs.TCPFin|lvs.TCPAck, 0), 1, 0, 6)
	l.mustForward(t, 6, l.request(40000, lvs.TCPFin|lvs.TCPAck, 0), 0, 1, 7)
	l.mustForward(t, 7, l.fromReal(l.client, 40000, lvs.TCPAck, 0), 1, 0, 8)
	c := onlyConn(t, w)
	if c.State == conntrack.StateEstablished || c.State == conntrack.StateSynRecv {
		t.Fatalf("connection in %v after both FINs, want a closing state", c.State)
	}
	if w.mir.n != 1 {
		t.Fatalf("a whole connection left %d records in the buffer, want 1", w.mir.n)
	}
	w.pushMirror()
	d.drainMirror()
	if recs := store.records(mirrorKindConn); len(recs) != 1 || recs[0].state != c.State {
		t.Fatalf("store %+v, want the one connection in %v", recs, c.State)
	}

	// Changed after the hand-over: a record in the new buffer.
	w.ct.Track(c, conntrack.DirOriginal, lvs.TCPRst, 9)
	w.mirrorConn(c, d.state.Load())
	if w.mir.n != 1 {
		t.Fatalf("%d records in the new buffer, want 1", w.mir.n)
	}
	// Removed in the same buffer: that record becomes the delete, and a
	// new connection of the same tuple after it is recorded.
	w.ct.Delete(c)
	if w.mir.n != 1 || w.mir.vals[mvVersion] != 0 {
		t.Fatalf("after the removal: %d records, the first a delete: %v; want 1, a delete", w.mir.n, w.mir.vals[mvVersion] == 0)
	}
	l.mustForward(t, 8, l.request(40000, lvs.TCPSyn, 0), 0, 1, 10)
	w.pushMirror()
	d.drainMirror()
	if recs := store.records(mirrorKindConn); len(recs) != 1 || recs[0].state != conntrack.StateSynRecv {
		t.Fatalf("store %+v, want the new connection in SYN_RECV", recs)
	}
	w.ct.Delete(onlyConn(t, w))
	w.pushMirror()
	d.drainMirror()
	if len(store.m) != 0 {
		t.Fatalf("store holds %d records after the removal, want none", len(store.m))
	}
}

// TestMirrorRefreshRepairs: after records were lost (a full channel or a
// full store), the next refresh records every connection, also those whose
// recorded expiry is far ahead, which a refresh otherwise skips.
func TestMirrorRefreshRepairs(t *testing.T) {
	store := newFakeStore()
	l := mirrored(newLab(t, lvs.FwdNAT, false), store)
	w, d := l.w, l.w.d
	l.establish(t, 40000)
	w.pushMirror()
	d.drainMirror()
	c := onlyConn(t, w)
	w.refreshMirror(int64(mirrorRefresh), d.state.Load(), false)
	if w.mir.n != 0 {
		t.Fatalf("a refresh 15 minutes before the recorded expiry wrote %d records, want none", w.mir.n)
	}
	for _, reason := range []string{"channel full", "store full"} {
		clear(store.m)
		if reason == "channel full" {
			w.mirOut = make(chan *mirrorBatch) // no room: the next push loses its buffer
			w.mirrorConn(c, d.state.Load())
			w.pushMirror()
			w.mirOut = make(chan *mirrorBatch, 16)
		} else {
			d.mirror.store = failingStore{store}
			w.mirrorConn(c, d.state.Load())
			w.pushMirror()
			d.drainMirror()
			d.mirror.store = store
		}
		w.tickMirror(int64(mirrorRefresh), d.state.Load())
		w.pushMirror()
		d.drainMirror()
		if recs := store.records(mirrorKindConn); len(recs) != 1 {
			t.Errorf("%s: the refresh after the loss left %d connection records, want the connection's", reason, len(recs))
		}
	}
}

// failingStore refuses every write, as a full store does.
type failingStore struct{ *fakeStore }

func (failingStore) Put(keys, values []byte, n int) error { return errors.New("store full") }

// TestMirrorOverflow: a worker whose buffers the pump has not taken loses
// records, counted, and never blocks.
func TestMirrorOverflow(t *testing.T) {
	store := newFakeStore()
	l := mirrored(newLab(t, lvs.FwdNAT, false), store)
	l.w.mirOut = make(chan *mirrorBatch, 1)
	l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	c := onlyConn(t, l.w)
	st := l.w.d.state.Load()
	for i := 1; i < 3*mirrorBatchLen; i++ {
		l.w.path(c).mirSlot = 0 // a record each time, as so many connections would
		l.w.mirrorConn(c, st)
	}
	// One buffer went to the channel, the next was lost; the third is
	// the worker's, full.
	var ctr Counters
	l.w.d.mirrorCounters(&ctr)
	if ctr.MirrorDropped != mirrorBatchLen || l.w.mir.n != mirrorBatchLen {
		t.Errorf("dropped %d, buffered %d; want %d and %d", ctr.MirrorDropped, l.w.mir.n, mirrorBatchLen, mirrorBatchLen)
	}
}

// TestMirrorAllocs: recording connections as they are created, change
// state and are removed allocates nothing per packet.
func TestMirrorAllocs(t *testing.T) {
	l := mirrored(newLab(t, lvs.FwdFullNAT, false), newFakeStore())
	w := l.w
	var syns, rsts [][]byte
	for i := 0; i < 300; i++ {
		syns = append(syns, l.request(uint16(30000+i), lvs.TCPSyn, 0).bytes(t))
		rsts = append(rsts, l.request(uint16(30000+i), lvs.TCPRst, 0).bytes(t))
	}
	i := 0
	now := int64(1)
	allocs := testing.AllocsPerRun(200, func() {
		now++
		d := put(w, 0, syns[i])
		if _, ok := w.process(&d, 0, now, l.st, true); !ok {
			t.Fatalf("SYN dropped: %v", dropSummary(w))
		}
		d = put(w, 1, rsts[i])
		w.process(&d, 0, now, l.st, true)
		w.ct.Delete(onlyConnNoFail(w))
		i++
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per recorded connection, want 0", allocs)
	}
	if w.mir.n == 0 {
		t.Error("nothing recorded")
	}
}

func onlyConnNoFail(w *worker) *conntrack.Conn {
	var c *conntrack.Conn
	w.ct.Walk(func(x *conntrack.Conn) bool { c = x; return false })
	return c
}
