package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/lvs"
)

func TestTOAOption(t *testing.T) {
	cases := []struct {
		addr string
		port uint16
		want []byte
	}{
		{"198.18.0.1", 40000, []byte{254, 8, 0x9c, 0x40, 198, 18, 0, 1}},
		{"198.19.255.254", 1, []byte{254, 8, 0x00, 0x01, 198, 19, 255, 254}},
		{"2001:db8::1", 0xfffe, []byte{254, 20, 0xff, 0xfe, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"2001:db8:ffff::abcd", 443, []byte{254, 20, 0x01, 0xbb, 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd}},
	}
	for _, c := range cases {
		buf := bytes.Repeat([]byte{0xa5}, TOALen6+4)
		n := TOAOption(buf[:TOALen6], addr(c.addr), c.port)
		if !bytes.Equal(buf[:n], c.want) {
			t.Errorf("%s:%d: %x, want %x", c.addr, c.port, buf[:n], c.want)
		}
		if !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, len(buf)-n)) {
			t.Errorf("%s:%d: wrote past the option", c.addr, c.port)
		}
	}
	if TOAKind != 254 || TOALen4 != 8 || TOALen6 != 20 {
		t.Error("constants")
	}
	// Too short: nothing.
	buf := bytes.Repeat([]byte{0xa5}, TOALen6-1)
	if n := TOAOption(buf, addr("2001:db8::1"), 1); n != 0 || !bytes.Equal(buf, bytes.Repeat([]byte{0xa5}, TOALen6-1)) {
		t.Errorf("short buffer: %d, %x", n, buf)
	}
	if n := TOAOption(buf[:TOALen4], addr("198.18.0.1"), 1); n != TOALen4 {
		t.Errorf("ipv4 into 8 bytes: %d", n)
	}
}

// toaOpt is opt as a gopacket option.
func toaOpt(opt []byte) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKind(opt[0]), OptionLength: opt[1], OptionData: bytes.Clone(opt[2:])}
}

// withOption is opts with opt appended the way InsertTCPOption appends it
// to the bytes gopacket writes: after the options gopacket pads with zeros
// to a multiple of 4, those zeros become NOPs.
func withOption(opts []layers.TCPOption, opt []byte) []layers.TCPOption {
	n := 0
	for _, o := range opts {
		if o.OptionType <= 1 {
			n++
		} else {
			n += 2 + len(o.OptionData)
		}
	}
	out := append([]layers.TCPOption(nil), opts...)
	for ; n%4 != 0; n++ {
		out = append(out, nop)
	}
	return append(out, toaOpt(opt))
}

var (
	mss1460 = layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}}
	wscale7 = layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{7}}
	sackOK  = layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
)

// TestInsertTCPOption: the result is byte for byte the frame gopacket
// builds with the option after the others, gopacket decodes it to the
// same fields, and its checksums verify.
func TestInsertTCPOption(t *testing.T) {
	ts := []layers.TCPOption{nop, nop, timestamp}
	cases := []struct {
		name string
		s    seg
	}{
		{"handshake ack", seg{flags: 0x10, seq: 1, ack: 2, win: 502}},
		{"timestamps", seg{flags: 0x10, seq: 1, ack: 2, win: 502, opts: ts}},
		{"timestamps and data", seg{flags: 0x18, seq: 1, ack: 2, win: 502, opts: ts, payload: []byte("GET / HTTP/1.1\r\n\r\n")}},
		{"odd data", seg{flags: 0x18, seq: 0xffffffff, ack: 0x80000000, win: 1, payload: ackData()}},
		{"sack", seg{flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, sackOpt(5, 6)}}},
		{"zero padding after wscale", seg{flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{wscale7}, payload: []byte("ab")}},
		{"zero padding after three nops", seg{flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, nop}}},
		{"syn options", seg{flags: 0x02, seq: 1, win: 3, opts: []layers.TCPOption{mss1460, sackOK, timestamp, nop, wscale7}}},
		{"padding on a short frame", seg{trailer: 6, flags: 0x10, seq: 1, ack: 2, win: 3}},
		{"vlans and padding", seg{vlans: 2, trailer: 30, flags: 0x18, seq: 1, ack: 2, win: 3, opts: ts, payload: []byte("x")}},
		{"ipv4 options", seg{ipOptions: true, flags: 0x18, seq: 1, ack: 2, win: 3, opts: ts, payload: []byte("xyz")}},
	}
	for _, c := range cases {
		inFamilies(t, c.name, c.s, func(t *testing.T, s seg) {
			in := s.frame(t)
			p := mustParse(t, in)
			var opt [TOALen6]byte
			n := TOAOption(opt[:], p.Src, p.SrcPort)
			ws := s
			ws.trailer, ws.opts = 0, withOption(s.opts, opt[:n])
			want := ipPacketOnly(t, ws.frame(t))
			buf := make([]byte, len(in)+64)
			copy(buf, in)
			before := p
			got, err := InsertTCPOption(buf, &p, opt[:n])
			if err != nil {
				t.Fatal(err)
			}
			if p != before {
				t.Errorf("Parsed changed")
			}
			if d := diff(buf[:got], want); d != "" {
				t.Errorf("InsertTCPOption: %s", d)
			}
			compareDecoded(t, buf[:got], want)
			if err := verifyChecksums(buf[:got]); err != nil {
				t.Error(err)
			}
			checkTOA(t, buf[:got], opt[:n])
		})
	}
}

