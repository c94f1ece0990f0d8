package lvs

import (
	"fmt"
	"strings"
)

// Fwd is a forwarding method: how the director passes a client's packets
// to the real server (IPVS's IP_VS_CONN_F_FWD_MASK values, plus full-NAT).
// Its numeric values are part of the connection-sync wire format and of
// the XDP program's flow entries: append, never renumber.
type Fwd uint8

const (
	// FwdNAT rewrites the destination to the real server's; the replies
	// come back through the director (LVS-NAT, ipvsadm -m, "Masq").
	FwdNAT Fwd = iota
	// FwdFullNAT rewrites the source to a local address of the director
	// as well, so the replies come back through it on any routing.
	FwdFullNAT
	// FwdDR changes only the destination MAC; the real server answers
	// the client directly (LVS-DR, ipvsadm -g, "Route").
	FwdDR
	// FwdTun encapsulates the packet in IPIP (or IPv6-in-IPv6); the real
	// server answers directly (LVS-TUN, ipvsadm -i, "Tunnel").
	FwdTun
)

// Fwds are the forwarding methods, in order.
var Fwds = []Fwd{FwdNAT, FwdFullNAT, FwdDR, FwdTun}

// fwdNames are each method's configuration name, ipvsadm's column and the
// other spellings ParseFwd accepts.
var fwdNames = [...]struct {
	name, column string
	aliases      []string
}{
	FwdNAT:     {"nat", "Masq", []string{"masq", "masquerading", "m"}},
	FwdFullNAT: {"fullnat", "FullNat", []string{"full-nat", "full_nat", "fnat"}},
	FwdDR:      {"dr", "Route", []string{"route", "direct", "gatewaying", "g"}},
	FwdTun:     {"tun", "Tunnel", []string{"tunnel", "tunneling", "ipip", "i"}},
}

func (f Fwd) valid() bool { return int(f) < len(fwdNames) }

// String is the name ipvsadm prints in its Forward column (Masq, FullNat,
// Route, Tunnel).
func (f Fwd) String() string {
	if !f.valid() {
		return fmt.Sprintf("Fwd(%d)", uint8(f))
	}
	return fwdNames[f].column
}

// Name is the configuration's spelling (nat, fullnat, dr, tun).
func (f Fwd) Name() string {
	if !f.valid() {
		return fmt.Sprintf("fwd(%d)", uint8(f))
	}
	return fwdNames[f].name
}

// InputOnly reports whether the director sees only the client's half of a
// connection (DR, TUN: the real server answers directly), so that TCP is
// tracked with IPVS's input-only state table.
func (f Fwd) InputOnly() bool { return f == FwdDR || f == FwdTun }

// FwdNames are the configuration names, in order.
func FwdNames() []string {
	out := make([]string, len(Fwds))
	for i, f := range Fwds {
		out[i] = f.Name()
	}
	return out
}

// ParseFwd parses a forwarding method by its configuration name, its
// ipvsadm column or one of the usual aliases, in any case.
func ParseFwd(s string) (Fwd, error) {
	for _, f := range Fwds {
		n := fwdNames[f]
		if strings.EqualFold(s, n.name) || strings.EqualFold(s, n.column) {
			return f, nil
		}
		for _, a := range n.aliases {
			if strings.EqualFold(s, a) {
				return f, nil
			}
		}
	}
	return 0, fmt.Errorf("unknown forwarding method %q (valid: %s)", s, strings.Join(FwdNames(), ", "))
}
