package packet

import (
	"encoding/binary"
	"math/bits"

	"github.com/govs/govs/inet"
)

// SYN cookies: the director answers a SYN to a service under SYN pressure
// with a SYN-ACK whose sequence number (the cookie) encodes everything it
// needs to accept the client's handshake ACK later, so that no state is kept
// for SYNs that never complete. The XDP program (bpf/include/synproxy.h)
// mints the cookies; the workers check them with CheckSynCookie. Both compute
// the same function, which tests compare through BPF_PROG_TEST_RUN:
//
//	h      = SipHash-2-4(key, src ‖ dst ‖ le64(sport | dport<<16 | isn<<32) ‖ le64(period | opts<<32))
//	cookie = uint32(h) &^ 0x1ff | (period&3)<<7 | opts
//	opts   = mssIndex | wscale<<2 | sack<<6
//
// src and dst are the SYN's addresses (IPv4-mapped, 16 bytes each), ports
// and isn (the client's sequence number) in host order; wscale is 0 when the
// client sent no window scale, else its shift (0..14) plus 1. The option bits
// are covered by the hash, so a client cannot change them; the low period
// bits let the check compute one hash instead of two. That leaves 23 bits of
// hash: a blind attacker needs about 2^22 guesses per accepted ACK (two
// periods are valid), the same order as the kernel's own SYN cookies.

// SynCookieMSS are the MSS values a cookie can carry (the largest not above
// the client's MSS; a client MSS below 536 maps to 536).
var SynCookieMSS = [4]uint16{536, 1220, 1440, 1460}

// SynProxyWScale is the window scale shift the director announces in its
// SYN-ACK when the client sent a window scale option.
const SynProxyWScale = 7

// SynCookieKey is the secret of the cookie hash (the SipHash key).
type SynCookieKey [16]byte

// SynOptions are the TCP options of a client's SYN that a cookie carries.
type SynOptions struct {
	MSS       uint16 // one of SynCookieMSS
	WScale    uint8  // client's window scale shift 0..14, when HasWScale
	HasWScale bool
	SACK      bool // client sent SACK-permitted
}

// Layout of a cookie's low bits.
const (
	synCookieWScaleShift = 2
	synCookieSACKBit     = 1 << 6
	synCookieOptMask     = 0x7f
	synCookiePeriodShift = 7
	synCookieHashMask    = ^uint32(0x1ff)
	synCookieMaxWScale   = 14 // RFC 7323 section 2.3: a larger shift counts as 14
	synCookieClockShift  = 36
)

// SynCookiePeriod is the cookie clock: CLOCK_MONOTONIC nanoseconds >> 36
// (about 69 s). A cookie is valid in the period it was made in and the next.
func SynCookiePeriod(monoNs uint64) uint32 {
	return uint32(monoNs >> synCookieClockShift)
}

// synCookieMSSIndex is the index of the largest SynCookieMSS not above mss
// (0 for anything below 536).
func synCookieMSSIndex(mss uint16) uint32 {
	for i := len(SynCookieMSS) - 1; i > 0; i-- {
		if mss >= SynCookieMSS[i] {
			return uint32(i)
		}
	}
	return 0
}

// synCookieOpts packs o into the cookie's low 7 bits.
func synCookieOpts(o SynOptions) uint32 {
	v := synCookieMSSIndex(o.MSS)
	if o.HasWScale {
		v |= (uint32(min(o.WScale, synCookieMaxWScale)) + 1) << synCookieWScaleShift
	}
	if o.SACK {
		v |= synCookieSACKBit
	}
	return v
}

// SynCookie returns the ISN the director answers a SYN with. src, dst,
// sport, dport are the SYN's (client -> VIP), ports in host order;
// clientISN is the SYN's sequence number. An MSS that is not one of
// SynCookieMSS is rounded down to one (536 at least) and a window scale
// above 14 counts as 14, as the XDP program does.
func SynCookie(key *SynCookieKey, src, dst inet.Addr, sport, dport uint16, clientISN, period uint32, o SynOptions) uint32 {
	opts := synCookieOpts(o)
	return uint32(synCookieHash(key, &src, &dst, sport, dport, clientISN, period, opts))&synCookieHashMask |
		(period&3)<<synCookiePeriodShift | opts
}

// CheckSynCookie validates the cookie of a handshake ACK (cookie =
// ACK.ack-1, clientISN = ACK.seq-1, tuple as the ACK carries it) for period
// and period-1, and returns the options it carries.
func CheckSynCookie(key *SynCookieKey, src, dst inet.Addr, sport, dport uint16, clientISN, cookie, period uint32) (SynOptions, bool) {
	// The cookie's period bits select the one candidate period, so a
	// forged ACK costs one hash, not two.
	p := period
	if (cookie>>synCookiePeriodShift)&3 != p&3 {
		p--
		if (cookie>>synCookiePeriodShift)&3 != p&3 {
			return SynOptions{}, false
		}
	}
	opts := cookie & synCookieOptMask
	if uint32(synCookieHash(key, &src, &dst, sport, dport, clientISN, p, opts))&synCookieHashMask != cookie&synCookieHashMask {
		return SynOptions{}, false
	}
	o := SynOptions{MSS: SynCookieMSS[opts&3], SACK: opts&synCookieSACKBit != 0}
	if ws := (opts >> synCookieWScaleShift) & 0xf; ws != 0 {
		o.HasWScale, o.WScale = true, uint8(ws-1)
	}
	return o, true
}

// synCookieHash is SipHash-2-4 of the 48-byte message described above.
func synCookieHash(key *SynCookieKey, src, dst *inet.Addr, sport, dport uint16, isn, period, opts uint32) uint64 {
	k0 := binary.LittleEndian.Uint64(key[0:8])
	k1 := binary.LittleEndian.Uint64(key[8:16])
	s := sipState{
		v0: k0 ^ 0x736f6d6570736575,
		v1: k1 ^ 0x646f72616e646f6d,
		v2: k0 ^ 0x6c7967656e657261,
		v3: k1 ^ 0x7465646279746573,
	}
	s.compress(binary.LittleEndian.Uint64(src[0:8]))
	s.compress(binary.LittleEndian.Uint64(src[8:16]))
	s.compress(binary.LittleEndian.Uint64(dst[0:8]))
	s.compress(binary.LittleEndian.Uint64(dst[8:16]))
	s.compress(uint64(sport) | uint64(dport)<<16 | uint64(isn)<<32)
	s.compress(uint64(period) | uint64(opts)<<32)
	s.compress(48 << 56) // the final block: the message length, no tail bytes
	s.v2 ^= 0xff
	s.round()
	s.round()
	s.round()
	s.round()
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

type sipState struct{ v0, v1, v2, v3 uint64 }

// compress absorbs one message word with two SipRounds.
func (s *sipState) compress(m uint64) {
	s.v3 ^= m
	s.round()
	s.round()
	s.v0 ^= m
}

func (s *sipState) round() {
	s.v0 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 13)
	s.v1 ^= s.v0
	s.v0 = bits.RotateLeft64(s.v0, 32)
	s.v2 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 16)
	s.v3 ^= s.v2
	s.v0 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 21)
	s.v3 ^= s.v0
	s.v2 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 17)
	s.v1 ^= s.v2
	s.v2 = bits.RotateLeft64(s.v2, 32)
}
