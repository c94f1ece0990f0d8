package lvs

import (
	"fmt"
	"strings"
)

// ProxyProtocol is the PROXY protocol version a full-NAT TCP service sends
// its real servers in front of the client's bytes (HAProxy's
// proxy-protocol.txt), so that they learn the client's address and port;
// ProxyNone sends nothing.
type ProxyProtocol uint8

const (
	// ProxyNone: no PROXY header (the default).
	ProxyNone ProxyProtocol = iota
	// ProxyV1: the text header, "PROXY TCP4 ...\r\n".
	ProxyV1
	// ProxyV2: the binary header, with its 12-byte signature.
	ProxyV2
)

// ProxyProtocols are the versions that send a header, in order.
var ProxyProtocols = []ProxyProtocol{ProxyV1, ProxyV2}

// String is the configuration's and govsadm's spelling: "v1", "v2", or
// "none".
func (v ProxyProtocol) String() string {
	switch v {
	case ProxyNone:
		return "none"
	case ProxyV1:
		return "v1"
	case ProxyV2:
		return "v2"
	}
	return fmt.Sprintf("ProxyProtocol(%d)", uint8(v))
}

// ParseProxyProtocol parses a version as String spells it ("v1", "v2",
// "none"; also "1", "2", "off", and the empty string for none), in any case.
func ParseProxyProtocol(s string) (ProxyProtocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none", "off":
		return ProxyNone, nil
	case "v1", "1":
		return ProxyV1, nil
	case "v2", "2":
		return ProxyV2, nil
	}
	return ProxyNone, fmt.Errorf("unknown proxy protocol version %q (want v1, v2 or none)", s)
}
