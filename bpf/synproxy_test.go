package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
)

// The SYN defence tests. The SYN-ACKs the program builds are compared byte
// for byte with frames the tests build by hand (checksums from the test's
// own sum); gopacket then recomputes every checksum as an oracle. Cookies
// are compared with package packet's, which the workers check.

// XDP actions.
const (
	actDrop     = 1
	actPass     = 2
	actRedirect = 4
)

var testSynKey = packet.SynCookieKey{0x67, 0x6f, 0x76, 0x73, 0x20, 0x73, 0x79, 0x6e, 0x20, 0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x21}

// Raw TCP options of test SYNs.
var (
	optNOP      = []byte{1}
	optEOL      = []byte{0}
	optSACKPerm = []byte{4, 2}
	optTS       = []byte{8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0}
)

func optMSS(v uint16) []byte   { return []byte{2, 4, byte(v >> 8), byte(v)} }
func optWS(shift uint8) []byte { return []byte{3, 3, shift} }

// syn describes a client's SYN. Unlike pkt, it sets the sequence number and
// raw TCP options (padded with EOL to a multiple of four), and optionally
// other flags.
type syn struct {
	src, dst     string
	sport, dport uint16
	isn          uint32
	opts         [][]byte
	payload      []byte
	flags        uint8 // 0: SYN
	noPad        bool  // no Ethernet padding (a frame from a veth, not a NIC)
	srcMAC       [6]byte
	dstMAC       [6]byte
}

func (s syn) family() (src, dst netip.Addr, v6 bool) {
	src, _ = netip.ParseAddr(s.src)
	dst, _ = netip.ParseAddr(s.dst)
	return src, dst, !src.Is4()
}

// tcpOptions joins the options and pads them with EOL.
func (s syn) tcpOptions() []byte {
	var o []byte
	for _, b := range s.opts {
		o = append(o, b...)
	}
	for len(o)%4 != 0 {
		o = append(o, 0)
	}
	return o
}

// inetSum is the test's own one's-complement sum of b (big-endian words).
func inetSum(s uint32, b []byte) uint32 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func inetChecksum(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ipTCPFrame builds Ethernet + IP + TCP by hand: IPv4 without options or
// IPv6 without extension headers, every checksum set.
func ipTCPFrame(dstMAC, srcMAC [6]byte, src, dst netip.Addr, ttl uint8, ipv4Flags uint16, tcp []byte) []byte {
	var f []byte
	f = append(f, dstMAC[:]...)
	f = append(f, srcMAC[:]...)
	var pseudo uint32
	if src.Is4() {
		f = append(f, 0x08, 0x00)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[6:], ipv4Flags)
		ip[8], ip[9] = ttl, 6
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], inetChecksum(inetSum(0, ip)))
		f = append(f, ip...)
		pseudo = inetSum(inetSum(6+uint32(len(tcp)), s4[:]), d4[:])
	} else {
		f = append(f, 0x86, 0xdd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6], ip[7] = 6, ttl
		s16, d16 := src.As16(), dst.As16()
		copy(ip[8:], s16[:])
		copy(ip[24:], d16[:])
		f = append(f, ip...)
		pseudo = inetSum(inetSum(6+uint32(len(tcp)), s16[:]), d16[:])
	}
	tcp = bytes.Clone(tcp)
	binary.BigEndian.PutUint16(tcp[16:], 0)
	binary.BigEndian.PutUint16(tcp[16:], inetChecksum(inetSum(pseudo, tcp)))
	return append(f, tcp...)
}

// frame builds the SYN, padded to the 60-byte Ethernet minimum as a NIC
// delivers it.
func (s syn) frame() []byte {
	src, dst, _ := s.family()
	opts := s.tcpOptions()
	tcp := make([]byte, 20, 20+len(opts)+len(s.payload))
	binary.BigEndian.PutUint16(tcp[0:], s.sport)
	binary.BigEndian.PutUint16(tcp[2:], s.dport)
	binary.BigEndian.PutUint32(tcp[4:], s.isn)
	tcp[12] = uint8((20+len(opts))/4) << 4
	tcp[13] = s.flags
	if s.flags == 0 {
		tcp[13] = 0x02
	}
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	tcp = append(append(tcp, opts...), s.payload...)
	f := ipTCPFrame(s.toMAC(), s.srcMAC, src, dst, 57, 0x4000, tcp)
	for len(f) < 60 && !s.noPad {
		f = append(f, 0)
	}
	return f
}

