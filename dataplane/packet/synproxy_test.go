package packet

import (
	"encoding/binary"
	"errors"
	"github.com/govs/govs/lvs"
	"testing"
)

// TestProxySYNAndACK: the SYN proxy's builders keep VLAN tags, set lengths
// and checksums right (verifyChecksums, an oracle of its own) and refuse
// what they cannot build.
func TestProxySYNAndACK(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, vlans := range []int{0, 2} {
			src, dst := "198.18.0.1", "198.18.0.100"
			if v6 {
				src, dst = "2001:db8::1", "2001:db8::100"
			}
			frame := build(t, spec{vlans: vlans, src: src, dst: dst, proto: lvs.ProtoTCP, sport: 4000, dport: 80,
				tcpFlags: 0x18, payload: []byte("GET / HTTP/1.1\r\n")})
			buf := make([]byte, 256)
			copy(buf, frame)
			p := mustParse(t, frame)
			n, err := ProxySYN(buf, &p, 1234, 5000, SynOptions{MSS: 1440, WScale: 9, HasWScale: true, SACK: true})
			if err != nil {
				t.Fatal(err)
			}
			out := buf[:n]
			if err := verifyChecksums(out); err != nil {
				t.Errorf("v6=%v vlans=%d SYN: %v", v6, vlans, err)
			}
			q := mustParse(t, out)
			h := out[q.L4Off:]
			if q.TCPFlags != lvs.TCPSyn || binary.BigEndian.Uint32(h[4:]) != 1234 || q.L3Off+q.L3Len != n || int(h[12]>>4)*4 != 32 ||
				q.SrcPort != 4000 || q.DstPort != 80 || q.Src != addr(src) || q.Dst != addr(dst) || q.VLANs != vlans {
				t.Errorf("v6=%v vlans=%d SYN: %+v", v6, vlans, q)
			}
			if ws, ok := TCPWindowScale(out, &q); !ok || ws != 9 {
				t.Errorf("window scale %d %v, want 9", ws, ok)
			}
			// The server's SYN-ACK back: the ACK to it.
			n, err = ProxyACK(out, &q, 1235, 99, 77)
			if err != nil {
				t.Fatal(err)
			}
			out = out[:n]
			if err := verifyChecksums(out); err != nil {
				t.Errorf("v6=%v vlans=%d ACK: %v", v6, vlans, err)
			}
			r := mustParse(t, out)
			h = out[r.L4Off:]
			if r.TCPFlags != lvs.TCPAck || binary.BigEndian.Uint32(h[4:]) != 1235 || binary.BigEndian.Uint32(h[8:]) != 99 ||
				binary.BigEndian.Uint16(h[14:]) != 77 || r.Src != addr(dst) || r.Dst != addr(src) || r.SrcPort != 80 || r.DstPort != 4000 ||
				r.L3Off+r.L3Len != n || r.L4Off+TCPHeaderLen != n || string(out[0:6]) != string(frame[6:12]) {
				t.Errorf("v6=%v vlans=%d ACK: %+v", v6, vlans, r)
			}
		}
	}
	opts := build(t, spec{src: "198.18.0.1", dst: "198.18.0.100", proto: lvs.ProtoTCP, sport: 1, dport: 2, tcpFlags: 0x10, ipOptions: true})
	p := mustParse(t, opts)
	if _, err := ProxySYN(make([]byte, 256), &p, 1, 1, SynOptions{MSS: 536}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("IPv4 options: %v, want ErrBadArgument", err)
	}
	plain := build(t, spec{src: "198.18.0.1", dst: "198.18.0.100", proto: lvs.ProtoTCP, sport: 1, dport: 2, tcpFlags: 0x10})
	p = mustParse(t, plain)
	if _, err := ProxySYN(plain[:p.L4Off+TCPHeaderLen], &p, 1, 1, SynOptions{MSS: 536}); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("no room for options: %v, want ErrShortBuffer", err)
	}
}

// TestTCPWindowScale walks option layouts, broken ones included.
func TestTCPWindowScale(t *testing.T) {
	for _, tc := range []struct {
		opts []byte
		ws   uint8
		ok   bool
	}{
		{[]byte{2, 4, 5, 0xb4, 1, 3, 3, 7}, 7, true},
		{[]byte{1, 1, 4, 2, 1, 3, 3, 20}, 14, true},   // clamped
		{[]byte{2, 4, 5, 0xb4, 0, 3, 3, 7}, 0, false}, // after EOL
		{[]byte{2, 0, 1, 3, 3, 1, 1, 1}, 0, false},    // impossible length
		{[]byte{1, 1, 1, 1, 1, 1, 1, 3}, 0, false},    // cut short
		{[]byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 1, 3, 3, 2}, 2, true},
	} {
		frame := build(t, spec{src: "198.18.0.1", dst: "198.18.0.100", proto: lvs.ProtoTCP, sport: 1, dport: 2, tcpFlags: 0x12})
		// Put the options in, as a header longer by len(opts).
		p := mustParse(t, frame)
		f := append(append(append([]byte{}, frame[:p.L4Off+TCPHeaderLen]...), tc.opts...), frame[p.L4Off+TCPHeaderLen:]...)
		f[p.L4Off+12] = uint8((TCPHeaderLen+len(tc.opts))/4) << 4
		binary.BigEndian.PutUint16(f[p.L3Off+2:], uint16(p.L3Len+len(tc.opts)))
		q := mustParse(t, f)
		if ws, ok := TCPWindowScale(f, &q); ws != tc.ws || ok != tc.ok {
			t.Errorf("options % x: %d %v, want %d %v", tc.opts, ws, ok, tc.ws, tc.ok)
		}
	}
}
