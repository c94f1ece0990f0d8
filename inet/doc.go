// Package inet holds the small, pointer-free address and tuple types that the
// packet parser, the connection table and the schedulers share.
//
// Addresses are 16-byte arrays with IPv4 stored in IPv4-mapped IPv6 form
// (::ffff:a.b.c.d). Unlike netip.Addr they carry no pointer, so millions of
// them in the connection table cost the garbage collector nothing to scan, and
// they are comparable, so they key Go maps and hash tables directly.
package inet