// checkTOA decodes frame with gopacket and checks that its last TCP
// option is the TOA option opt.
func checkTOA(t *testing.T, frame, opt []byte) {
	t.Helper()
	tcp, ok := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok || len(tcp.Options) == 0 {
		t.Fatalf("no tcp options")
	}
	o := tcp.Options[len(tcp.Options)-1]
	if o.OptionType != TOAKind || int(o.OptionLength) != len(opt) || !bytes.Equal(o.OptionData, opt[2:]) {
		t.Errorf("last option %v, want %x", o, opt)
	}
}

// TestInsertTCPOptionExtHeaders: IPv6 extension headers stay in front of
// the segment and count in the payload length.
func TestInsertTCPOptionExtHeaders(t *testing.T) {
	for _, pay := range [][]byte{nil, []byte("odd")} {
		in := build(t, spec{src: "2001:db8::1", dst: "2001:db8::100", proto: lvs.ProtoTCP, sport: 40000, dport: 80,
			tcpFlags: 0x18, hopByHop: true, dstOpts: true, payload: pay})
		p := mustParse(t, in)
		var opt [TOALen6]byte
		n := TOAOption(opt[:], p.Src, p.SrcPort)
		buf := make([]byte, len(in)+64)
		copy(buf, in)
		got, err := InsertTCPOption(buf, &p, opt[:n])
		if err != nil {
			t.Fatal(err)
		}
		if got != p.L3Off+p.L3Len+n {
			t.Errorf("length %d", got)
		}
		if err := verifyChecksums(buf[:got]); err != nil {
			t.Error(err)
		}
		checkTOA(t, buf[:got], opt[:n])
		pk := gopacket.NewPacket(buf[:got], layers.LayerTypeEthernet, gopacket.Default)
		ip6 := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if int(ip6.Length) != p.L3Len-IPv6HeaderLen+n || pk.Layer(layers.LayerTypeIPv6Destination) == nil {
			t.Errorf("ipv6 payload length %d, layers %v", ip6.Length, pk.Layers())
		}
		if tcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); !bytes.Equal(tcp.Payload, pay) {
			t.Errorf("payload %q", tcp.Payload)
		}
	}
}

// TestInsertTCPOptionKeepsBadChecksum: a wrong checksum stays wrong by
// the same amount.
func TestInsertTCPOptionKeepsBadChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s := seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}, payload: []byte("data")}
		in := s.frame(t)
		p := mustParse(t, in)
		in[p.L4Off+17] ^= 0x40
		if !v6 {
			in[p.L3Off+11] ^= 0x02
		}
		var opt [TOALen6]byte
		n := TOAOption(opt[:], p.Src, p.SrcPort)
		buf := make([]byte, 256)
		copy(buf, in)
		got, err := InsertTCPOption(buf, &p, opt[:n])
		if err != nil {
			t.Fatal(err)
		}
		s.opts = withOption(s.opts, opt[:n])
		want := ipPacketOnly(t, s.frame(t))
		want[p.L4Off+17] ^= 0x40
		if !v6 {
			want[p.L3Off+11] ^= 0x02
		}
		if d := diff(buf[:got], want); d != "" {
			t.Errorf("v6 %v: %s", v6, d)
		}
	}
}

