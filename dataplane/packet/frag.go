package packet

import "encoding/binary"

// FragInfo describes an IP fragment: its identification (IPv4: 16 bits;
// IPv6: the fragment header's 32 bits), the byte offset of its data in the
// datagram, whether more fragments follow, and the length of its data (what
// follows the IPv4 header or the IPv6 fragment header).
type FragInfo struct {
	ID     uint32
	Offset int
	More   bool
	Len    int
}

// Fragment reads the fragment fields of the packet p describes (from Parse
// on frame, with p.Frag != FragNone). It returns false when p is not a
// fragment or does not fit frame.
func Fragment(frame []byte, p *Parsed) (FragInfo, bool) {
	if p.Frag == FragNone || !fits(p, len(frame)) {
		return FragInfo{}, false
	}
	h := frame[p.L3Off : p.L3Off+p.L3Len]
	if p.Family == 4 {
		ihl := int(h[0]&0x0f) * 4
		fo := binary.BigEndian.Uint16(h[6:])
		return FragInfo{
			ID:     uint32(binary.BigEndian.Uint16(h[4:])),
			Offset: int(fo&ipv4OffsetMask) * 8,
			More:   fo&ipv4FlagMF != 0,
			Len:    len(h) - ihl,
		}, ihl <= len(h)
	}
	nh, off := h[6], IPv6HeaderLen
	for range maxExtHeaders + 1 {
		switch nh {
		case protoHopByHop, protoRouting, protoDestOpts, protoAH:
			if len(h) < off+8 {
				return FragInfo{}, false
			}
			n := (int(h[off+1]) + 1) * 8
			if nh == protoAH {
				n = (int(h[off+1]) + 2) * 4
			}
			nh = h[off]
			off += n
		case protoFragment:
			if len(h) < off+8 {
				return FragInfo{}, false
			}
			fo := binary.BigEndian.Uint16(h[off+2:])
			return FragInfo{
				ID:     binary.BigEndian.Uint32(h[off+4:]),
				Offset: int(fo & ipv6FragOffMask),
				More:   fo&ipv6FragMF != 0,
				Len:    len(h) - off - 8,
			}, true
		default:
			return FragInfo{}, false
		}
	}
	return FragInfo{}, false
}
