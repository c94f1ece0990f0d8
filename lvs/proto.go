package lvs

import (
	"fmt"
	"strconv"
	"strings"
)

// Proto is an IP protocol number (the IPv4 protocol field, the IPv6 next
// header of the transport).
type Proto uint8

// The protocols govs handles or names.
const (
	ProtoICMP   Proto = 1
	ProtoIPIP   Proto = 4 // IPv4 in IP: LVS-TUN's encapsulation
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoIPv6   Proto = 41 // IPv6 in IP: LVS-TUN's encapsulation of IPv6
	ProtoICMPv6 Proto = 58
	ProtoSCTP   Proto = 132
)

// String is the name ipvsadm prints (TCP, UDP, ...); a number for others.
func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "ICMP"
	case ProtoIPIP:
		return "IPIP"
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoIPv6:
		return "IPv6"
	case ProtoICMPv6:
		return "ICMPv6"
	case ProtoSCTP:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// Name is the configuration's spelling: lowercase (tcp, udp, ...).
func (p Proto) Name() string { return strings.ToLower(p.String()) }

// Transport reports whether p has ports a virtual service can match (TCP,
// UDP, SCTP).
func (p Proto) Transport() bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP }

// ServiceProtos are the protocols a virtual service may have.
var ServiceProtos = []Proto{ProtoTCP, ProtoUDP}

// ParseProto parses a service protocol, in any case: tcp or udp.
func ParseProto(s string) (Proto, error) {
	for _, p := range ServiceProtos {
		if strings.EqualFold(s, p.Name()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q (valid: tcp, udp)", s)
}