// TestInsertTCPOptionEOL: an end-of-option-list and what follows it turn
// into NOPs, so that the new option is not hidden behind it; options that
// cannot be walked are kept as they are.
func TestInsertTCPOptionEOL(t *testing.T) {
	opt := []byte{0xfd, 4, 0xab, 0xcd}
	cases := []struct {
		name       string
		opts, want []byte // the options area before and after
	}{
		{"eol after mss", []byte{2, 4, 5, 0xb4, 0, 0, 0, 0}, []byte{2, 4, 5, 0xb4, 1, 1, 1, 1, 0xfd, 4, 0xab, 0xcd}},
		{"eol first", []byte{0, 9, 9, 9}, []byte{1, 1, 1, 1, 0xfd, 4, 0xab, 0xcd}},
		{"eol at the end", []byte{3, 3, 7, 0}, []byte{3, 3, 7, 1, 0xfd, 4, 0xab, 0xcd}},
		{"impossible length before eol", []byte{8, 1, 0, 0}, []byte{8, 1, 0, 0, 0xfd, 4, 0xab, 0xcd}},
		{"option past the end", []byte{1, 8, 9, 0}, []byte{1, 8, 9, 0, 0xfd, 4, 0xab, 0xcd}},
	}
	for _, c := range cases {
		for _, v6 := range []bool{false, true} {
			in := seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, nop, nop}, payload: []byte("p")}.frame(t)
			p := mustParse(t, in)
			// Swap the options area for c.opts.
			in = bytes.Join([][]byte{in[:p.L4Off+20], c.opts, in[p.L4Off+24 : p.L3Off+p.L3Len]}, nil)
			in[p.L4Off+12] = byte(20+len(c.opts)) / 4 << 4
			if p.Family == 4 {
				binary.BigEndian.PutUint16(in[p.L3Off+2:], uint16(len(in)-p.L3Off))
			} else {
				binary.BigEndian.PutUint16(in[p.L3Off+4:], uint16(len(in)-p.L3Off-40))
			}
			p = mustParse(t, in)
			refFixChecksums(in, &p)
			buf := make([]byte, len(in)+16)
			copy(buf, in)
			n, err := InsertTCPOption(buf, &p, opt)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := buf[p.L4Off+20 : p.L4Off+20+len(c.want)]; !bytes.Equal(got, c.want) {
				t.Errorf("%s v6 %v: options %x, want %x", c.name, v6, got, c.want)
			}
			if buf[n-1] != 'p' || int(buf[p.L4Off+12]>>4)*4 != 20+len(c.want) {
				t.Errorf("%s v6 %v: header length or payload wrong", c.name, v6)
			}
			q := mustParse(t, buf[:n])
			if !refTCPChecksumOK(buf[:n], &q) {
				t.Errorf("%s v6 %v: checksum", c.name, v6)
			}
		}
	}
}