// cookieOptions is what the cookie of s must carry: the options the client
// sent, the MSS rounded down to a SynCookieMSS value (536 or 1220 when the
// client sent none), a window scale above 14 taken as 14. It walks the
// options as RFC 9293 says, independently of the program.
func (s syn) cookieOptions() packet.SynOptions {
	_, _, v6 := s.family()
	var o packet.SynOptions
	opts := s.tcpOptions()
	mss := uint16(0)
	for i := 0; i < len(opts); {
		kind := opts[i]
		if kind == 0 {
			break
		}
		if kind == 1 {
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			break
		}
		l := int(opts[i+1])
		switch {
		case kind == 2 && l == 4:
			mss = binary.BigEndian.Uint16(opts[i+2:])
		case kind == 3 && l == 3:
			o.HasWScale, o.WScale = true, min(opts[i+2], 14)
		case kind == 4 && l == 2:
			o.SACK = true
		}
		i += l
	}
	if mss == 0 {
		mss = 536
		if v6 {
			mss = 1220
		}
	}
	o.MSS = packet.SynCookieMSS[0]
	for _, m := range packet.SynCookieMSS {
		if m <= mss {
			o.MSS = m
		}
	}
	return o
}

// synAck is the SYN-ACK the contract specifies for s, with sequence number
// cookie and MSS mss, built by hand.
func (s syn) synAck(cookie uint32, mss uint16) []byte {
	src, dst, _ := s.family()
	o := s.cookieOptions()
	opts := []byte{2, 4, byte(mss >> 8), byte(mss)}
	if o.HasWScale {
		opts = append(opts, 1, 3, 3, 7)
	}
	if o.SACK {
		opts = append(opts, 1, 1, 4, 2)
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], s.dport)
	binary.BigEndian.PutUint16(tcp[2:], s.sport)
	binary.BigEndian.PutUint32(tcp[4:], cookie)
	binary.BigEndian.PutUint32(tcp[8:], s.isn+1)
	tcp[12] = uint8((20+len(opts))/4) << 4
	tcp[13] = 0x12
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	tcp = append(tcp, opts...)
	return ipTCPFrame(s.srcMAC, s.toMAC(), dst, src, 64, 0x4000, tcp)
}

// toMAC is the SYN's destination MAC: dstMAC, by default the served
// interface's (testDstMAC), since the program passes frames to other MACs.
func (s syn) toMAC() [6]byte {
	if s.dstMAC == ([6]byte{}) {
		return [6]byte(testDstMAC)
	}
	return s.dstMAC
}

// tuple returns the SYN's addresses as the cookie functions take them.
func (s syn) tuple() (src, dst inet.Addr) {
	a, b, _ := s.family()
	return inet.AddrFromNetip(a), inet.AddrFromNetip(b)
}

// coarsePeriod is the cookie period of CLOCK_MONOTONIC_COARSE, the clock
// the program reads.
func coarsePeriod(t testing.TB) uint32 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		t.Fatal(err)
	}
	return packet.SynCookiePeriod(uint64(ts.Nano()))
}

