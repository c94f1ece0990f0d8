package dataplane

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// persistPair is two workers of one director sharing persistence
// templates, and a persistent rr service over three real servers.
func persistPair(t *testing.T) (w0, w1 *worker, svc *Service, st *snapshot) {
	t.Helper()
	w0 = testWorker(t, lvs.FwdNAT)
	d := w0.d
	d.persist = newPersistDir()
	w1 = &worker{d: d, q: 1}
	d.workers = []*worker{w0, w1}
	for _, w := range d.workers {
		w.setTable(conntrack.New(conntrack.Config{Capacity: 1 << 10, Timeouts: conntrack.DefaultTimeouts(), OnTemplateRemove: w.onTemplateRemove}))
	}
	s, _ := sched.New("rr", 0)
	svc = &Service{Name: "sticky", VIP: inet.AddrFromNetip(vipIP), Port: 80, Proto: 6, Fwd: lvs.FwdNAT, Sched: s,
		Persistence: 300 * time.Second, PersistBits: 32}
	st = &snapshot{services: []*Service{svc}}
	var sd []*sched.Dest
	for i := range 3 {
		dst := &Dest{Dest: sched.NewDest(inet.AddrFromNetip(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)})), 8080, 1),
			Proto: 6, Fwd: lvs.FwdNAT, stats: newDestStats(2)}
		dst.ID, dst.Dest.ID = uint32(i), uint32(i)
		svc.Dests = append(svc.Dests, dst)
		st.dests = append(st.dests, dst)
		sd = append(sd, dst.Dest)
	}
	s.Update(sd)
	return w0, w1, svc, st
}

func synFrom(client string, port uint16) *packet.Parsed {
	return &packet.Parsed{Src: inet.AddrFromNetip(netip.MustParseAddr(client)), Dst: inet.AddrFromNetip(vipIP),
		SrcPort: port, DstPort: 80, Proto: lvs.ProtoTCP}
}

// TestPersistenceAcrossWorkers: with several workers, a client's
// connections go to one real server whichever worker owns them, as with
// IPVS's one template; the shared entry lives while a worker holds a
// template, and a deleted template (server gone) takes it away.
func TestPersistenceAcrossWorkers(t *testing.T) {
	w0, w1, svc, st := persistPair(t)
	now := int64(time.Second)
	a0 := w0.pick(svc, synFrom("198.18.0.1", 40000), now, st)
	if a0 == nil {
		t.Fatal("no server for the first connection")
	}
	// Other clients move rr on, so that a fresh pick would differ.
	b := w1.pick(svc, synFrom("198.18.0.2", 40000), now, st)
	a1 := w1.pick(svc, synFrom("198.18.0.1", 40001), now, st)
	if a1 != a0 {
		t.Fatalf("client on worker 1: server %d, on worker 0: %d (persistence per worker)", a1.ID, a0.ID)
	}
	if b == a0 {
		t.Fatalf("rr gave the second client the first's server %d: the test cannot tell", b.ID)
	}
	for i := range 5 {
		w := []*worker{w0, w1}[i%2]
		if got := w.pick(svc, synFrom("198.18.0.1", uint16(40002+i)), now, st); got != a0 {
			t.Fatalf("connection %d on worker %d: server %d, want %d", i, w.q, got.ID, a0.ID)
		}
	}
	if n := w0.ct.TemplateLen() + w1.ct.TemplateLen(); n != 3 {
		t.Errorf("templates: %d, want 3 (the first client's on each worker, the second's)", n)
	}
	if n := w0.d.persist.len(); n != 2 {
		t.Errorf("shared entries: %d, want 2", n)
	}

	// Worker 0's template expires (no connection bound): worker 1 still
	// holds one, and worker 0 takes its server again.
	later := now + int64(301*time.Second)
	w0.ct.Expire(later, 1<<20)
	if w0.ct.TemplateLen() != 0 {
		t.Fatalf("worker 0 kept %d templates past their timeout", w0.ct.TemplateLen())
	}
	k := w0.templateKey(svc, synFrom("198.18.0.1", 0))
	w1.ct.BindTemplate(mustConn(t, w1, k), k) // a connection keeps worker 1's alive
	w1.ct.Expire(later, 1<<20)
	if got := w0.pick(svc, synFrom("198.18.0.1", 40100), later, st); got != a0 {
		t.Fatalf("after worker 0's template expired: server %d, want worker 1's %d", got.ID, a0.ID)
	}

	// The server is removed: every worker deletes its templates for it
	// (DeleteTemplatesForDest), and the shared entry goes with them.
	if n := w0.d.persist.len(); n != 1 {
		t.Errorf("shared entries: %d, want 1 (the second client's template expired with no connection)", n)
	}
	w0.ct.DeleteTemplatesForDest(a0.ID)
	if n := w0.d.persist.len(); n != 0 {
		t.Errorf("shared entries after a deleted template: %d, want 0", n)
	}
	a0.Removed.Store(true)
	if got := w0.pick(svc, synFrom("198.18.0.1", 40101), later, st); got == nil || got == a0 {
		t.Fatalf("after the server's removal: %v, want another server", got)
	}
}

// mustConn inserts a connection of k's client into w's table.
func mustConn(t *testing.T, w *worker, k *conntrack.TemplateKey) *conntrack.Conn {
	t.Helper()
	c, err := w.ct.Insert(&conntrack.Conn{Orig: conntrack.Tuple{Src: k.Client, Dst: k.VIP, SrcPort: 50000, DstPort: k.VPort, Proto: k.Proto},
		Reply: conntrack.Tuple{Src: k.Client, Dst: k.VIP, SrcPort: 50001, DstPort: k.VPort, Proto: k.Proto}, State: conntrack.StateEstablished}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPersistDirHolders(t *testing.T) {
	if n := unsafe.Sizeof(persistShard{}); n != 64 {
		t.Errorf("a shard is %d bytes, want 64 (a cache line)", n)
	}
	d := newPersistDir()
	k := conntrack.TemplateKey{Client: inet.AddrFrom4([4]byte{198, 18, 0, 1}), VPort: 80, Proto: lvs.ProtoTCP, Service: 1}
	d.hold(&k, 4)
	d.hold(&k, 4)
	d.release(&k, conntrack.TemplateExpired)
	if d.len() != 1 {
		t.Fatalf("entries after one of two released: %d, want 1", d.len())
	}
	d.release(&k, conntrack.TemplateExpired)
	if d.len() != 0 {
		t.Fatalf("entries after both released: %d, want 0", d.len())
	}
	d.release(&k, conntrack.TemplateExpired) // unknown: ignored
	d.hold(&k, 4)
	d.hold(&k, 4)
	d.release(&k, conntrack.TemplateDeleted)
	if d.len() != 0 {
		t.Fatalf("entries after a deletion: %d, want 0", d.len())
	}
}
