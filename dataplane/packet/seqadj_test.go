package packet

import (
	"bytes"
	"encoding/binary"
	"github.com/govs/govs/lvs"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// seg describes a TCP segment for the sequence-translation tests: the
// fields AdjustTCP rewrites, and the options that carry SACK blocks.
type seg struct {
	v6        bool
	vlans     int
	ipOptions bool // IPv4 options: the TCP header at another offset
	trailer   int  // Ethernet padding
	flags     uint8
	seq, ack  uint32
	win       uint16
	opts      []layers.TCPOption
	payload   []byte
}

// sackOpt is a SACK option with the given block edges (left, right, ...).
func sackOpt(edges ...uint32) layers.TCPOption {
	d := make([]byte, 4*len(edges))
	for i, e := range edges {
		binary.BigEndian.PutUint32(d[4*i:], e)
	}
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionData: d}
}

var (
	nop       = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	timestamp = layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 0, 1, 0, 0xff, 0xff, 0xff, 0xf0}}
)

// frame serialises s with gopacket, which computes every checksum.
func (s seg) frame(tb testing.TB) []byte {
	tb.Helper()
	src, dst := "198.18.0.1", "198.18.1.1"
	if s.v6 {
		src, dst = "2001:db8::1", "2001:db8:1::1"
	}
	f := build(tb, spec{vlans: s.vlans, src: src, dst: dst, proto: lvs.ProtoUDP, sport: 1, dport: 2, ipOptions: s.ipOptions})
	p := mustParse(tb, f)
	// Replace the UDP header with the TCP segment: build's TCP has fixed
	// sequence numbers and no options.
	var network gopacket.NetworkLayer
	pk := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if s.v6 {
		ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ip.NextHeader = layers.IPProtocolTCP
		network = ip
	} else {
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ip.Protocol = layers.IPProtocolTCP
		network = ip
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: s.seq, Ack: s.ack, Window: s.win,
		FIN: s.flags&0x01 != 0, SYN: s.flags&0x02 != 0, RST: s.flags&0x04 != 0, PSH: s.flags&0x08 != 0,
		ACK: s.flags&0x10 != 0, Options: s.opts}
	if err := tcp.SetNetworkLayerForChecksum(network); err != nil {
		tb.Fatal(err)
	}
	ls := []gopacket.SerializableLayer{}
	for _, l := range pk.Layers() {
		if l.LayerType() == layers.LayerTypeUDP {
			break
		}
		ls = append(ls, l.(gopacket.SerializableLayer))
	}
	ls = append(ls, tcp, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	out := append([]byte(nil), buf.Bytes()...)
	for range s.trailer {
		out = append(out, 0xee)
	}
	if q := mustParse(tb, out); q.Proto != lvs.ProtoTCP || q.L3Off != p.L3Off {
		tb.Fatalf("built %+v", q)
	}
	return out
}

// adjusted is s as AdjustTCP(seqAdd, ackAdd, winShift) should leave it,
// worked out field by field without package code.
func (s seg) adjusted(seqAdd, ackAdd uint32, winShift int8) seg {
	a := s
	a.seq += seqAdd
	a.win = refShiftWindow(s.win, winShift)
	if s.flags&0x10 == 0 {
		return a
	}
	a.ack += ackAdd
	a.opts = nil
	for _, o := range s.opts {
		if o.OptionType == layers.TCPOptionKindSACK {
			d := bytes.Clone(o.OptionData)
			for i := 0; i+4 <= len(d); i += 4 {
				binary.BigEndian.PutUint32(d[i:], binary.BigEndian.Uint32(d[i:])+ackAdd)
			}
			o.OptionData = d
		}
		a.opts = append(a.opts, o)
	}
	return a
}

// refShiftWindow is the window rescaling written out plainly.
func refShiftWindow(w uint16, shift int8) uint16 {
	v := uint64(w)
	if shift >= 0 {
		for range int(shift) {
			v *= 2
			if v > 0xffff {
				return 0xffff
			}
		}
		return uint16(v)
	}
	for range -int(shift) {
		v /= 2
	}
	return uint16(v)
}

// neg is -d modulo 2^32: how a caller passes a negative offset.
func neg(d uint32) uint32 { return -d }

func TestAdjustTCP(t *testing.T) {
	const delta = 0x9e3779b9 // real server ISN - cookie
	data := ackData()
	cases := []struct {
		name     string
		s        seg
		seqAdd   uint32
		ackAdd   uint32
		winShift int8
	}{
		{name: "request ack", s: seg{flags: 0x10, seq: 1000, ack: 2000, win: 512}, ackAdd: delta},
		{name: "request data", s: seg{flags: 0x18, seq: 1000, ack: 2000, win: 512, payload: data}, ackAdd: delta},
		{name: "reply data", s: seg{flags: 0x18, seq: 0x12345678, ack: 77, win: 1000, payload: data},
			seqAdd: neg(delta), winShift: 3},
		{name: "reply window scaled down", s: seg{flags: 0x10, seq: 5, ack: 6, win: 0xfff0}, seqAdd: neg(delta), winShift: -7},
		{name: "reply window saturates", s: seg{flags: 0x10, seq: 5, ack: 6, win: 0x2001}, seqAdd: 1, winShift: 3},
		{name: "window 0xffff saturates", s: seg{flags: 0x10, win: 0xffff}, seqAdd: 1, winShift: 1},
		{name: "window shift 14", s: seg{flags: 0x10, win: 3}, winShift: 14},
		{name: "window shift 127", s: seg{flags: 0x10, win: 1}, winShift: 127},
		{name: "window shift -128", s: seg{flags: 0x10, win: 0xffff}, winShift: -128},
		{name: "zero window stays zero", s: seg{flags: 0x10, win: 0}, seqAdd: 9, winShift: 14},
		{name: "seq wraps", s: seg{flags: 0x10, seq: 0xfffffff0, ack: 3, win: 9}, seqAdd: 0x20},
		{name: "ack wraps", s: seg{flags: 0x10, seq: 1, ack: 0xffffff00, win: 9}, ackAdd: 0x1000},
		{name: "ack wraps backwards", s: seg{flags: 0x10, seq: 1, ack: 5, win: 9}, ackAdd: neg(10)},
		{name: "no ack flag: ack and sack kept", s: seg{flags: 0x08, seq: 1, ack: 5, win: 9,
			opts: []layers.TCPOption{nop, nop, sackOpt(1, 2)}}, seqAdd: 7, ackAdd: 100},
		{name: "sack one block", s: seg{flags: 0x10, seq: 1, ack: 100,
			opts: []layers.TCPOption{nop, nop, sackOpt(200, 300)}}, ackAdd: delta},
		{name: "sack four blocks wrap", s: seg{flags: 0x10, seq: 1, ack: 100, opts: []layers.TCPOption{nop, nop,
			sackOpt(0xfffffff0, 0xffffffff, 0, 10, 20, 30, 0x7fffffff, 0x80000000)}}, ackAdd: 0x20},
		{name: "sack with timestamps", s: seg{flags: 0x10, seq: 1, ack: 100, win: 300, opts: []layers.TCPOption{nop, nop,
			timestamp, nop, nop, sackOpt(200, 300, 400, 500, 600, 700)}}, ackAdd: neg(delta), seqAdd: delta, winShift: 2},
		// One NOP: the SACK option and its edges at odd offsets.
		{name: "sack at an odd offset", s: seg{flags: 0x10, seq: 1, ack: 100,
			opts: []layers.TCPOption{nop, sackOpt(0x01020304, 0xa0b0c0d0, 0xfffe0001, 0x00ff00ff)}}, ackAdd: delta},
		{name: "two sack options", s: seg{flags: 0x10, seq: 1, ack: 100,
			opts: []layers.TCPOption{sackOpt(1, 2), sackOpt(3, 4)}}, ackAdd: 0x10000},
		{name: "ipv4 options", s: seg{ipOptions: true, flags: 0x10, seq: 1, ack: 2, win: 3,
			opts: []layers.TCPOption{nop, nop, sackOpt(5, 6)}}, seqAdd: 0x11111111, ackAdd: 0x22222222, winShift: 1},
		{name: "vlans and padding", s: seg{vlans: 2, trailer: 6, flags: 0x10, seq: 1, ack: 2, win: 3,
			opts: []layers.TCPOption{nop, nop, sackOpt(5, 6)}}, seqAdd: 3, ackAdd: 4, winShift: -1},
		{name: "offsets of zero with a window shift", s: seg{flags: 0x10, seq: 1, ack: 2, win: 1000,
			opts: []layers.TCPOption{nop, nop, sackOpt(5, 6)}}, winShift: 2},
	}
	for _, c := range cases {
		inFamilies(t, c.name, c.s, func(t *testing.T, s seg) {
			in := s.frame(t)
			want := s.adjusted(c.seqAdd, c.ackAdd, c.winShift).frame(t)
			got := bytes.Clone(in)
			p := mustParse(t, got)
			before := p
			AdjustTCP(got, &p, c.seqAdd, c.ackAdd, c.winShift)
			if d := diff(got, want); d != "" {
				t.Errorf("AdjustTCP: %s", d)
			}
			if p != before {
				t.Errorf("Parsed changed: %+v", p)
			}
			if err := verifyChecksums(got); err != nil {
				t.Error(err)
			}
			checkTCPFields(t, got, s.adjusted(c.seqAdd, c.ackAdd, c.winShift))
		})
	}
}

// checkTCPFields decodes frame with gopacket and compares the fields
// AdjustTCP rewrites with s.
func checkTCPFields(t *testing.T, frame []byte, s seg) {
	t.Helper()
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	tcp, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok {
		t.Fatalf("no TCP layer: %v", pk)
	}
	if tcp.Seq != s.seq || tcp.Ack != s.ack || tcp.Window != s.win {
		t.Errorf("seq %d ack %d window %d, want %d %d %d", tcp.Seq, tcp.Ack, tcp.Window, s.seq, s.ack, s.win)
	}
	var gotSACK, wantSACK [][]byte
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			gotSACK = append(gotSACK, o.OptionData)
		}
	}
	for _, o := range s.opts {
		if o.OptionType == layers.TCPOptionKindSACK {
			wantSACK = append(wantSACK, o.OptionData)
		}
	}
	if len(gotSACK) != len(wantSACK) {
		t.Fatalf("%d SACK options, want %d", len(gotSACK), len(wantSACK))
	}
	for i := range gotSACK {
		if !bytes.Equal(gotSACK[i], wantSACK[i]) {
			t.Errorf("SACK option %d: %x, want %x", i, gotSACK[i], wantSACK[i])
		}
	}
}