// runSyn runs the program once on frame and returns its action, the frame
// it left, the counter delta and the cookie period around the run (the run
// is repeated if a period boundary fell into it, which happens once in 69 s).
func runSyn(t *testing.T, s *Steering, frame []byte) (uint32, []byte, Counters, uint32) {
	t.Helper()
	for try := 0; ; try++ {
		before, err := s.Counters()
		if err != nil {
			t.Fatal(err)
		}
		p0 := coarsePeriod(t)
		opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
		action, err := s.Program().Run(&opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		p1 := coarsePeriod(t)
		after, err := s.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if p0 == p1 || try == 2 {
			return action, opts.DataOut, subCounters(after, before), p0
		}
	}
}

// newSynSteering is newTestSteering with the cookie key set and the
// defence on for vip4:80 and vip6:443.
func newSynSteering(t *testing.T) *Steering {
	t.Helper()
	s := newTestSteering(t)
	if err := s.SetSynCookieKey(testSynKey); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Endpoint{endpoint(t, vip4, 80, tcp), endpoint(t, vip6, 443, tcp)} {
		if err := s.SetVIPFlags(e, VIPSynProxyCapable|VIPSynProxyOn); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// oracleChecksums decodes frame with gopacket and serializes its IP and TCP
// layers again with computed checksums and lengths: the result must be the
// frame's own bytes.
func oracleChecksums(t *testing.T, frame []byte) {
	t.Helper()
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	tcpL, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcpL == nil {
		t.Fatalf("gopacket finds no TCP layer in %x: %v", frame, pk)
	}
	var ip gopacket.SerializableLayer
	if v4, ok := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		_ = tcpL.SetNetworkLayerForChecksum(v4)
		ip = v4
	} else if v6, ok := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		_ = tcpL.SetNetworkLayerForChecksum(v6)
		ip = v6
	} else {
		t.Fatalf("gopacket finds no IP layer in %x", frame)
	}
	want := serialize(t, ip, tcpL, gopacket.Payload(tcpL.Payload))
	if !bytes.Equal(frame[packet.EthHeaderLen:], want) {
		t.Errorf("gopacket recomputes the IP and TCP headers differently: %s", diffBytes(frame[packet.EthHeaderLen:], want))
	}
}

// synCases are SYNs with every combination of the options a cookie
// carries, and the others around them, for one address family.
func synCases(client, vip string, vport uint16) []struct {
	name string
	syn  syn
} {
	base := syn{src: client, dst: vip, sport: 40001, dport: vport, isn: 0x01020304,
		srcMAC: [6]byte{2, 0, 0, 0, 0, 0xc1}, dstMAC: [6]byte(testDstMAC)}
	with := func(opts ...[]byte) syn {
		s := base
		s.opts = opts
		return s
	}
	linux := with(optMSS(1460), optSACKPerm, optTS, optNOP, optWS(7))
	payload := with(optMSS(1400), optNOP, optWS(2), optNOP, optNOP, optSACKPerm)
	payload.payload = payloadOf(100)
	wrap := with(optMSS(9000), optNOP, optWS(30))
	wrap.isn = 0xffffffff // ack wraps to 0
	return []struct {
		name string
		syn  syn
	}{
		{"no options", with()},
		{"mss", with(optMSS(1460))},
		{"ws", with(optNOP, optWS(0))},
		{"sack", with(optSACKPerm)},
		{"mss ws", with(optMSS(1440), optNOP, optWS(14))},
		{"mss sack", with(optMSS(1220), optNOP, optNOP, optSACKPerm)},
		{"ws sack", with(optSACKPerm, optNOP, optWS(9))},
		{"mss ws sack timestamps (linux)", linux},
		{"all with payload", payload},
		{"large mss, ws 30, isn wraps", wrap},
		{"small mss", with(optMSS(500))},
		{"unknown options", with([]byte{30, 6, 1, 2, 3, 4}, optMSS(1300), []byte{253, 2})},
		{"eol ends the options", with(optSACKPerm, optEOL, optMSS(1460), optWS(3))},
		{"bad length ends the walk", with(optNOP, optWS(5), []byte{2, 9, 5, 180})},
		{"zero length ends the walk", with(optSACKPerm, []byte{2, 0, 5, 180})},
		{"40 bytes of options", with(optMSS(1460), optTS, optTS, optNOP, optNOP, optNOP, optNOP, optNOP,
			optNOP, optSACKPerm, optNOP, optWS(4))},
	}
}

// TestSynProxyAnswer checks the SYN-ACK of every option combination, IPv4
// and IPv6, byte for byte.
func TestSynProxyAnswer(t *testing.T) {
	s := newSynSteering(t)
	for _, fam := range []struct {
		name, client, vip string
		vport             uint16
		mss               uint16
	}{
		{"ipv4", client4, vip4, 80, 1460},
		{"ipv6", client6, vip6, 443, 1440},
	} {
		for _, tc := range synCases(fam.client, fam.vip, fam.vport) {
			t.Run(fam.name+"/"+tc.name, func(t *testing.T) {
				in := tc.syn.frame()
				action, out, delta, period := runSyn(t, s, in)
				if action != actRedirect || delta != (Counters{SynCookiesSent: 1}) {
					t.Fatalf("action %d, counters moved by %+v; want XDP_REDIRECT, one cookie sent", action, delta)
				}
				src, dst := tc.syn.tuple()
				o := tc.syn.cookieOptions()
				cookie := packet.SynCookie(&testSynKey, src, dst, tc.syn.sport, tc.syn.dport, tc.syn.isn, period, o)
				want := tc.syn.synAck(cookie, fam.mss)
				if !bytes.Equal(out, want) {
					t.Errorf("SYN-ACK differs: %s", diffBytes(out, want))
				}
				oracleChecksums(t, out)
				// What a worker does with the handshake ACK.
				got, ok := packet.CheckSynCookie(&testSynKey, src, dst, tc.syn.sport, tc.syn.dport, tc.syn.isn, cookie, period+1)
				if !ok || got != o {
					t.Errorf("cookie checks as %+v, %v; want %+v", got, ok, o)
				}
			})
		}
	}
}

// TestSynProxyMSS checks the MSS setting: configured, then back to the
// defaults.
func TestSynProxyMSS(t *testing.T) {
	s := newSynSteering(t)
	check := func(step string, sy syn, mss uint16) {
		t.Helper()
		action, out, _, period := runSyn(t, s, sy.frame())
		src, dst := sy.tuple()
		cookie := packet.SynCookie(&testSynKey, src, dst, sy.sport, sy.dport, sy.isn, period, sy.cookieOptions())
		if want := sy.synAck(cookie, mss); action != actRedirect || !bytes.Equal(out, want) {
			t.Errorf("%s: action %d, SYN-ACK differs: %s", step, action, diffBytes(out, want))
		}
	}
	sy4 := syn{src: client4, dst: vip4, sport: 1234, dport: 80, isn: 77, opts: [][]byte{optMSS(1460)}}
	sy6 := syn{src: client6, dst: vip6, sport: 1234, dport: 443, isn: 77, opts: [][]byte{optMSS(1460)}}
	if err := s.SetSynProxyMSS(1400, 1380); err != nil {
		t.Fatal(err)
	}
	check("mss 1400", sy4, 1400)
	check("mss 1380", sy6, 1380)
	if err := s.SetSynProxyMSS(0, 0); err != nil {
		t.Fatal(err)
	}
	check("default v4", sy4, 1460)
	check("default v6", sy6, 1440)
	if err := s.SetSynProxyMSS(535, 0); err == nil {
		t.Error("SetSynProxyMSS(535) succeeded")
	}
}

// TestSynCookieMatchesGo compares the program's cookies with package
// packet's on random SYNs, and checks that a worker accepts them only with
// the right key, tuple, ISN and period.
func TestSynCookieMatchesGo(t *testing.T) {
	s := newTestSteering(t)
	r := rand.New(rand.NewPCG(13, 17))
	var key packet.SynCookieKey
	for i := range key {
		key[i] = byte(r.Uint32())
	}
	if err := s.SetSynCookieKey(key); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		v6 := i%2 == 1
		var sy syn
		var vip Endpoint
		if v6 {
			sy.src = fmt.Sprintf("2001:db8:%x::%x:%x", r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16))
			sy.dst = fmt.Sprintf("2001:db8:ffff::%x", r.IntN(1<<16))
		} else {
			sy.src = fmt.Sprintf("198.18.%d.%d", r.IntN(256), r.IntN(256))
			sy.dst = fmt.Sprintf("198.19.%d.%d", r.IntN(256), r.IntN(256))
		}
		sy.sport, sy.dport, sy.isn = uint16(r.Uint32()), uint16(r.Uint32()), r.Uint32()
		// Options in random order and combination.
		for _, k := range r.Perm(5) {
			if r.IntN(2) == 0 {
				continue
			}
			switch k {
			case 0:
				sy.opts = append(sy.opts, optMSS(uint16(r.Uint32())))
			case 1:
				sy.opts = append(sy.opts, optNOP, optWS(uint8(r.IntN(20))))
			case 2:
				sy.opts = append(sy.opts, optSACKPerm)
			case 3:
				sy.opts = append(sy.opts, optTS)
			case 4:
				sy.opts = append(sy.opts, optNOP, optNOP)
			}
		}
		src, dst := sy.tuple()
		vip = Endpoint{Addr: dst, Port: 0, Proto: uint8(tcp)}
		if err := s.AddVIP(vip, 7); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVIPFlags(vip, VIPSynProxyOn); err != nil {
			t.Fatal(err)
		}
		action, out, _, period := runSyn(t, s, sy.frame())
		if err := s.DelVIP(vip); err != nil {
			t.Fatal(err)
		}
		if action != actRedirect {
			t.Fatalf("%+v: action %d, want XDP_REDIRECT", sy, action)
		}
		cookie := binary.BigEndian.Uint32(out[tcpOffset(v6)+4:])
		o := sy.cookieOptions()
		if want := packet.SynCookie(&key, src, dst, sy.sport, sy.dport, sy.isn, period, o); cookie != want {
			t.Fatalf("%+v: program cookie %#08x, packet.SynCookie %#08x", sy, cookie, want)
		}
		got, ok := packet.CheckSynCookie(&key, src, dst, sy.sport, sy.dport, sy.isn, cookie, period)
		if !ok || got != o {
			t.Fatalf("%+v: cookie %#08x checks as %+v, %v; want %+v", sy, cookie, got, ok, o)
		}
		other := key
		other[r.IntN(16)] ^= 1 << r.IntN(8)
		otherSrc := src
		otherSrc[15] ^= 1
		for _, bad := range []struct {
			name string
			ok   bool
		}{
			{"another key", cookieOK(&other, src, dst, sy.sport, sy.dport, sy.isn, cookie, period)},
			{"another source", cookieOK(&key, otherSrc, dst, sy.sport, sy.dport, sy.isn, cookie, period)},
			{"another port", cookieOK(&key, src, dst, sy.sport+1, sy.dport, sy.isn, cookie, period)},
			{"another isn", cookieOK(&key, src, dst, sy.sport, sy.dport, sy.isn-1, cookie, period)},
			{"two periods later", cookieOK(&key, src, dst, sy.sport, sy.dport, sy.isn, cookie, period+2)},
		} {
			if bad.ok {
				t.Fatalf("%+v: cookie %#08x accepted with %s", sy, cookie, bad.name)
			}
		}
	}
}

