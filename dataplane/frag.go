package dataplane

import (
	"time"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Fragments.
//
// IPVS reassembles a fragmented datagram before it schedules it. govs
// forwards fragments one by one instead, each to where the first fragment
// of its datagram went, and never reassembles:
//
//   - The first fragment carries the transport header: it is processed like
//     any packet (connection lookup or scheduling, NAT rewrite, DR, TUN).
//     Its L4 checksum covers the whole datagram; the rewrites update it
//     incrementally for the changed addresses and ports, which stays right
//     for a datagram whose other bytes the director never sees.
//   - What was done to it is recorded in a fragment table keyed by (source,
//     destination, protocol, IP identification): the interface it left by,
//     its Ethernet addresses, its IP addresses after the rewrite and, for
//     TUN, the tunnel's endpoints. A later fragment (no ports) gets the same:
//     NAT and full-NAT rewrite its IP addresses only (it has no L4 header),
//     DR forwards it as is, TUN encapsulates it; its TTL is decremented.
//   - A later fragment that arrives before the first is held, a few per
//     worker (fragHeldMax) for at most fragHoldTimeout, and sent when the
//     first has been, or dropped when the first is (DropFragment).
//
// One owner per connection (handoff.go): a later fragment has no ports, so
// the worker that owns its connection cannot be computed from it. Every
// fragment of a datagram therefore goes first to its fragment worker,
// hash(source, destination, protocol, id) % workers. There the first
// fragment's owner is computed (ownerOf); when it is another worker, the
// fragment worker hands the first fragment, then the held and later
// fragments, to it, and the hand-off ring keeps them in that order, so the
// owner has recorded the first before it sees the others. The owner (or
// the fragment worker itself, when it owns the connection) forwards them.
// A datagram thus costs at most two hand-offs per fragment, and each
// connection table is still touched by its owner alone.
//
// The table is preallocated and bounded (fragSlots entries per worker, each
// forgotten fragTTL after its datagram's last fragment, or as soon as every
// byte of the datagram has passed); a fragment that finds no room is
// counted (FragTableFull): a first fragment is still forwarded, a later
// fragment dropped.

const (
	fragSlots       = 1024 // fragment table entries per worker (a power of two)
	fragProbe       = 8    // slots probed per key
	fragHeldMax     = 64   // later fragments held per worker, waiting for their first
	fragHoldTimeout = int64(time.Second)
	fragTTL         = int64(2 * time.Second) // an entry's life after its last fragment
)

// fragKey identifies a datagram.
type fragKey struct {
	src, dst inet.Addr
	id       uint32
	proto    lvs.Proto
}

func (k *fragKey) hash() uint32 {
	h := k.src.Hash32() ^ k.dst.Hash32()*0x9e3779b1 ^ k.id*0x85ebca6b ^ uint32(k.proto)
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	return h
}

// Entry states.
const (
	fragWaiting uint8 = iota // later fragments came, the first not yet (fragment worker)
	fragRouted               // the first went to its owner, another worker (fragment worker)
	fragDecided              // the first was forwarded from here: the fields below say how
	fragDropped              // the first was dropped here: so are the others
)

// fragEntry is what one worker knows of one datagram. It holds no pointers.
type fragEntry struct {
	key     fragKey
	expires int64 // 0: a free slot
	state   uint8
	tun     bool
	owner   int16 // fragRouted: the worker the first went to
	out     int16 // fragDecided: the interface the first left by
	seen    int32 // data bytes of the fragments that passed
	total   int32 // the datagram's length, once its last fragment has passed; 0 before
	macs    [12]byte
	// fragDecided: the IP addresses the first left with (TUN: the inner
	// ones, unchanged), and its ports, for the outer IPv6 flow label.
	src, dst       inet.Addr
	sport, dport   uint16
	tunSrc, tunDst inet.Addr
	mtu            int32 // TUN: the path MTU toward tunDst
}

// fragHeldFrame is a later fragment waiting for its first.
type fragHeldFrame struct {
	key     fragKey
	desc    xsk.Desc
	iface   int32
	info    packet.FragInfo
	expires int64 // 0: a free slot
}

// fragTable is a worker's fragment state.
type fragTable struct {
	entries [fragSlots]fragEntry
	held    [fragHeldMax]fragHeldFrame
	nheld   int
	inside  bool // process runs for a first fragment: no fragment handling again
}

// lookup returns the live entry of k, or nil.
func (t *fragTable) lookup(k *fragKey, now int64) *fragEntry {
	h := k.hash()
	for i := uint32(0); i < fragProbe; i++ {
		e := &t.entries[(h+i)&(fragSlots-1)]
		if e.expires > now && e.key == *k {
			return e
		}
	}
	return nil
}

// get returns the live entry of k, or a new one in state st; nil when the
// slots k may use are all taken.
func (t *fragTable) get(k *fragKey, now int64, st uint8) *fragEntry {
	if e := t.lookup(k, now); e != nil {
		e.expires = now + fragTTL
		return e
	}
	h := k.hash()
	for i := uint32(0); i < fragProbe; i++ {
		e := &t.entries[(h+i)&(fragSlots-1)]
		if e.expires <= now {
			*e = fragEntry{key: *k, expires: now + fragTTL, state: st}
			return e
		}
	}
	return nil
}

// account adds a fragment that passed to e and frees e once every byte of
// the datagram has.
func (e *fragEntry) account(f *packet.FragInfo) {
	e.seen += int32(f.Len)
	if !f.More {
		e.total = int32(f.Offset + f.Len)
	}
	if e.total > 0 && e.seen >= e.total {
		e.expires = 0
	}
}

// fragWorker returns the worker every fragment of datagram k goes to first.
func (w *worker) fragWorker(k *fragKey) int {
	return int(k.hash() % uint32(len(w.d.workers)))
}

// fragment handles a fragment (p.Frag != FragNone) in process. owned says
// that another worker handed it over.
func (w *worker) fragment(desc *xsk.Desc, frame []byte, inIface int, now int64, st *snapshot, owned bool) (int, bool) {
	p := &w.p
	if p.Proto != lvs.ProtoTCP && p.Proto != lvs.ProtoUDP {
		if p.Frag == packet.FragLater {
			w.drop(DropFragment)
			return 0, false
		}
		// Not a protocol the workers forward: processed as before (and
		// dropped there), an ICMP error quoting our packet aside.
		return w.processFirst(desc, inIface, now, st, owned)
	}
	info, ok := packet.Fragment(frame, p)
	if !ok {
		w.drop(DropMalformed)
		return 0, false
	}
	k := fragKey{src: p.Src, dst: p.Dst, id: info.ID, proto: p.Proto}
	f := w.fragWorker(&k)
	if !owned && f != w.q {
		return w.handOff(f, desc, inIface)
	}
	if p.Frag == packet.FragFirst {
		return w.fragFirst(desc, inIface, now, st, &k, &info, f == w.q)
	}
	return w.fragLater(desc, frame, inIface, now, &k, &info, f == w.q)
}

// processFirst runs process on a first fragment without coming back here.
func (w *worker) processFirst(desc *xsk.Desc, inIface int, now int64, st *snapshot, owned bool) (int, bool) {
	w.frags.inside = true
	out, ok := w.process(desc, inIface, now, st, owned)
	w.frags.inside = false
	return out, ok
}

// fragFirst handles the first fragment of datagram k at its fragment
// worker (fw) or at its connection's owner.
func (w *worker) fragFirst(desc *xsk.Desc, inIface int, now int64, st *snapshot, k *fragKey, info *packet.FragInfo, fw bool) (int, bool) {
	p := &w.p
	if fw && len(w.d.workers) > 1 {
		if o := w.ownerOf(p, st); o != w.q {
			e := w.frags.get(k, now, fragRouted)
			out, ok := w.handOff(o, desc, inIface)
			if e == nil {
				w.ctr.FragTableFull.Add(1)
				return out, ok
			}
			e.state, e.owner = fragRouted, int16(o)
			e.account(info)
			w.releaseHeld(e, now, st)
			return out, ok
		}
	}
	in := desc.Addr
	l3off, family := p.L3Off, p.Family
	out, ok := w.processFirst(desc, inIface, now, st, true)
	e := w.frags.get(k, now, fragDropped)
	if e == nil {
		w.ctr.FragTableFull.Add(1)
		return out, ok
	}
	if !ok || out < 0 {
		e.state = fragDropped
	} else {
		w.recordFirst(e, desc, in, out, l3off, family)
	}
	e.account(info)
	if fw {
		w.releaseHeld(e, now, st)
	}
	return out, ok
}

// recordFirst stores in e how the first fragment left: desc is the frame
// as it is now, in where it started before processing (TUN encapsulation
// moves it).
func (w *worker) recordFirst(e *fragEntry, desc *xsk.Desc, in uint64, out int, l3off int, family uint8) {
	frame := w.umem.Bytes(desc.Addr, desc.Len)
	e.state = fragDecided
	e.out = int16(out)
	copy(e.macs[:], frame[:12])
	e.src, e.dst = w.p.Src, w.p.Dst
	e.sport, e.dport = w.p.SrcPort, w.p.DstPort
	e.tun = desc.Addr != in
	if !e.tun {
		// The addresses as written (the rewrites keep w.p in step).
		if family == 4 && len(frame) >= l3off+20 {
			e.src, e.dst = inet.AddrFromSlice4(frame[l3off+12:l3off+16]), inet.AddrFromSlice4(frame[l3off+16:l3off+20])
		} else if family == 6 && len(frame) >= l3off+40 {
			e.src, e.dst = inet.AddrFromSlice16(frame[l3off+8:l3off+24]), inet.AddrFromSlice16(frame[l3off+24:l3off+40])
		}
		return
	}
	// Encap wrote Ethernet (no VLAN tags) and the outer IP header.
	const eth = packet.EthHeaderLen
	if frame[12] == 0x08 && frame[13] == 0x00 && len(frame) >= eth+20 {
		e.tunSrc, e.tunDst = inet.AddrFromSlice4(frame[eth+12:eth+16]), inet.AddrFromSlice4(frame[eth+16:eth+20])
	} else if len(frame) >= eth+40 {
		e.tunSrc, e.tunDst = inet.AddrFromSlice16(frame[eth+8:eth+24]), inet.AddrFromSlice16(frame[eth+24:eth+40])
	}
	e.mtu = 0xffff
	if nh, ok := w.d.res.lookup(e.tunDst); ok {
		e.mtu = int32(nh.MTU)
	}
}

// fragLater handles a later fragment of datagram k at its fragment worker
// (fw) or at the owner its first went to.
func (w *worker) fragLater(desc *xsk.Desc, frame []byte, inIface int, now int64, k *fragKey, info *packet.FragInfo, fw bool) (int, bool) {
	e := w.frags.lookup(k, now)
	if e != nil && e.state != fragWaiting {
		e.expires = now + fragTTL
		switch e.state {
		case fragRouted:
			e.account(info)
			return w.handOff(int(e.owner), desc, inIface)
		case fragDecided:
			e.account(info)
			return w.fragSend(desc, frame, e)
		default:
			e.account(info)
			w.drop(DropFragment)
			return 0, false
		}
	}
	if !fw {
		// At the owner, which has not forwarded the first: it was
		// dropped, or found no room here.
		w.drop(DropFragment)
		return 0, false
	}
	if e = w.frags.get(k, now, fragWaiting); e == nil || w.frags.nheld == fragHeldMax {
		w.ctr.FragTableFull.Add(1)
		w.drop(DropFragment)
		return 0, false
	}
	for i := range w.frags.held {
		h := &w.frags.held[i]
		if h.expires == 0 {
			*h = fragHeldFrame{key: *k, desc: *desc, iface: int32(inIface), info: *info, expires: now + fragHoldTimeout}
			break
		}
	}
	w.frags.nheld++
	w.ctr.FragHeld.Add(1)
	return outKept, true
}

// fragSend forwards a later fragment as its first was (e, fragDecided);
// w.p describes it.
func (w *worker) fragSend(desc *xsk.Desc, frame []byte, e *fragEntry) (int, bool) {
	p := &w.p
	if !packet.DecTTL(frame, p) {
		w.drop(DropTTL)
		return 0, false
	}
	if e.tun {
		outer := uint8(6)
		if e.tunDst.Is4() {
			outer = 4
		}
		if p.L3Len+packet.EncapOverhead(outer) > int(e.mtu) {
			w.drop(DropTooBig) // no ICMP error about a later fragment
			return 0, false
		}
		p.SrcPort, p.DstPort = e.sport, e.dport // the first's flow label
		base := w.umem.ChunkBase(desc.Addr)
		chunk := w.umem.Bytes(base, uint32(w.umem.FrameSize()))
		w.ipID++
		off, n, err := packet.Encap(chunk, int(desc.Addr-base), int(desc.Len), p, e.tunSrc, e.tunDst, w.ipID)
		if err != nil {
			w.drop(DropMalformed)
			return 0, false
		}
		desc.Addr, desc.Len = base+uint64(off), uint32(n)
		frame = chunk[off : off+n]
	} else {
		// Addresses only: a later fragment has no L4 header.
		packet.FullNAT(frame, p, e.src, 0, e.dst, 0)
	}
	copy(frame[:12], e.macs[:])
	w.ctr.FragForwarded.Add(1)
	return int(e.out), true
}

// releaseHeld sends on the held fragments of e's datagram now that its
// first has been handled: to the owner, forwarded, or dropped.
func (w *worker) releaseHeld(e *fragEntry, now int64, st *snapshot) {
	if w.frags.nheld == 0 {
		return
	}
	for i := range w.frags.held {
		h := &w.frags.held[i]
		if h.expires == 0 || h.key != e.key {
			continue
		}
		desc, iface, info := h.desc, int(h.iface), h.info
		h.expires = 0
		w.frags.nheld--
		if e.expires != 0 {
			e.account(&info)
		}
		var out int
		var ok bool
		switch e.state {
		case fragRouted:
			out, ok = w.handOff(int(e.owner), &desc, iface)
		case fragDecided:
			frame := w.umem.Bytes(desc.Addr, desc.Len)
			if err := packet.Parse(frame, &w.p); err != nil {
				w.drop(DropMalformed)
				break
			}
			out, ok = w.fragSend(&desc, frame, e)
		default:
			w.drop(DropFragment)
		}
		w.emit(desc, out, ok)
	}
}

// expireFrags drops the held fragments whose first has not come in time.
func (w *worker) expireFrags(now int64) {
	if w.frags.nheld == 0 {
		return
	}
	for i := range w.frags.held {
		h := &w.frags.held[i]
		if h.expires != 0 && h.expires <= now {
			h.expires = 0
			w.frags.nheld--
			w.ctr.FragTimedOut.Add(1)
			w.release(h.desc.Addr)
		}
	}
}