// ackData is an odd-length payload: the checksum's trailing byte.
func ackData() []byte {
	b := make([]byte, 37)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// fixTCPChecksum recomputes the TCP checksum of frame from scratch (with
// the reference sum, not csum.go).
func fixTCPChecksum(t *testing.T, frame []byte) {
	t.Helper()
	p := mustParse(t, frame)
	l4 := frame[p.L4Off : p.L3Off+p.L3Len]
	l4[16], l4[17] = 0, 0
	var src, dst []byte
	if p.Family == 4 {
		src, dst = p.Src[12:], p.Dst[12:]
	} else {
		src, dst = p.Src[:], p.Dst[:]
	}
	binary.BigEndian.PutUint16(l4[16:], ^refFold(refSum(l4, refPseudo(src, dst, lvs.ProtoTCP, len(l4)))))
}

// TestAdjustTCPMalformedOptions: options that cannot be walked, and SACK
// options of an impossible length, are left as they are; seq and ack are
// still translated and the checksum stays right.
func TestAdjustTCPMalformedOptions(t *testing.T) {
	base := seg{flags: 0x10, seq: 10, ack: 20, win: 30,
		opts: []layers.TCPOption{nop, nop, sackOpt(100, 200, 300, 400)}, payload: []byte("xyz")}
	// The options start at byte 20 of the TCP header: NOP NOP 05 12 edges...
	cases := []struct {
		name     string
		patch    func(opt []byte)
		keepOpts bool // the option bytes must come out unchanged
	}{
		{name: "sack length 9", patch: func(o []byte) { o[3] = 9 }, keepOpts: true},
		{name: "sack length 2", patch: func(o []byte) { o[3] = 2 }, keepOpts: true},
		{name: "sack length 14", patch: func(o []byte) { o[3] = 14 }, keepOpts: true},
		{name: "sack length 17", patch: func(o []byte) { o[3] = 17 }, keepOpts: true},
		{name: "sack length past the header", patch: func(o []byte) { o[3] = 26 }, keepOpts: true},
		{name: "option length 0 before sack", patch: func(o []byte) { o[0], o[1] = 8, 0 }, keepOpts: true},
		{name: "option length 1 before sack", patch: func(o []byte) { o[0], o[1] = 8, 1 }, keepOpts: true},
		{name: "eol before sack", patch: func(o []byte) { o[1] = 0 }, keepOpts: true},
		{name: "kind as the last byte", patch: func(o []byte) {
			for i := range o {
				o[i] = 1
			}
			o[len(o)-1] = 5
		}, keepOpts: true},
		{name: "unknown option skipped", patch: func(o []byte) { o[0], o[1] = 0xfd, 2 }},
	}
	for _, c := range cases {
		inFamilies(t, c.name, base, func(t *testing.T, s seg) {
			in := s.frame(t)
			p := mustParse(t, in)
			opts := in[p.L4Off+20 : p.L4Off+int(in[p.L4Off+12]>>4)*4]
			c.patch(opts)
			fixTCPChecksum(t, in)
			origOpts := bytes.Clone(opts)

			got := bytes.Clone(in)
			q := mustParse(t, got)
			AdjustTCP(got, &q, 0x01000000, 0x00000100, 1)
			if err := verifyChecksums(got); err != nil {
				t.Error(err)
			}
			gotOpts := got[p.L4Off+20 : p.L4Off+20+len(origOpts)]
			if c.keepOpts && !bytes.Equal(gotOpts, origOpts) {
				t.Errorf("options changed: %x -> %x", origOpts, gotOpts)
			}
			if !c.keepOpts && bytes.Equal(gotOpts, origOpts) {
				t.Errorf("SACK after an unknown option not translated")
			}
			h := got[p.L4Off:]
			if sq, ak, w := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint16(h[14:]); sq != 10+0x01000000 || ak != 20+0x100 || w != 60 {
				t.Errorf("seq %d ack %d window %d", sq, ak, w)
			}
		})
	}

	t.Run("header longer than the segment", func(t *testing.T) {
		s := seg{flags: 0x10, seq: 10, ack: 20, win: 30, opts: []layers.TCPOption{nop, nop, sackOpt(1, 2)}}
		in := s.frame(t)
		p := mustParse(t, in)
		in[p.L4Off+12] = 15 << 4 // 60 bytes, of 32 present
		fixTCPChecksum(t, in)
		got := bytes.Clone(in)
		q := mustParse(t, got)
		AdjustTCP(got, &q, 1, 2, 0)
		if !bytes.Equal(got[p.L4Off+20:], in[p.L4Off+20:]) {
			t.Error("options of an impossible header changed")
		}
		if err := verifyChecksums(got); err != nil {
			t.Error(err)
		}
	})
}

// TestAdjustTCPOthers: frames that are not a whole TCP header are left
// alone.
func TestAdjustTCPOthers(t *testing.T) {
	udp := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: make([]byte, 24)})
	later := bytes.Clone(udp)
	later[14+9] = byte(lvs.ProtoTCP)
	setIPv4Frag(later, 14, 0x0004) // offset 32 bytes
	icmp := icmpErrorFrame(t, false, lvs.ProtoTCP, 0, 0)
	for name, f := range map[string][]byte{"udp": udp, "later tcp fragment": later, "icmp quoting tcp": icmp,
		"udp6": build(t, spec{src: "2001:db8::1", dst: "2001:db8::2", proto: lvs.ProtoUDP, sport: 1, dport: 2})} {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, f)
			got := bytes.Clone(f)
			AdjustTCP(got, &p, 1, 2, 3)
			if !bytes.Equal(got, f) {
				t.Errorf("changed: %s", diff(got, f))
			}
		})
	}
	t.Run("parsed does not fit the frame", func(t *testing.T) {
		f := seg{flags: 0x10, seq: 1}.frame(t)
		p := mustParse(t, f)
		short := bytes.Clone(f[:p.L4Off+10])
		AdjustTCP(short, &p, 1, 2, 3)
		if !bytes.Equal(short, f[:p.L4Off+10]) {
			t.Error("changed a frame its Parsed does not fit")
		}
	})
}