func cookieOK(key *packet.SynCookieKey, src, dst inet.Addr, sport, dport uint16, isn, cookie, period uint32) bool {
	_, ok := packet.CheckSynCookie(key, src, dst, sport, dport, isn, cookie, period)
	return ok
}

func tcpOffset(v6 bool) int {
	if v6 {
		return packet.EthHeaderLen + packet.IPv6HeaderLen
	}
	return packet.EthHeaderLen + packet.IPv4HeaderLen
}

// onOneCPU pins the test's thread to one CPU, so that every run meets the
// same per-CPU token bucket.
func onOneCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := range 1024 {
		if old.IsSet(i) {
			cpu = i
			break
		}
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
}

// TestSynLimit sends bursts of SYNs over a limit of 1/s with a burst of 3:
// the first three go to the workers, the rest get cookies when the service
// is capable, and are dropped when it is not. A socket is registered: a
// director runs (without one, a capable service's SYNs all get cookies,
// TestSynProxyGap).
func TestSynLimit(t *testing.T) {
	requireRoot(t)
	onOneCPU(t)
	xsk := loXSK(t)
	for _, tc := range []struct {
		name  string
		flags VIPFlags
		over  Counters
		act   uint32
	}{
		{"capable", VIPSynProxyCapable, Counters{SynCookiesSent: 1}, actRedirect},
		{"not capable", 0, Counters{SynThrottled: 1}, actDrop},
	} {
		s := newTestSteering(t)
		registerSocket(t, s, xsk)
		if err := s.SetSynCookieKey(testSynKey); err != nil {
			t.Fatal(err)
		}
		e := endpoint(t, vip4, 80, tcp)
		if err := s.SetVIPFlags(e, tc.flags); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSynLimit(1, 3); err != nil {
			t.Fatal(err)
		}
		sy := syn{src: client4, dst: vip4, sport: 999, dport: 80, isn: 5, opts: [][]byte{optMSS(1460)}}
		start := time.Now()
		var acts []uint32
		var total Counters
		for i := range 8 {
			sy.sport = uint16(1000 + i)
			action, _, delta, _ := runSyn(t, s, sy.frame())
			acts = append(acts, action)
			total = addCounters(total, delta)
		}
		if time.Since(start) >= time.Second {
			t.Logf("%s: the runs took %v, long enough for the bucket to refill; not checked", tc.name, time.Since(start))
			continue
		}
		want := Counters{SteeredVIP: 3}
		for range 5 {
			want = addCounters(want, tc.over)
		}
		steered := Counters{SteeredVIP: 1} // into the socket
		wantActs := []uint32{actRedirect, actRedirect, actRedirect, tc.act, tc.act, tc.act, tc.act, tc.act}
		if total != want || !bytes.Equal(u32Bytes(acts), u32Bytes(wantActs)) {
			t.Errorf("%s: actions %v, counters %+v; want %v, %+v", tc.name, acts, total, wantActs, want)
		}

		// A SYN-ACK or an ACK is no SYN: never metered.
		for _, flags := range []uint8{0x12, 0x10, 0x04} {
			sy.flags = flags
			if action, _, delta, _ := runSyn(t, s, sy.frame()); action != actRedirect || delta != steered {
				t.Errorf("%s: flags %#x: action %d, counters %+v; want steered", tc.name, flags, action, delta)
			}
		}
		sy.flags = 0

		// A rate of 2^30/s refills a token every nanosecond: every SYN passes.
		if err := s.SetSynLimit(1<<30, 1); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if action, _, delta, _ := runSyn(t, s, sy.frame()); action != actRedirect || delta != steered {
				t.Errorf("%s: at 2^30/s: action %d, counters %+v; want steered", tc.name, action, delta)
			}
		}
		// Rate 0 lifts the limit.
		if err := s.SetSynLimit(1, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSynLimit(0, 0); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if action, _, delta, _ := runSyn(t, s, sy.frame()); action != actRedirect || delta != steered {
				t.Errorf("%s: unlimited: action %d, counters %+v; want steered", tc.name, action, delta)
			}
		}
	}

	s := newTestSteering(t)
	if err := s.SetSynLimit(1<<30+1, 0); err == nil {
		t.Error("SetSynLimit(2^30+1) succeeded")
	}
	if err := s.SetSynLimit(1, 1<<30+1); err == nil {
		t.Error("SetSynLimit with a burst of 2^30+1 succeeded")
	}
}