// TestInsertTCPOptionErrors: what InsertTCPOption refuses, and that it
// leaves the buffer alone then.
func TestInsertTCPOptionErrors(t *testing.T) {
	tcp4 := seg{flags: 0x10, seq: 1, ack: 2, win: 3, payload: make([]byte, 20)}.frame(t)
	first := bytes.Clone(tcp4)
	setIPv4Frag(first, 14, 0x2000)
	later := bytes.Clone(tcp4)
	setIPv4Frag(later, 14, 0x0004)
	udp := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: []byte("x")})
	// 12 + 20 = 32 bytes of options: 8 more fit, 20 do not.
	full := seg{flags: 0x10, opts: []layers.TCPOption{nop, nop, timestamp, nop, nop, sackOpt(1, 2, 3, 4)}}.frame(t)
	full6 := seg{v6: true, flags: 0x10, opts: []layers.TCPOption{nop, nop, timestamp, nop, nop, sackOpt(1, 2, 3, 4)}}.frame(t)
	big4 := seg{flags: 0x10, payload: make([]byte, 65535-40)}.frame(t)
	big6 := seg{v6: true, flags: 0x10, payload: make([]byte, 65535-20)}.frame(t)
	long := seg{flags: 0x10, opts: []layers.TCPOption{nop, nop, timestamp}}.frame(t)
	lp := mustParse(t, long)
	long[lp.L4Off+12] = 15 << 4
	opt4 := []byte{254, 8, 1, 2, 198, 18, 0, 1}
	opt6 := append([]byte{254, 20, 1, 2}, make([]byte, 16)...)
	cases := []struct {
		name  string
		frame []byte
		room  int
		opt   []byte
		want  error
	}{
		{"udp", udp, 64, opt4, ErrBadArgument},
		{"first fragment", first, 64, opt4, ErrBadArgument},
		{"later fragment", later, 64, opt4, ErrBadArgument},
		{"header past the segment", long, 64, opt4, ErrBadArgument},
		{"option length 6", tcp4, 64, opt4[:6], ErrBadArgument},
		{"option length 44", tcp4, 64, make([]byte, 44), ErrBadArgument},
		{"options full", full6, 64, opt6, ErrNoOptionSpace},
		{"buffer too short", tcp4, 7, opt4, ErrShortBuffer},
		{"ipv4 over 65535", big4, 64, opt4, ErrTooLong},
		{"ipv6 over 65535", big6, 64, opt6, ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.frame)
			buf := append(bytes.Clone(c.frame), make([]byte, c.room)...)
			orig := bytes.Clone(buf)
			if _, err := InsertTCPOption(buf, &p, c.opt); !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(buf, orig) {
				t.Error("buffer changed")
			}
		})
	}
	t.Run("fills the options to 40 bytes", func(t *testing.T) {
		p := mustParse(t, full)
		buf := make([]byte, len(full)+8)
		copy(buf, full)
		n, err := InsertTCPOption(buf, &p, opt4)
		if err != nil {
			t.Fatal(err)
		}
		if buf[p.L4Off+12]>>4 != 15 {
			t.Errorf("data offset %d", buf[p.L4Off+12]>>4)
		}
		if err := verifyChecksums(buf[:n]); err != nil {
			t.Error(err)
		}
	})
	t.Run("empty option", func(t *testing.T) {
		f := seg{trailer: 9, flags: 0x10, seq: 1}.frame(t)
		p := mustParse(t, f)
		buf := bytes.Clone(f)
		n, err := InsertTCPOption(buf, &p, nil)
		if err != nil || n != p.L3Off+p.L3Len || !bytes.Equal(buf, f) {
			t.Errorf("%d %v", n, err)
		}
	})
}

// synWith is a SYN-ACK with the given options.
func synWith(v6 bool, opts ...layers.TCPOption) seg {
	return seg{v6: v6, flags: 0x12, seq: 0x11223344, ack: 0x55667788, win: 65535, opts: opts}
}