func TestShiftWindow(t *testing.T) {
	for _, w := range []uint16{0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x1234, 0x7fff, 0x8000, 0xfffe, 0xffff} {
		for s := -128; s <= 127; s++ {
			if got, want := shiftWindow(w, int8(s)), refShiftWindow(w, int8(s)); got != want {
				t.Errorf("shiftWindow(%#x, %d) = %#x, want %#x", w, s, got, want)
			}
		}
	}
}

func TestAdjustTCPAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 3,
			opts: []layers.TCPOption{nop, nop, timestamp, nop, nop, sackOpt(5, 6, 7, 8)}}.frame(t)
		p := mustParse(t, f)
		if n := testing.AllocsPerRun(1000, func() { AdjustTCP(f, &p, 0x10000001, 0x7fff0003, -2) }); n != 0 {
			t.Errorf("v6 %v: %v allocations per AdjustTCP", v6, n)
		}
	}
}

// sackSeeds are frames with SACK and other TCP options for the fuzzer.
func sackSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, v6 := range []bool{false, true} {
		for _, opts := range [][]layers.TCPOption{
			{nop, nop, sackOpt(1, 2)},
			{nop, sackOpt(0xfffffff0, 5, 7, 9)},
			{nop, nop, timestamp, nop, nop, sackOpt(1, 2, 3, 4, 5, 6)},
			{sackOpt(1, 2, 3, 4, 5, 6, 7, 8), nop, nop},
		} {
			out = append(out, seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 0x1234, opts: opts, payload: []byte("abc")}.frame(tb))
		}
	}
	return out
}