func addCounters(a, b Counters) Counters {
	return subCounters(a, subCounters(Counters{}, b))
}

func u32Bytes(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// TestSynProxyPlainFramesOnly checks that SYNs the program does not answer
// (VLAN tags, IPv4 options, IPv6 extension headers, fragments, flags other
// than a lone SYN) go to the workers as before, even with the defence on,
// and that every SYN to a service is counted for it.
func TestSynProxyPlainFramesOnly(t *testing.T) {
	s := newSynSteering(t)
	if err := s.SetSynLimit(1, 1); err != nil { // and no bucket either
		t.Fatal(err)
	}
	const svc4, svc6 = 1, 5 // newTestSteering's ids of vip4:80 and vip6:443
	syns := func(id uint32) uint64 {
		n, err := s.ServiceSYNs(id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before4, before6 := syns(svc4), syns(svc6)
	for _, tc := range []struct {
		name string
		pkt  pkt
	}{
		{"vlan", pkt{vlans: []uint16{7}, src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}},
		{"qinq", pkt{vlans: []uint16{7, 8}, src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443}},
		{"ipv4 options", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80,
			v4Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}},
		{"ipv6 hop-by-hop", pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443, v6Ext: []uint8{extHopByHop}}},
		{"ipv4 first fragment", pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80, v4Flags: layers.IPv4MoreFragments,
			payload: payloadOf(40)}},
	} {
		if action, delta := run(t, s, tc.pkt.frame(t)); action != actDrop || delta != expected(wantVIP) {
			t.Errorf("%s: action %d, counters moved by %+v; want steered (dropped: no socket)", tc.name, action, delta)
		}
	}
	if got4, got6 := syns(svc4)-before4, syns(svc6)-before6; got4 != 3 || got6 != 2 {
		t.Errorf("service SYN counts moved by %d and %d, want 3 and 2", got4, got6)
	}

	// Not SYNs: not counted, not answered.
	for _, flags := range []uint8{0x12, 0x10, 0x14, 0x06, 0x04} {
		sy := syn{src: client4, dst: vip4, sport: 1, dport: 80, flags: flags}
		if action, _, delta, _ := runSyn(t, s, sy.frame()); action != actDrop || delta != expected(wantVIP) {
			t.Errorf("flags %#x: action %d, counters moved by %+v; want steered (dropped: no socket)", flags, action, delta)
		}
	}
	// SYNs: answered and counted.
	for range 4 {
		sy := syn{src: client4, dst: vip4, sport: 1, dport: 80, flags: 0x02 | 0x08 | 0x80} // PSH, CWR: still a SYN
		if action, _, delta, _ := runSyn(t, s, sy.frame()); action != actRedirect || delta != (Counters{SynCookiesSent: 1}) {
			t.Errorf("SYN: action %d, counters moved by %+v; want a cookie", action, delta)
		}
	}
	if got := syns(svc4) - before4; got != 3+4 {
		t.Errorf("service SYN count moved by %d, want 7", got)
	}
	// UDP to a service: no SYN.
	if _, delta := run(t, s, pkt{src: client4, dst: vip4, proto: udp, sport: 1, dport: 53}.frame(t)); delta != expected(wantVIP) {
		t.Errorf("udp: counters moved by %+v", delta)
	}
	if _, err := s.ServiceSYNs(16384); err == nil {
		t.Error("ServiceSYNs(16384) succeeded")
	}
}

