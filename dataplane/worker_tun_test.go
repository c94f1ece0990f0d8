package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// TestTunMTUBoundary: a VS/TUN request whose IP packet plus the outer
// header is exactly the next hop's MTU is encapsulated and forwarded; one
// byte more is refused. With DF (and always for IPv6) the client gets an
// ICMP "fragmentation needed" / ICMPv6 "packet too big" naming the MTU it
// may use (MTU minus the outer header), built by the worker and queued on
// the interface the request came in on; without DF the packet is dropped
// and counted, and nothing is sent (govs does not fragment).
func TestTunMTUBoundary(t *testing.T) {
	for _, tc := range []struct {
		v6   bool
		noDF bool
	}{{false, false}, {false, true}, {true, false}} {
		t.Run(fmt.Sprintf("v6=%v noDF=%v", tc.v6, tc.noDF), func(t *testing.T) {
			l := newLab(t, lvs.FwdTun, tc.v6)
			w := l.w
			const mtu = 1500
			ipHdr, outer := 20, 20
			if tc.v6 {
				ipHdr, outer = 40, 40
			}
			maxL3 := mtu - outer                                      // the largest inner packet that fits
			payloadFor := func(l3 int) int { return l3 - ipHdr - 20 } // 20: TCP header

			syn := l.request(40000, lvs.TCPSyn, 0)
			syn.noDF = tc.noDF
			l.mustForward(t, 0, syn, 0, 1, 1)

			// Exactly the MTU once encapsulated: forwarded.
			fit := l.request(40000, lvs.TCPAck, payloadFor(maxL3))
			fit.noDF = tc.noDF
			v := l.mustForward(t, 1, fit, 0, 1, 2)
			if len(v.ips) != 2 {
				t.Fatalf("exact-MTU packet not encapsulated: %d IP headers", len(v.ips))
			}
			outerLen := len(v.ips[0].LayerContents()) + len(v.ips[0].LayerPayload())
			if outerLen != mtu {
				t.Errorf("encapsulated packet is %d bytes, want exactly the MTU %d", outerLen, mtu)
			}
			if n := w.ctr.Drops[DropTooBig].Load(); n != 0 {
				t.Errorf("too_big %d after a packet that fits, want 0", n)
			}

			// One byte more.
			big := l.request(40000, lvs.TCPAck, payloadFor(maxL3+1))
			big.noDF = tc.noDF
			sent := big.bytes(t)
			l.mustDrop(t, 2, big, 0, 3, DropTooBig)
			if tc.noDF {
				if n := w.ctr.ICMPSent.Load(); n != 0 || len(w.tx[0]) != 0 {
					t.Errorf("without DF: %d ICMP errors sent, %d frames queued; want none", n, len(w.tx[0]))
				}
				return
			}
			if n := w.ctr.ICMPSent.Load(); n != 1 || len(w.tx[0]) != 1 {
				t.Fatalf("with DF: %d ICMP errors counted, %d frames queued toward the client; want 1 and 1", n, len(w.tx[0]))
			}
			d := w.tx[0][0]
			if base := w.umem.ChunkBase(d.Addr); base < w.umem.FrameAddr(freeSlot) {
				t.Errorf("ICMP error built in frame %#x, not one of the free frames", base)
			}
			v = inspect(t, w.umem.Bytes(d.Addr, d.Len))
			if v.eth.SrcMAC.String() != dirMAC0.String() || v.eth.DstMAC.String() != clientMAC.String() {
				t.Errorf("ICMP error MACs %s -> %s, want %s -> %s", v.eth.SrcMAC, v.eth.DstMAC, dirMAC0, clientMAC)
			}
			from := dir0IP
			if tc.v6 {
				from = dir0IP6
			}
			if v.src(0) != from || v.dst(0) != l.client {
				t.Errorf("ICMP error %s -> %s, want %s -> %s", v.src(0), v.dst(0), from, l.client)
			}
			var typ, code uint8
			var mtuField uint32
			switch {
			case v.icmp4 != nil:
				typ, code = v.icmp4.TypeCode.Type(), v.icmp4.TypeCode.Code()
				mtuField = uint32(v.icmp4.Seq) // bytes 6..7: next-hop MTU
				if v.icmp4.Id != 0 {
					t.Errorf("ICMP unused field %d, want 0", v.icmp4.Id)
				}
			case v.icmp6 != nil:
				typ, code = v.icmp6.TypeCode.Type(), v.icmp6.TypeCode.Code()
				mtuField = binary.BigEndian.Uint32(v.icmp6.LayerPayload()[:4])
			default:
				t.Fatalf("not an ICMP error")
			}
			wantType := uint8(3)
			wantCode := uint8(4)
			if tc.v6 {
				wantType, wantCode = 2, 0
			}
			if typ != wantType || code != wantCode || mtuField != uint32(maxL3) {
				t.Errorf("ICMP type %d code %d MTU %d, want type %d code %d MTU %d", typ, code, mtuField, wantType, wantCode, maxL3)
			}
			// The quote starts with the client's packet as it came, TTL
			// and IPv4 header checksum included.
			orig := append([]byte(nil), sent[14:]...)
			q := append([]byte(nil), v.quote...)
			if len(q) < 28 || !bytes.Equal(q, orig[:len(q)]) {
				t.Errorf("quote is not the start of the refused packet:\n got  %x\n want %x", q[:min(len(q), 64)], orig[:64])
			}
			if len(w.free) != w.umem.NumFrames()-freeSlot-1 {
				t.Errorf("%d free frames left, want one taken for the ICMP error", len(w.free))
			}
		})
	}
}

// TestTunNoFreeFrame: with no frame to build it in, the ICMP error is not
// sent; the packet is still dropped and counted.
func TestTunNoFreeFrame(t *testing.T) {
	l := newLab(t, lvs.FwdTun, false)
	l.w.free = nil
	l.mustForward(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, 1)
	l.mustDrop(t, 1, l.request(40000, lvs.TCPAck, 1500-20-20-20+1), 0, 2, DropTooBig)
	if n := l.w.ctr.ICMPSent.Load(); n != 0 {
		t.Errorf("%d ICMP errors sent without a free frame", n)
	}
}

// TestTunNoSource: without a source address toward the real server no
// tunnel header can be built.
func TestTunNoSource(t *testing.T) {
	l := newLab(t, lvs.FwdTun, false)
	nh := (*l.w.d.res.table.Load())
	for a, h := range nh {
		h.Src = inet.Addr{}
		nh[a] = h
	}
	l.mustDrop(t, 0, l.request(40000, lvs.TCPSyn, 0), 0, 1, DropNoSource)
}
