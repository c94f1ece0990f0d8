package dataplane

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
)

// One owner per connection.
//
// A NIC spreads packets over RX queues by its own hash, and NAT changes the
// tuple between a request (CIP:cport -> VIP:vport) and its reply (RIP:rport
// -> CIP:cport), so the two directions of a connection can arrive on
// different queues, served by different workers. AF_XDP cannot redirect a
// frame to a socket of another queue, so the hand-off happens here:
//
//   - Each connection has one owner worker, computed from the client's
//     endpoint: hash(CIP, cport) % workers, which a request carries as its
//     source and a NAT reply as its destination. A full-NAT reply carries the
//     local port instead, and local ports are allocated so that
//     lport % workers is the owner (see allocLocal).
//   - All sockets of the director share one UMEM, partitioned into one frame
//     region per worker; a worker fills its sockets only with frames of its
//     own region. A worker that receives a frame it does not own passes the
//     descriptor to the owner over a single-producer single-consumer ring —
//     no copy, the owner transmits the same frame.
//   - A frame always goes back to the worker whose region holds it: when the
//     owner is done with it (transmitted or dropped) it returns the address
//     over a second ring, sized to hold a whole region so it never fills.
//   - A worker sleeping in poll(2) is woken through an eventfd.
//
// So each connection table is touched by exactly one goroutine, with no lock.

// handoffEntry is a frame in flight between two workers.
type handoffEntry struct {
	addr  uint64
	len   uint32
	iface uint32
}

// spsc is a bounded single-producer single-consumer ring. The producer
// writes slots, then publishes them with an atomic store of tail; the
// consumer reads tail atomically before the slots, so it sees the writes.
//
// A worker hands off and gives back frames one at a time while it works
// through a receive batch, but publishes them once per batch (stage, then
// publish from publishPeers): a store to tail per frame, and the wake-up
// with it, moved the line between the cores at every frame, which cost
// four times the CPU per frame once the two workers ran on two cores
// (BenchmarkHandoffParallel). For the same reason the producer keeps its
// own copies of the indices and reads the consumer's head only when the
// ring looks full, and the consumer stores head only when it took something.
type spsc struct {
	head atomic.Uint64 // next slot to read; written by the consumer
	_    [56]byte
	tail atomic.Uint64 // next slot to write, published; written by the producer
	_    [56]byte
	// The producer's own: the next slot to write (tail once published),
	// the tail last published, and the consumer's head as last read.
	next, published, headSeen uint64
	_                         [40]byte
	mask                      uint64
	buf                       []handoffEntry
}

func newSPSC(size int) *spsc {
	n := 1
	for n < size {
		n <<= 1
	}
	return &spsc{mask: uint64(n - 1), buf: make([]handoffEntry, n)}
}

// stage writes e into the next slot without publishing it; false when the
// ring is full.
func (r *spsc) stage(e handoffEntry) bool {
	t := r.next
	if t-r.headSeen > r.mask {
		r.headSeen = r.head.Load()
		if t-r.headSeen > r.mask {
			return false
		}
	}
	r.buf[t&r.mask] = e
	r.next = t + 1
	return true
}

// publish makes the staged entries visible to the consumer and reports
// whether there were any.
func (r *spsc) publish() bool {
	if r.next == r.published {
		return false
	}
	r.published = r.next
	r.tail.Store(r.next)
	return true
}

// push stages e and publishes it at once.
func (r *spsc) push(e handoffEntry) bool {
	if !r.stage(e) {
		return false
	}
	r.publish()
	return true
}

// pop moves up to len(out) entries into out.
func (r *spsc) pop(out []handoffEntry) int {
	h, t := r.head.Load(), r.tail.Load()
	n := min(int(t-h), len(out))
	if n <= 0 {
		return 0
	}
	for i := 0; i < n; i++ {
		out[i] = r.buf[(h+uint64(i))&r.mask]
	}
	r.head.Store(h + uint64(n))
	return n
}

func (r *spsc) empty() bool { return r.tail.Load() == r.head.Load() }

// waker wakes a worker sleeping in poll(2).
type waker struct {
	fd       int
	sleeping atomic.Bool
}

func newWaker() (*waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &waker{fd: fd}, nil
}

var one = [8]byte{1}

func (wk *waker) wake() {
	if wk.sleeping.Load() {
		unix.Write(wk.fd, one[:])
	}
}

func (wk *waker) clear() {
	var b [8]byte
	unix.Read(wk.fd, b[:])
}

func (wk *waker) close() { unix.Close(wk.fd) }

// mixEndpoint hashes a client endpoint to pick the owning worker.
func mixEndpoint(a inet.Addr, port uint16) uint32 {
	h := a.Hash32() ^ uint32(port)*0x9e3779b1
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	return h
}

// ownerOf returns the worker that owns the connection of the parsed packet.
func (w *worker) ownerOf(p *packet.Parsed, st *snapshot) int {
	n := uint32(len(w.d.workers))
	src, sport, dst, dport, proto := p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto
	if p.IsICMPError() && p.Inner.Valid && p.Inner.HasPorts {
		// The quoted packet is one the director sent: its destination
		// is where a packet of ours went, so look at it reversed.
		src, sport, dst, dport, proto = p.Inner.Dst, p.Inner.DstPort, p.Inner.Src, p.Inner.SrcPort, p.Inner.Proto
	}
	switch {
	case st.lookup(dst, dport, proto) != nil:
		return int(mixEndpoint(src, sport) % n) // a request: the client is the source
	case st.locals[dst]:
		return int(uint32(dport) % n) // a full-NAT reply: the local port names the owner
	default:
		return int(mixEndpoint(dst, dport) % n) // a NAT reply: the client is the destination
	}
}