// TestVIPFlags checks SetVIPFlags and that AddVIP keeps them.
func TestVIPFlags(t *testing.T) {
	s := newTestSteering(t)
	e := endpoint(t, vip4, 80, tcp)
	missing := endpoint(t, other4, 80, tcp)
	if err := s.SetVIPFlags(missing, VIPSynProxyOn); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("SetVIPFlags of a missing VIP: %v, want ErrKeyNotExist", err)
	}
	if _, err := s.VIPFlags(missing); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("VIPFlags of a missing VIP: %v, want ErrKeyNotExist", err)
	}
	if f, err := s.VIPFlags(e); err != nil || f != 0 {
		t.Errorf("flags of a new VIP: %v, %v; want 0", f, err)
	}
	if err := s.SetVIPFlags(e, VIPSynProxyCapable|VIPSynProxyOn); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVIP(e, 42); err != nil {
		t.Fatal(err)
	}
	if f, err := s.VIPFlags(e); err != nil || f != VIPSynProxyCapable|VIPSynProxyOn {
		t.Errorf("flags after AddVIP: %v, %v; want both", f, err)
	}
	// The new service id is in use: SYNs count for 42.
	sy := syn{src: client4, dst: vip4, sport: 1, dport: 80}
	if action, _, _, _ := runSyn(t, s, sy.frame()); action != actRedirect {
		t.Errorf("SYN after AddVIP: action %d, want XDP_REDIRECT (flags kept)", action)
	}
	if n, err := s.ServiceSYNs(42); err != nil || n != 1 {
		t.Errorf("ServiceSYNs(42) = %d, %v; want 1", n, err)
	}
	if err := s.SetVIPFlags(e, 0); err != nil {
		t.Fatal(err)
	}
	if action, _, _, _ := runSyn(t, s, sy.frame()); action != actDrop {
		t.Errorf("SYN with flags cleared: action %d, want XDP_DROP (steered, no socket)", action)
	}
	// A VIP deleted and added again starts without flags.
	if err := s.SetVIPFlags(e, VIPSynProxyOn); err != nil {
		t.Fatal(err)
	}
	if err := s.DelVIP(e); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVIP(e, 1); err != nil {
		t.Fatal(err)
	}
	if f, err := s.VIPFlags(e); err != nil || f != 0 {
		t.Errorf("flags of a re-added VIP: %v, %v; want 0", f, err)
	}
}

