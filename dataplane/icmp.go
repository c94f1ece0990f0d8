package dataplane

import (
	"errors"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/dataplane/xsk"
)

// processICMP forwards an ICMP error, parsed in p, that quotes a packet of
// a tracked connection to the party that sent that packet, with the quote
// translated so that the receiver recognises its own packet, as IPVS does.
func (w *worker) processICMP(desc *xsk.Desc, frame []byte, p *packet.Parsed, now int64, st *snapshot) (int, bool) {
	in := &p.Inner
	if !in.Valid || !in.HasPorts {
		w.drop(DropUnsupported)
		return 0, false
	}
	// The quoted packet is one the director sent; its connection is found
	// from the other end.
	t := conntrack.Tuple{Src: in.Dst, Dst: in.Src, SrcPort: in.DstPort, DstPort: in.SrcPort, Proto: in.Proto}
	c, dir, ok := w.ct.Lookup(&t, now)
	if !ok {
		w.drop(DropNoConn)
		return 0, false
	}
	w.ctr.ICMP.Add(1)
	if dir == conntrack.DirOriginal {
		return w.icmpToRealServer(desc, frame, p, c, st)
	}
	return w.icmpToClient(frame, p, c)
}

// icmpToRealServer forwards an error about a reply the director sent to
// the client (v:vport -> c:cport): the real server must hear of it (path
// MTU, unreachable client).
func (w *worker) icmpToRealServer(desc *xsk.Desc, frame []byte, p *packet.Parsed, c *conntrack.Conn, st *snapshot) (int, bool) {
	cp := w.path(c)
	dst := st.dest(c.Dest)
	// The method translates the addresses and says how the result goes
	// on: NAT and full-NAT then forward like DR; DR forwards the error as
	// it is, TUN encapsulates it.
	fwd, err := fwdOf(c.Fwd).icmpToRealServer(frame, p, c, dst)
	if err != nil {
		w.drop(DropMalformed)
		return 0, false
	}
	if cp.flags&flagSynProxy != 0 {
		synProxyQuote(frame, p, cp) // the quoted seq in the real server's space
	}
	nh, ok := w.nextHop(dst)
	if !ok {
		return 0, false
	}
	return w.toRealServer(desc, frame, p, c, dst, nh, fwd)
}

// icmpToClient forwards an error about a request the director sent to the
// real server: the client must hear of it.
func (w *worker) icmpToClient(frame []byte, p *packet.Parsed, c *conntrack.Conn) (int, bool) {
	cp := w.path(c)
	switch err := fwdOf(c.Fwd).icmpToClient(frame, p, c); {
	case errors.Is(err, errBypassesDirector):
		w.drop(DropUnsupported)
		return 0, false
	case err != nil:
		w.drop(DropMalformed)
		return 0, false
	}
	clientAddrQuote(frame, p, cp) // the quoted seq in the client's space
	packet.SetMACs(frame, cp.clientMAC, cp.localMAC)
	w.ctr.Outbound.Add(1)
	return int(cp.inPort), true
}

// tooBig answers a packet that would exceed the path MTU once encapsulated
// with ICMP "fragmentation needed" / ICMPv6 "packet too big", as IPVS does
// for VS/TUN, quoting the packet as it arrived (its TTL restored). An IPv4 packet without DF is dropped and counted: govs does not
// fragment.
func (w *worker) tooBig(frame []byte, p *packet.Parsed, c *conntrack.Conn, mtu int) {
	cp := w.path(c)
	w.drop(DropTooBig)
	if p.Family == 4 && frame[p.L3Off+6]&0x40 == 0 {
		return
	}
	in := w.d.ifaces[cp.inPort]
	from := in.Addr4
	if p.Family == 6 {
		from = in.Addr6
	}
	if from.IsZero() || len(w.free) == 0 || w.socks[cp.inPort] == nil {
		return
	}
	addr := w.free[len(w.free)-1]
	out := w.umem.Bytes(addr, uint32(w.umem.FrameSize()))
	packet.RestoreTTL(frame, p) // toRealServer decremented it: quote the packet as it came
	n, err := packet.BuildFragNeeded(out, frame, p, mtu, from, cp.localMAC, cp.clientMAC)
	if err != nil {
		return
	}
	w.free = w.free[:len(w.free)-1]
	w.tx[cp.inPort] = append(w.tx[cp.inPort], xsk.Desc{Addr: addr, Len: uint32(n)})
	w.ctr.ICMPSent.Add(1)
}