func FuzzAdjustTCP(f *testing.F) {
	for i, s := range append(seedFrames(f), sackSeeds(f)...) {
		f.Add(s, uint32(0x9e3779b9*i), uint32(i), int8(i%5-2))
	}
	f.Fuzz(func(t *testing.T, data []byte, seqAdd, ackAdd uint32, winShift int8) {
		var p Parsed
		if Parse(data, &p) != nil {
			return
		}
		buf, frame := guarded(data)
		validIn := verifyChecksums(frame) == nil
		q := p
		AdjustTCP(frame, &q, seqAdd, ackAdd, winShift)
		checkGuards(t, buf, len(data))
		if q != p {
			t.Fatalf("Parsed changed")
		}
		if err := verifyChecksums(frame); validIn && err != nil {
			t.Fatalf("checksums valid before, not after: %v\nin  %x\nout %x", err, data, frame)
		}
		// Only sequence numbers, window, checksum and options may change.
		for i := range data {
			if frame[i] == data[i] {
				continue
			}
			if p.Proto != lvs.ProtoTCP || i < p.L4Off+4 || i >= p.L4Off+60 || (i >= p.L4Off+12 && i < p.L4Off+14) || (i >= p.L4Off+18 && i < p.L4Off+20) {
				t.Fatalf("byte %d changed", i)
			}
		}
		if p.Proto == lvs.ProtoTCP && p.Frag != FragLater && p.L4Off+TCPHeaderLen <= p.L3Off+p.L3Len {
			h := frame[p.L4Off:]
			if got, want := binary.BigEndian.Uint16(h[14:]), refShiftWindow(binary.BigEndian.Uint16(data[p.L4Off+14:]), winShift); got != want {
				t.Fatalf("window %#x, want %#x", got, want)
			}
			if got, want := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(data[p.L4Off+4:])+seqAdd; got != want {
				t.Fatalf("seq %#x, want %#x", got, want)
			}
		}
		if winShift != 0 {
			return
		}
		// The inverse translation restores the frame. A checksum field of
		// 0xffff, the other form of a zero sum, comes back as 0x0000
		// (RFC 1624 updates never produce 0xffff).
		AdjustTCP(frame, &q, -seqAdd, -ackAdd, 0)
		checkGuards(t, buf, len(data))
		if !bytes.Equal(frame, data) {
			c := p.L4Off + 16
			if p.Proto == lvs.ProtoTCP && data[c] == 0xff && data[c+1] == 0xff && frame[c] == 0 && frame[c+1] == 0 {
				frame[c], frame[c+1] = 0xff, 0xff
			}
			if !bytes.Equal(frame, data) {
				t.Fatalf("inverse did not restore the frame: %s", diff(frame, data))
			}
		}
	})
}

func BenchmarkAdjustTCP(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []layers.TCPOption
	}{
		{name: "no options"},
		{name: "timestamps and sack", opts: []layers.TCPOption{nop, nop, timestamp, nop, nop, sackOpt(5, 6, 7, 8)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := seg{flags: 0x10, seq: 1, ack: 2, win: 3, opts: c.opts, payload: make([]byte, 1400)}.frame(b)
			p := mustParse(b, f)
			b.ReportAllocs()
			for b.Loop() {
				AdjustTCP(f, &p, 0x10000001, 0x7fff0003, 2)
			}
		})
	}
}