func mssOpt(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

// TestLowerMSS: the result is byte for byte the frame gopacket builds
// with the lowered MSS.
func TestLowerMSS(t *testing.T) {
	ts := []layers.TCPOption{nop, nop, timestamp}
	cases := []struct {
		name     string
		v6       bool
		opts     func(mss uint16) []layers.TCPOption
		mss, by  uint16
		want     uint16
		trailer  int
		hasOpt   bool
		noChange bool
	}{
		{name: "linux syn-ack v4", opts: func(m uint16) []layers.TCPOption {
			return []layers.TCPOption{mssOpt(m), sackOK, timestamp, nop, wscale7}
		}, mss: 1460, by: TOALen4, want: 1452, hasOpt: true},
		{name: "linux syn-ack v6", v6: true, opts: func(m uint16) []layers.TCPOption {
			return []layers.TCPOption{mssOpt(m), sackOK, timestamp, nop, wscale7}
		}, mss: 1440, by: TOALen6, want: 1420, hasOpt: true},
		{name: "mss at an odd offset", opts: func(m uint16) []layers.TCPOption {
			return []layers.TCPOption{nop, mssOpt(m), nop, nop, nop}
		}, mss: 0x1234, by: 0x0135, want: 0x10ff, hasOpt: true},
		{name: "mss at an odd offset, last before padding", v6: true, opts: func(m uint16) []layers.TCPOption {
			return []layers.TCPOption{nop, nop, nop, mssOpt(m)}
		}, mss: 9000, by: 20, want: 8980, hasOpt: true, trailer: 4},
		{name: "mss last, no payload", opts: func(m uint16) []layers.TCPOption {
			return append(append([]layers.TCPOption(nil), ts...), mssOpt(m))
		}, mss: 1460, by: 8, want: 1452, hasOpt: true},
		{name: "stops at the ipv4 floor", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 540, by: 8, want: 536, hasOpt: true},
		{name: "reaches the ipv4 floor", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 544, by: 8, want: 536, hasOpt: true},
		{name: "below the ipv4 floor", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 500, by: 8, want: 500, hasOpt: true, noChange: true},
		{name: "stops at the ipv6 floor", v6: true, opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 1230, by: 20, want: 1220, hasOpt: true},
		{name: "ipv4 floor is not the ipv6 floor", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 1230, by: 20, want: 1210, hasOpt: true},
		{name: "huge by", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 65535, by: 65535, want: 536, hasOpt: true},
		{name: "by zero", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m)} },
			mss: 1460, by: 0, want: 1460, hasOpt: true, noChange: true},
		{name: "no mss", opts: func(uint16) []layers.TCPOption { return ts }, by: 8, noChange: true},
		{name: "no options", opts: func(uint16) []layers.TCPOption { return nil }, by: 8, noChange: true},
		{name: "first mss only", opts: func(m uint16) []layers.TCPOption { return []layers.TCPOption{mssOpt(m), mssOpt(1000)} },
			mss: 1460, by: 8, want: 1452, hasOpt: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := synWith(c.v6, c.opts(c.mss)...)
			s.trailer = c.trailer
			in := s.frame(t)
			ws := s
			ws.opts = c.opts(c.want)
			want := ws.frame(t)
			got := bytes.Clone(in)
			p := mustParse(t, got)
			before := p
			if has := LowerMSS(got, &p, c.by); has != c.hasOpt {
				t.Errorf("LowerMSS = %v, want %v", has, c.hasOpt)
			}
			if p != before {
				t.Errorf("Parsed changed")
			}
			if d := diff(got, want); d != "" {
				t.Errorf("LowerMSS: %s", d)
			}
			if c.noChange && !bytes.Equal(got, in) {
				t.Errorf("changed")
			}
			compareDecoded(t, got, want)
			if err := verifyChecksums(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLowerMSSWalk: options that cannot be walked hide an MSS behind
// them, as they hide SACK blocks from AdjustTCP.
func TestLowerMSSWalk(t *testing.T) {
	cases := []struct {
		name string
		opts []byte // 8 bytes
		has  bool
	}{
		{"eol before mss", []byte{1, 0, 2, 4, 5, 0xb4, 0, 0}, false},
		{"length 0 before mss", []byte{8, 0, 2, 4, 5, 0xb4, 0, 0}, false},
		{"length 1 before mss", []byte{8, 1, 2, 4, 5, 0xb4, 0, 0}, false},
		{"mss of length 5", []byte{2, 5, 5, 0xb4, 0, 1, 1, 1}, false},
		{"mss past the options", []byte{1, 1, 1, 1, 1, 1, 2, 4}, false},
		{"kind as the last byte", []byte{1, 1, 1, 1, 1, 1, 1, 2}, false},
		{"unknown option skipped", []byte{0xfd, 2, 2, 4, 5, 0xb4, 1, 1}, true},
		{"mss of length 3 then mss", []byte{2, 3, 9, 2, 4, 5, 0xb4, 0}, true},
	}
	for _, c := range cases {
		for _, v6 := range []bool{false, true} {
			s := synWith(v6, nop, nop, nop, nop, nop, nop, nop, nop)
			in := s.frame(t)
			p := mustParse(t, in)
			copy(in[p.L4Off+20:], c.opts)
			refFixChecksums(in, &p)
			got := bytes.Clone(in)
			if has := LowerMSS(got, &p, 8); has != c.has {
				t.Errorf("%s v6 %v: %v, want %v", c.name, v6, has, c.has)
			}
			if !c.has && !bytes.Equal(got, in) {
				t.Errorf("%s v6 %v: changed", c.name, v6)
			}
			if c.has && bytes.Equal(got, in) {
				t.Errorf("%s v6 %v: not changed", c.name, v6)
			}
			if !refTCPChecksumOK(got, &p) {
				t.Errorf("%s v6 %v: checksum", c.name, v6)
			}
		}
	}
	t.Run("others left alone", func(t *testing.T) {
		udp := build(t, spec{src: "198.18.0.1", dst: "198.18.0.2", proto: lvs.ProtoUDP, sport: 1, dport: 2, payload: []byte{2, 4, 5, 0xb4}})
		long := synWith(false, mssOpt(1460)).frame(t)
		lp := mustParse(t, long)
		long[lp.L4Off+12] = 15 << 4
		later := synWith(false, mssOpt(1460)).frame(t)
		setIPv4Frag(later, 14, 0x0004)
		for name, f := range map[string][]byte{"udp": udp, "header past the segment": long, "later fragment": later} {
			p := mustParse(t, f)
			got := bytes.Clone(f)
			if LowerMSS(got, &p, 8) || !bytes.Equal(got, f) {
				t.Errorf("%s: changed", name)
			}
		}
		f := synWith(false, mssOpt(1460)).frame(t)
		p := mustParse(t, f)
		short := bytes.Clone(f[:p.L4Off+10])
		if LowerMSS(short, &p, 8) {
			t.Error("a frame its Parsed does not fit")
		}
	})
}

func TestTOAAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		in := seg{v6: v6, flags: 0x18, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}, payload: make([]byte, 1000)}.frame(t)
		p := mustParse(t, in)
		var opt [TOALen6]byte
		frame := make([]byte, 2048)
		if n := testing.AllocsPerRun(1000, func() { TOAOption(opt[:], p.Src, p.SrcPort) }); n != 0 {
			t.Errorf("TOAOption v6 %v: %v allocations", v6, n)
		}
		n := TOAOption(opt[:], p.Src, p.SrcPort)
		if a := testing.AllocsPerRun(1000, func() {
			copy(frame, in)
			_, _ = InsertTCPOption(frame, &p, opt[:n])
		}); a != 0 {
			t.Errorf("InsertTCPOption v6 %v: %v allocations", v6, a)
		}
		syn := synWith(v6, mssOpt(1460), sackOK, timestamp, nop, wscale7).frame(t)
		sp := mustParse(t, syn)
		if a := testing.AllocsPerRun(1000, func() { LowerMSS(syn, &sp, 1) }); a != 0 {
			t.Errorf("LowerMSS v6 %v: %v allocations", v6, a)
		}
	}
}

