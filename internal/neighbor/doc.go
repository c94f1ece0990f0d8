// Package neighbor builds and sends the frames that announce an address on
// an Ethernet segment: a gratuitous ARP request for IPv4 and an unsolicited
// neighbour advertisement (RFC 4861 section 7.2.6, override set) for IPv6.
// govsd sends one when it adds a VIP to an interface (director.manage_vips),
// so that routers and hosts on the segment update their neighbour caches at
// once instead of after their entries expire, as after a failover.
//
// The frames are built by hand: they are a few fixed fields, and a packet
// library would be a large dependency for them.
package neighbor
