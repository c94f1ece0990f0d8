package lvs

import "strings"

// TCPFlags are the flag bits of a TCP header's byte 13.
type TCPFlags uint8

// The TCP flags.
const (
	TCPFin TCPFlags = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

var tcpFlagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Has reports whether every flag of g is set.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// IsSYN reports whether the segment opens a connection: SYN without ACK
// and without RST (a SYN-ACK answers one; SYN with RST is invalid).
func (f TCPFlags) IsSYN() bool { return f&(TCPSyn|TCPAck|TCPRst) == TCPSyn }

// IsSYNACK reports whether the segment answers a SYN: SYN and ACK, no RST.
func (f TCPFlags) IsSYNACK() bool { return f&(TCPSyn|TCPAck|TCPRst) == TCPSyn|TCPAck }

// String lists the set flags, tcpdump's order reversed: "SYN|ACK"; "" for
// none.
func (f TCPFlags) String() string {
	var parts []string
	for i, n := range tcpFlagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}