func BenchmarkInsertTCPOption(b *testing.B) {
	in := seg{flags: 0x18, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}, payload: make([]byte, 1400)}.frame(b)
	p := mustParse(b, in)
	var opt [TOALen6]byte
	n := TOAOption(opt[:], p.Src, p.SrcPort)
	frame := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, in)
		_, _ = InsertTCPOption(frame, &p, opt[:n])
	}
}

// toaSeeds are SYNs, SYN-ACKs and ACKs with the options a TOA service
// sees.
func toaSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, v6 := range []bool{false, true} {
		out = append(out,
			synWith(v6, mssOpt(1460), sackOK, timestamp, nop, wscale7).frame(tb),
			synWith(v6, nop, mssOpt(1460), nop, nop, nop).frame(tb),
			synWith(v6, wscale7).frame(tb),
			seg{v6: v6, flags: 0x10, seq: 1, ack: 2, win: 3, opts: []layers.TCPOption{nop, nop, timestamp}}.frame(tb),
		)
	}
	return append(out, proxyPayloadSeeds(tb)...)
}

func FuzzInsertTCPOption(f *testing.F) {
	for i, s := range append(seedFrames(f), toaSeeds(f)...) {
		f.Add(s, uint8(i*7), []byte{254, 8, 0x9c, 0x40, 198, 18, 0, byte(i)}, i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, room uint8, optData []byte, v6 bool) {
		// A TOA option of the fuzzed bytes, or the fuzzed bytes as they
		// are (any length: most are refused).
		opt := optData
		if v6 || len(opt) == 0 {
			var a [TOALen6]byte
			copy(a[:], optData)
			opt = a[:TOAOption(a[:], fuzzAddr(6, optData), uint16(len(optData)))]
		}
		growFuzz(t, data, int(room), func(buf []byte, p *Parsed) (int, error) {
			return InsertTCPOption(buf, p, opt)
		}, func(t *testing.T, in []byte, p *Parsed, out []byte) {
			hl := int(in[p.L4Off+12]>>4) * 4
			end := p.L3Off + p.L3Len
			if len(out) != end+len(opt) {
				t.Fatalf("length %d, want %d", len(out), end+len(opt))
			}
			if int(out[p.L4Off+12]>>4)*4 != hl+len(opt) || out[p.L4Off+12]&0x0f != in[p.L4Off+12]&0x0f {
				t.Fatalf("data offset byte %#x, was %#x", out[p.L4Off+12], in[p.L4Off+12])
			}
			if !bytes.Equal(out[p.L4Off+hl:p.L4Off+hl+len(opt)], opt) {
				t.Fatalf("option not in place")
			}
			if !bytes.Equal(out[p.L4Off+hl+len(opt):], in[p.L4Off+hl:end]) {
				t.Fatalf("payload changed")
			}
			if e := eolAt(out[p.L4Off+TCPHeaderLen : p.L4Off+hl]); e >= 0 {
				t.Fatalf("an eol at %d hides the option", e)
			}
		})
	})
}

