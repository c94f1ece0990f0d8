package inet

import (
	"net/netip"
)

// Addr is an IPv4 or IPv6 address; IPv4 is held IPv4-mapped.
type Addr [16]byte

// v4InV6Prefix is the ::ffff:0:0/96 prefix of an IPv4-mapped address.
var v4InV6Prefix = [12]byte{10: 0xff, 11: 0xff}

// AddrFrom4 returns the IPv4-mapped form of a 4-byte address.
func AddrFrom4(b [4]byte) Addr {
	var a Addr
	copy(a[:12], v4InV6Prefix[:])
	copy(a[12:], b[:])
	return a
}

// AddrFromSlice4 returns the IPv4-mapped form of the first 4 bytes of b.
func AddrFromSlice4(b []byte) Addr {
	var a Addr
	copy(a[:12], v4InV6Prefix[:])
	copy(a[12:], b[:4])
	return a
}

// AddrFromSlice16 returns the IPv6 address in the first 16 bytes of b.
func AddrFromSlice16(b []byte) Addr {
	var a Addr
	copy(a[:], b[:16])
	return a
}

// AddrFromNetip converts a netip.Addr; the zone, if any, is dropped.
func AddrFromNetip(ip netip.Addr) Addr {
	if ip.Is4() {
		return AddrFrom4(ip.As4())
	}
	return Addr(ip.As16())
}

// Is4 reports whether a is an IPv4-mapped address.
func (a Addr) Is4() bool {
	return [12]byte(a[:12]) == v4InV6Prefix
}

// IsZero reports whether a is the all-zero address (unset).
func (a Addr) IsZero() bool { return a == Addr{} }

// As4 returns the IPv4 bytes of an IPv4-mapped address.
func (a Addr) As4() [4]byte { return [4]byte(a[12:]) }

// Netip converts a to a netip.Addr, unmapping IPv4.
func (a Addr) Netip() netip.Addr {
	if a.IsZero() {
		return netip.Addr{}
	}
	return netip.AddrFrom16(a).Unmap()
}

// String formats a as netip does.
func (a Addr) String() string { return a.Netip().String() }

// Mask returns a with all but the leading bits of its family cleared: bits
// counts from the start of the IPv4 address for IPv4, of the IPv6 address
// otherwise. It is used for persistence netmasks.
func (a Addr) Mask(bits int) Addr {
	start := 0
	if a.Is4() {
		start = 12
	}
	out := a
	for i := start; i < 16; i++ {
		b := bits - (i-start)*8
		switch {
		case b >= 8:
		case b <= 0:
			out[i] = 0
		default:
			out[i] &= ^byte(0xff >> b)
		}
	}
	return out
}

// Hash32 returns a cheap, well-mixed 32-bit hash of a, used by the
// hashing schedulers and the connection table.
func (a Addr) Hash32() uint32 {
	h := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < 16; i += 8 {
		v := uint64(a[i]) | uint64(a[i+1])<<8 | uint64(a[i+2])<<16 | uint64(a[i+3])<<24 |
			uint64(a[i+4])<<32 | uint64(a[i+5])<<40 | uint64(a[i+6])<<48 | uint64(a[i+7])<<56
		h ^= v
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
	}
	return uint32(h) ^ uint32(h>>32)
}