// TestSynProxyGenericXDP answers a SYN through a veth in generic (skb) mode,
// where bpf_xdp_adjust_tail must grow an skb and a redirect to the same veth sends it back: a
// SYN without options becomes a longer SYN-ACK.
func TestSynProxyGenericXDP(t *testing.T) {
	h := enterTestNetns(t, "syn")
	ifindex := addVeth(t, h, "gbs0", "gbs1", 1)
	peer, err := h.LinkByName("gbs1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSteering()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	served, err := h.LinkByIndex(ifindex)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetInterface(ifindex, Interface{MAC: [6]byte(served.Attrs().HardwareAddr)}); err != nil {
		t.Fatal(err)
	}
	e := endpoint(t, vip4, 80, tcp)
	if err := s.AddVIP(e, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVIPFlags(e, VIPSynProxyOn); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSynCookieKey(testSynKey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(ifindex, ModeGeneric); err != nil {
		t.Fatal(err)
	}

	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: peer.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		t.Fatal(err)
	}
	var peerMAC, ourMAC [6]byte
	copy(peerMAC[:], peer.Attrs().HardwareAddr)
	ours, err := h.LinkByIndex(ifindex)
	if err != nil {
		t.Fatal(err)
	}
	copy(ourMAC[:], ours.Attrs().HardwareAddr)

	for _, sy := range []syn{
		// 54 bytes grow to 58, 62 to 66, 74 shrink to 66.
		{src: client4, dst: vip4, sport: 40000, dport: 80, isn: 1, srcMAC: peerMAC, dstMAC: ourMAC, noPad: true},
		{src: client4, dst: vip4, sport: 40001, dport: 80, isn: 2, srcMAC: peerMAC, dstMAC: ourMAC, noPad: true,
			opts: [][]byte{optNOP, optWS(7), optNOP, optNOP, optSACKPerm}},
		{src: client4, dst: vip4, sport: 40002, dport: 80, isn: 3, srcMAC: peerMAC, dstMAC: ourMAC,
			opts: [][]byte{optMSS(1460), optSACKPerm, optTS, optNOP, optWS(7)}},
	} {
		p0 := coarsePeriod(t)
		if err := unix.Sendto(fd, sy.frame(), 0, &unix.SockaddrLinklayer{Ifindex: peer.Attrs().Index}); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 2048)
		for range 20 { // our own SYN is seen going out first
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("no SYN-ACK came back: %v", err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			// Only IPv4 TCP: the veths send IPv6 neighbour discovery too.
			if n < 54 || buf[12] != 0x08 || buf[13] != 0x00 || buf[23] != 6 {
				continue
			}
			got = bytes.Clone(buf[:n])
			break
		}
		p1 := coarsePeriod(t)
		src, dst := sy.tuple()
		var matched bool
		for _, p := range []uint32{p0, p1} {
			cookie := packet.SynCookie(&testSynKey, src, dst, sy.sport, sy.dport, sy.isn, p, sy.cookieOptions())
			if bytes.Equal(got, sy.synAck(cookie, 1460)) {
				matched = true
			}
		}
		if !matched {
			cookie := packet.SynCookie(&testSynKey, src, dst, sy.sport, sy.dport, sy.isn, p0, sy.cookieOptions())
			t.Errorf("isn %d: SYN-ACK differs: %s", sy.isn, diffBytes(got, sy.synAck(cookie, 1460)))
		}
	}
	c, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.SynCookiesSent != 3 {
		t.Errorf("counters %+v, want 3 cookies sent", c)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestSynProxyGap: with no socket in the slot (no director process runs), a
// SYN to a service that may be proxied is answered with a cookie, as if the
// defence were on, and everything else the program would steer is
// dropped; once a socket is registered, the service's SYNs go to it again.
func TestSynProxyGap(t *testing.T) {
	s := newTestSteering(t)
	if err := s.SetSynCookieKey(testSynKey); err != nil {
		t.Fatal(err)
	}
	e4, e6 := endpoint(t, vip4, 80, tcp), endpoint(t, vip6, 443, tcp)
	for _, e := range []Endpoint{e4, e6} {
		if err := s.SetVIPFlags(e, VIPSynProxyCapable); err != nil { // syn_proxy: auto, not engaged
			t.Fatal(err)
		}
	}
	syns := []struct {
		syn syn
		mss uint16
	}{
		{syn{src: client4, dst: vip4, sport: 1000, dport: 80, isn: 7, opts: [][]byte{optMSS(1400), optWS(5)}}, 1460},
		{syn{src: client6, dst: vip6, sport: 1001, dport: 443, isn: 9}, 1440},
	}
	for _, c := range syns {
		action, out, delta, period := runSyn(t, s, c.syn.frame())
		if action != actRedirect || delta != (Counters{SynCookiesSent: 1}) {
			t.Fatalf("%s: SYN without a socket: action %d, counters moved by %+v; want a cookie", c.syn.dst, action, delta)
		}
		src, dst := c.syn.tuple()
		cookie := packet.SynCookie(&testSynKey, src, dst, c.syn.sport, c.syn.dport, c.syn.isn, period, c.syn.cookieOptions())
		if want := c.syn.synAck(cookie, c.mss); !bytes.Equal(out, want) {
			t.Errorf("%s: SYN-ACK differs: %s", c.syn.dst, diffBytes(out, want))
		}
	}

	// Not a SYN, or not TCP: nothing answers it, and the kernel would
	// reset it: dropped.
	ack := syn{src: client4, dst: vip4, sport: 1000, dport: 80, flags: 0x10}
	if action, _, delta, _ := runSyn(t, s, ack.frame()); action != actDrop || delta != expected(wantVIP) {
		t.Errorf("ACK without a socket: action %d, counters moved by %+v; want dropped, redirect failed", action, delta)
	}
	if action, delta := run(t, s, pkt{src: client4, dst: vip4, proto: udp, sport: 1, dport: 53}.frame(t)); action != actDrop || delta != expected(wantVIP) {
		t.Errorf("UDP without a socket: action %d, counters moved by %+v; want dropped, redirect failed", action, delta)
	}
	if action, delta := run(t, s, pkt{src: real4, dst: client4, proto: tcp, sport: 8080, dport: 1000}.frame(t)); action != actDrop || delta != expected(wantReply) {
		t.Errorf("NAT reply without a socket: action %d, counters moved by %+v; want dropped, redirect failed", action, delta)
	}
	// A service that may not be proxied (DR, TUN): its SYN is dropped too.
	if err := s.SetVIPFlags(e4, 0); err != nil {
		t.Fatal(err)
	}
	if action, _, delta, _ := runSyn(t, s, syns[0].syn.frame()); action != actDrop || delta != expected(wantVIP) {
		t.Errorf("SYN to a service not capable: action %d, counters moved by %+v; want dropped, redirect failed", action, delta)
	}

	// A director runs: the capable service's SYNs go to its socket.
	if err := s.SetVIPFlags(e4, VIPSynProxyCapable); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s, loXSK(t))
	if action, _, delta, _ := runSyn(t, s, syns[0].syn.frame()); action != actRedirect || delta != (Counters{SteeredVIP: 1}) {
		t.Errorf("SYN with a socket: action %d, counters moved by %+v; want steered into it", action, delta)
	}
}
