package xsk

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

const xskPort = 9000

// TestReceiveUDP receives datagrams sent by a real UDP socket in the peer
// namespace, checks their payloads with gopacket as the decoder, and
// confirms where the kernel puts received data in a chunk:
// PacketHeadroom + UMEM headroom.
func TestReceiveUDP(t *testing.T) {
	requireRoot(t)
	for _, headroom := range []int{0, 128} {
		t.Run(fmt.Sprintf("headroom=%d", headroom), func(t *testing.T) {
			tp := newPairTopo(t)
			u := newTestUMEM(t, 256, headroom)
			s := openSocket(t, u, &tp.x, tp.xsks, Options{})
			if s.ZeroCopy() {
				t.Log("veth bound in zero-copy mode")
			}
			free := newFreeList(u)
			free.fill(s, u.NumFrames())

			conn := listenUDP(t, tp.p.ns, netip.AddrPortFrom(tp.p.ip, 0))
			dst := netip.AddrPortFrom(tp.x.ip, xskPort)
			const n = 64
			want := map[string]bool{}
			for i := range n {
				msg := fmt.Sprintf("gx-receive-%03d", i)
				want[msg] = true
				if _, err := conn.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
					t.Fatal(err)
				}
			}
			got := 0
			pump(t, []*Socket{s}, 5*time.Second, func() bool { return got == n }, func(_ *Socket, d Desc) {
				defer free.push(u.ChunkBase(d.Addr))
				if off := d.Addr - u.ChunkBase(d.Addr); off != uint64(PacketHeadroom+headroom) {
					t.Errorf("frame at chunk offset %d, want %d", off, PacketHeadroom+headroom)
				}
				pkt := gopacket.NewPacket(u.Bytes(d.Addr, d.Len), layers.LayerTypeEthernet, gopacket.NoCopy)
				udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if udp == nil || ip == nil || udp.DstPort != xskPort {
					t.Logf("ignoring frame %v", pkt)
					return
				}
				if !ip.SrcIP.Equal(tp.p.ip.AsSlice()) || !want[string(udp.Payload)] {
					t.Errorf("unexpected datagram from %v: %q", ip.SrcIP, udp.Payload)
				}
				delete(want, string(udp.Payload))
				got++
			})
			if len(want) != 0 {
				t.Errorf("%d datagrams missing", len(want))
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.RxDropped != 0 || st.RxRingFull != 0 || st.Rx.Pending() != 0 || st.Rx.Consumer < n {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestEcho turns received datagrams around in place and transmits them
// back on the same socket; the peer's UDP socket must get every reply. Odd
// frames are first moved to other offsets in their chunk (the start, an odd
// offset, the very end) to show that TX takes any offset, which is what
// prepending a header by lowering Addr relies on.
func TestEcho(t *testing.T) {
	requireRoot(t)
	for _, o := range []Options{
		{Mode: ModeCopy, TxSize: 64, CompSize: 64},
		{NeedWakeup: true},
	} {
		t.Run(fmt.Sprintf("mode=%v,needwakeup=%v", o.Mode, o.NeedWakeup), func(t *testing.T) {
			tp := newPairTopo(t)
			u := newTestUMEM(t, 512, 0)
			s := openSocket(t, u, &tp.x, tp.xsks, o)
			free := newFreeList(u)
			free.fill(s, 256)

			conn := listenUDP(t, tp.p.ns, netip.AddrPortFrom(tp.p.ip, 0))
			me := netip.AddrPortFrom(tp.x.ip, xskPort)
			const n = 100 // more than the 64-entry TX ring of the first case
			for i := range n {
				if _, err := conn.WriteToUDPAddrPort(fmt.Appendf(nil, "gx-echo-%03d", i), me); err != nil {
					t.Fatal(err)
				}
			}

			inFlight := map[uint64]uint64{} // chunk base -> transmitted address
			lowBitLost := 0
			var queue []Desc // echoes waiting for TX ring room
			comp := make([]uint64, 64)
			echoed, completed, seen := 0, 0, 0
			drain := func() {
				if len(queue) > 0 {
					k, err := s.Transmit(queue)
					if err != nil {
						t.Fatalf("transmit: %v", err)
					}
					echoed += k
					queue = queue[k:]
				} else if err := s.Flush(); err != nil {
					t.Fatalf("flush: %v", err)
				}
				// Read the completion ring raw (not through Complete, which
				// returns chunk bases) to record what the kernel reports.
				k := s.comp.consume(comp)
				for _, a := range comp[:k] {
					base := u.ChunkBase(a)
					sentAt, ok := inFlight[base]
					switch {
					case !ok:
						t.Errorf("completion of %#x, which is not in flight", a)
					case a != sentAt && a == sentAt&^1:
						// Linux 6.18 copy mode tags the address in the skb
						// with bit 0 and clears it on completion.
						lowBitLost++
					case a != sentAt:
						t.Errorf("completion of %#x for a frame sent at %#x", a, sentAt)
					}
					delete(inFlight, base)
					free.push(base)
				}
				completed += k
				free.fill(s, s.FillFree())
			}
			pump(t, []*Socket{s}, 10*time.Second, func() bool { drain(); return completed == n }, func(_ *Socket, d Desc) {
				f := parseUDP4(u.Bytes(d.Addr, d.Len))
				if !f.ok || f.dport != xskPort {
					free.push(u.ChunkBase(d.Addr))
					return
				}
				f.rewrite(tp.x.mac, tp.p.mac, me, netip.AddrPortFrom(f.srcIP, f.sport))
				base, chunk := u.Chunk(d.Addr)
				var off uint64
				switch seen % 4 {
				case 0:
					off = d.Addr - base // where it was received
				case 1:
					off = 0
				case 2:
					off = 3
				case 3:
					off = uint64(u.FrameSize()) - uint64(d.Len)
				}
				copy(chunk[off:], chunk[d.Addr-base:d.Addr-base+uint64(d.Len)])
				seen++
				inFlight[base] = base + off
				queue = append(queue, Desc{Addr: base + off, Len: d.Len})
			})
			if echoed != n || len(inFlight) != 0 {
				t.Fatalf("echoed %d, %d still in flight", echoed, len(inFlight))
			}
			if lowBitLost > 0 {
				t.Logf("%d completions of odd addresses came back with bit 0 cleared", lowBitLost)
			}

			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i := range n {
				want[fmt.Sprintf("gx-echo-%03d", i)] = true
			}
			buf := make([]byte, 2048)
			for range n {
				k, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("peer read after %d replies: %v", n-len(want), err)
				}
				if from != me || !want[string(buf[:k])] {
					t.Errorf("reply %q from %v", buf[:k], from)
				}
				delete(want, string(buf[:k]))
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.TxInvalidDescs != 0 || st.Tx.Pending() != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSharedUMEM receives on veth A and transmits the same UMEM frames on
// veth B through a second socket sharing the UMEM: no copy in userspace.
func TestSharedUMEM(t *testing.T) {
	requireRoot(t)
	xns, p1, p2 := newNS(t), newNS(t), newNS(t)
	a := vethEnd{ns: xns, name: "gxa0", mac: mac(0x11), ip: netip.MustParseAddr("198.18.1.1")}
	pa := vethEnd{ns: p1, name: "gxa1", mac: mac(0x12), ip: netip.MustParseAddr("198.18.1.2")}
	b := vethEnd{ns: xns, name: "gxb0", mac: mac(0x21), ip: netip.MustParseAddr("198.18.2.1")}
	pb := vethEnd{ns: p2, name: "gxb1", mac: mac(0x22), ip: netip.MustParseAddr("198.18.2.2")}
	addVeth(t, &a, &pa)
	addVeth(t, &b, &pb)
	xsks := attachRedirect(t, &a)

	u := newTestUMEM(t, 512, 0)
	sa := openSocket(t, u, &a, xsks, Options{})
	sb := openSocket(t, u, &b, nil, Options{})
	if sa.ZeroCopy() != sb.ZeroCopy() {
		t.Fatal("shared socket has a different mode")
	}
	free := newFreeList(u)
	free.fill(sa, 256)
	free.fill(sb, 16) // B's own fill ring works too, though nothing arrives there

	// Sharing rules.
	if _, err := NewSocket(u, a.ifindex, 0, Options{}); err == nil {
		t.Error("second socket on the same interface and queue accepted")
	}
	if _, err := NewSocket(u, b.ifindex, 0, Options{NeedWakeup: true}); err == nil {
		t.Error("shared socket with another need-wakeup setting accepted")
	}

	sender := listenUDP(t, p1, netip.AddrPortFrom(pa.ip, 0))
	receiver := listenUDP(t, p2, netip.AddrPortFrom(pb.ip, xskPort+1))
	const n = 64
	for i := range n {
		if _, err := sender.WriteToUDPAddrPort(fmt.Appendf(nil, "gx-shared-%03d", i), netip.AddrPortFrom(a.ip, xskPort)); err != nil {
			t.Fatal(err)
		}
	}
	from := netip.AddrPortFrom(b.ip, xskPort)
	to := netip.AddrPortFrom(pb.ip, xskPort+1)
	received := map[uint64]bool{}
	var queue []Desc
	comp := make([]uint64, 64)
	forwarded, completed := 0, 0
	pump(t, []*Socket{sa, sb}, 10*time.Second, func() bool {
		k, err := sb.Transmit(queue)
		if err != nil {
			t.Fatalf("transmit on B: %v", err)
		}
		forwarded += k
		queue = queue[k:]
		if sa.Complete(comp) != 0 {
			t.Fatal("completion on A for frames sent on B")
		}
		k = sb.Complete(comp)
		for _, base := range comp[:k] {
			if !received[base] {
				t.Errorf("B completed %#x, which A never received", base)
			}
			free.push(base)
		}
		completed += k
		free.fill(sa, sa.FillFree())
		return completed == n
	}, func(s *Socket, d Desc) {
		if s != sa {
			t.Errorf("frame received on B")
		}
		f := parseUDP4(u.Bytes(d.Addr, d.Len))
		if !f.ok || f.dport != xskPort {
			free.push(u.ChunkBase(d.Addr))
			return
		}
		f.rewrite(b.mac, pb.mac, from, to)
		received[u.ChunkBase(d.Addr)] = true
		queue = append(queue, d) // the very same UMEM address, now on B
	})
	if forwarded != n {
		t.Fatalf("forwarded %d of %d", forwarded, n)
	}

	if err := receiver.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	got := map[string]bool{}
	for len(got) < n {
		k, src, err := receiver.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("receiver got %d of %d: %v", len(got), n, err)
		}
		if src != from {
			t.Errorf("datagram from %v", src)
		}
		got[string(buf[:k])] = true
	}
	for i := range n {
		if !got[fmt.Sprintf("gx-shared-%03d", i)] {
			t.Errorf("datagram %d missing", i)
		}
	}
}

// TestTransmitLinkDown: a link going down and then away must surface as
// errors or zero counts from every call, never a panic.
func TestTransmitLinkDown(t *testing.T) {
	tp := newPairTopo(t)
	u := newTestUMEM(t, 256, 0)
	s := openSocket(t, u, &tp.x, tp.xsks, Options{TxSize: 32})
	free := newFreeList(u)
	free.fill(s, 64)
	p := NewPoller([]*Socket{s})

	frame := make([]byte, 60)
	batch := make([]Desc, 8)
	for i := range batch {
		a, _ := free.pop()
		copy(u.Bytes(a, uint32(len(frame))), frame)
		batch[i] = Desc{Addr: a, Len: uint32(len(frame))}
	}

	sh(t, "ip", "-n", tp.x.ns, "link", "set", tp.x.name, "down")
	sawDown, sawFull := false, false
	for range 10 {
		n, err := s.Transmit(batch)
		if err != nil && !isErrno(err, unix.ENETDOWN) {
			t.Errorf("transmit on a down link: %v", err)
		}
		sawDown = sawDown || err != nil
		sawFull = sawFull || n == 0
	}
	if !sawDown || !sawFull {
		t.Errorf("down link: error seen %v, full ring seen %v", sawDown, sawFull)
	}
	if err := s.Wakeup(); err != nil && !isErrno(err, unix.ENETDOWN) {
		t.Errorf("wakeup on a down link: %v", err)
	}

	sh(t, "ip", "-n", tp.x.ns, "link", "del", tp.x.name)
	n, err := s.Transmit(batch)
	t.Logf("after delete: transmit n=%d err=%v", n, err)
	if n != 0 || err == nil {
		t.Errorf("transmit on a deleted link: n=%d err=%v", n, err)
	}
	if err := s.Flush(); err == nil {
		t.Error("flush on a deleted link succeeded")
	}
	t.Logf("after delete: wakeup %v", s.Wakeup())
	if err := p.Wait(0); err != nil {
		t.Errorf("poll: %v", err)
	}
	t.Logf("after delete: poll failed=%v readable=%v", p.Failed(0), p.Readable(0))
	if _, err := s.Stats(); err != nil {
		t.Errorf("stats: %v", err)
	}
	s.Receive(make([]Desc, 4))
	s.Complete(make([]uint64, 4))
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	// Everything on a closed socket is inert too.
	if n, err := s.Transmit(batch); n != 0 || err == nil {
		t.Errorf("transmit after close: n=%d err=%v", n, err)
	}
	if s.Receive(make([]Desc, 4)) != 0 || s.Fill([]uint64{0}) != 0 || s.Complete(make([]uint64, 4)) != 0 || s.FillFree() != 0 {
		t.Error("closed socket moved entries")
	}
}

// TestHotPathAllocs runs the whole worker cycle on a live socket, with
// frames really going out and coming back, and requires zero allocations.
func TestHotPathAllocs(t *testing.T) {
	tp := newPairTopo(t)
	u := newTestUMEM(t, 256, 0)
	s := openSocket(t, u, &tp.x, tp.xsks, Options{NeedWakeup: true})
	free := newFreeList(u)
	free.fill(s, 128)
	p := NewPoller([]*Socket{s})
	// The peer answers with ICMP port unreachable now and then, which comes
	// back through the XDP program: the cycle sees RX traffic too.
	tmpl := make([]byte, 14+20+8+18)
	f := udp4Frame{b: tmpl, ip: tmpl[14:], udp: tmpl[34:], ipHLen: 20}
	tmpl[12], tmpl[13] = 0x08, 0x00
	tmpl[14] = 0x45
	tmpl[16], tmpl[17] = 0, byte(len(tmpl)-14)
	tmpl[23] = unix.IPPROTO_UDP
	tmpl[38], tmpl[39] = 0, byte(len(tmpl)-34)
	f.rewrite(tp.x.mac, tp.p.mac, netip.AddrPortFrom(tp.x.ip, xskPort), netip.AddrPortFrom(tp.p.ip, 9))

	tx := make([]Desc, 4)
	rx := make([]Desc, 64)
	comp := make([]uint64, 64)
	var firstErr error
	sent, got := 0, 0
	cycle := func() {
		n := 0
		for range tx {
			a, ok := free.pop()
			if !ok {
				break
			}
			copy(u.Bytes(a, uint32(len(tmpl))), tmpl)
			tx[n] = Desc{Addr: a, Len: uint32(len(tmpl))}
			n++
		}
		k, err := s.Transmit(tx[:n])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, d := range tx[k:n] {
			free.push(d.Addr)
		}
		sent += k
		for _, a := range comp[:s.Complete(comp)] {
			free.push(a)
		}
		for _, d := range rx[:s.Receive(rx)] {
			got++
			free.push(u.ChunkBase(d.Addr))
		}
		if spare := len(free.addrs) - 64; spare > 0 {
			free.fill(s, min(spare, s.FillFree()))
		}
		if s.NeedFillWakeup() {
			_ = s.Wakeup()
		}
		if err := p.Wait(0); err != nil && firstErr == nil {
			firstErr = err
		}
		_, _ = s.Stats()
		_, _ = u.Chunk(tx[0].Addr)
	}
	for range 20 {
		cycle()
	}
	if allocs := testing.AllocsPerRun(200, cycle); allocs != 0 {
		t.Errorf("%v allocations per cycle", allocs)
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if sent < 200 {
		t.Errorf("only %d frames sent", sent)
	}
	t.Logf("sent %d frames, received %d", sent, got)
}

// TestSocketErrors covers the kernel refusing a bind.
func TestSocketErrors(t *testing.T) {
	tp := newPairTopo(t)
	u := newTestUMEM(t, 64, 0)
	try := func(ifindex, queue int, o Options) (*Socket, error) {
		var s *Socket
		err := inNS(tp.x.ns, func() error {
			var err error
			s, err = NewSocket(u, ifindex, queue, o)
			return err
		})
		return s, err
	}
	if s, err := try(99999, 0, Options{}); err == nil {
		s.Close()
		t.Error("socket on a missing interface")
	} else {
		t.Logf("missing interface: %v", err)
	}
	if s, err := try(tp.x.ifindex, 99, Options{}); err == nil {
		s.Close()
		t.Error("socket on a missing queue")
	} else {
		t.Logf("missing queue: %v", err)
	}
	if s, err := try(tp.x.ifindex, 0, Options{Mode: ModeZeroCopy}); err == nil {
		if !s.ZeroCopy() {
			t.Error("zero-copy bind succeeded in copy mode")
		}
		s.Close()
	} else {
		t.Logf("forced zero-copy on veth: %v", err)
	}
	// Failed binds left nothing behind: a good socket still registers the UMEM.
	s, err := try(tp.x.ifindex, 0, Options{})
	if err != nil {
		t.Fatalf("auto bind after failures: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTransmitBeyondBudget queues far more frames than the kernel sends per
// sendto in copy mode (32) in one Transmit call; Transmit must keep kicking
// while that makes progress, so nothing is left waiting in the TX ring.
func TestTransmitBeyondBudget(t *testing.T) {
	for _, nw := range []bool{false, true} {
		t.Run(fmt.Sprintf("needwakeup=%v", nw), func(t *testing.T) {
			tp := newPairTopo(t)
			u := newTestUMEM(t, 512, 0)
			s := openSocket(t, u, &tp.x, tp.xsks, Options{Mode: ModeCopy, NeedWakeup: nw, TxSize: 512, CompSize: 512})
			conn := listenUDP(t, tp.p.ns, netip.AddrPortFrom(tp.p.ip, xskPort))
			const n = 200
			descs := make([]Desc, n)
			for i := range descs {
				a := u.FrameAddr(i)
				b := u.Bytes(a, 14+20+8+16)
				b[12], b[13], b[14] = 0x08, 0x00, 0x45
				b[16], b[17], b[23] = 0, byte(len(b)-14), unix.IPPROTO_UDP
				b[38], b[39] = 0, byte(len(b)-34)
				copy(b[42:], fmt.Sprintf("gx-budget-%05d", i))
				parseUDP4(b).rewrite(tp.x.mac, tp.p.mac, netip.AddrPortFrom(tp.x.ip, xskPort), netip.AddrPortFrom(tp.p.ip, xskPort))
				descs[i] = Desc{Addr: a, Len: uint32(len(b))}
			}
			k, err := s.Transmit(descs)
			if k != n || err != nil {
				t.Fatalf("transmit: %d, %v", k, err)
			}
			if p := s.TxPending(); p != 0 {
				t.Errorf("%d frames left in the TX ring", p)
			}
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			for i := range n {
				if _, err := conn.Read(buf); err != nil {
					t.Fatalf("peer got %d of %d: %v", i, n, err)
				}
			}
		})
	}
}