// refMSSAt returns the frame offset of the value of the first MSS option
// of the TCP segment p describes, or -1; the walk written out plainly.
func refMSSAt(frame []byte, p *Parsed) int {
	end := p.L3Off + p.L3Len
	if p.Proto != lvs.ProtoTCP || p.Frag == FragLater || p.L4Off+20 > end {
		return -1
	}
	hl := int(frame[p.L4Off+12]>>4) * 4
	if p.L4Off+hl > end {
		return -1
	}
	i := p.L4Off + 20
	for i < p.L4Off+hl {
		kind := frame[i]
		if kind == 0 {
			return -1
		}
		if kind == 1 {
			i++
			continue
		}
		if i+2 > p.L4Off+hl {
			return -1
		}
		l := int(frame[i+1])
		if l < 2 || i+l > p.L4Off+hl {
			return -1
		}
		if kind == 2 && l == 4 {
			return i + 2
		}
		i += l
	}
	return -1
}

func FuzzLowerMSS(f *testing.F) {
	for i, s := range append(seedFrames(f), toaSeeds(f)...) {
		f.Add(s, uint16(i*8))
	}
	f.Fuzz(func(t *testing.T, data []byte, by uint16) {
		var p Parsed
		if Parse(data, &p) != nil {
			return
		}
		data = bytes.Clone(data)
		fixed := refFixChecksums(data, &p)
		buf, frame := guarded(data)
		q := p
		has := LowerMSS(frame, &q, by)
		checkGuards(t, buf, len(data))
		if q != p {
			t.Fatalf("Parsed changed")
		}
		if !has {
			if refMSSAt(data, &p) >= 0 && fits(&p, len(data)) {
				t.Fatalf("an mss LowerMSS did not find")
			}
			if !bytes.Equal(frame, data) {
				t.Fatalf("no mss, but changed: %s", diff(frame, data))
			}
			return
		}
		if !fixed && p.Frag != FragFirst {
			t.Fatalf("an mss in a frame that is no tcp segment")
		}
		// The MSS value and the checksum change, nothing else; the value
		// is lowered by by, not below the floor, or kept.
		at := refMSSAt(data, &p)
		if at < 0 {
			t.Fatalf("LowerMSS found an mss the reference walk does not")
		}
		for i := range data {
			if frame[i] != data[i] && i != p.L4Off+16 && i != p.L4Off+17 && i != at && i != at+1 {
				t.Fatalf("byte %d changed", i)
			}
		}
		floor := uint16(536)
		if p.Family == 6 {
			floor = 1220
		}
		oldV, newV := binary.BigEndian.Uint16(data[at:]), binary.BigEndian.Uint16(frame[at:])
		want := oldV
		if oldV > floor {
			want = max(floor, oldV-min(oldV, by))
		}
		if newV != want {
			t.Fatalf("mss %d lowered by %d to %d, want %d", oldV, by, newV, want)
		}
		if p.Frag == FragNone && !refTCPChecksumOK(frame, &p) {
			t.Fatalf("checksum wrong")
		}
	})
}
