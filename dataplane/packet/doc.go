// Package packet parses and rewrites Ethernet frames in place, without
// allocating, for the per-packet hot path of the forwarding workers.
//
// Parse fills a caller-owned Parsed with header offsets and the L3/L4 tuple
// of a frame that sits in a UMEM buffer. The rewrite functions (DNAT, SNAT,
// SetMACs, and the full-NAT, tunnel and ICMP helpers) change that frame in
// place and keep every checksum valid by updating it incrementally
// (RFC 1624) instead of recomputing it over the payload.
//
// Nothing here panics on a malformed frame: Parse returns a sentinel error,
// and the rewrites only write to offsets that Parse validated against the
// frame's length. Address families never change in a rewrite (NAT44, NAT66).
package packet
