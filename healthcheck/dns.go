package healthcheck

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// dnsRegistration: the dns block is required, for its query.
var dnsRegistration = Registration{
	Kinds:         []string{"dns"},
	Checker:       DNSChecker{},
	NeedsPort:     true,
	Block:         "dns",
	BlockRequired: true,
	Settings: []Setting{
		{Name: "query", Kind: String, Required: true, NonEmpty: true},
		{Name: "type", Kind: String},
	},
	NewProbe: newDNSProbe,
}

// dnsTypes are the query types a DNS check may ask for.
var dnsTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255,
}

// newDNSProbe builds a dns probe; the query type defaults to A and is
// written in any case.
func newDNSProbe(_ string, v Values) (Probe, []SettingError) {
	p := DNSProbe{QType: dnsTypes["A"]}
	var errs []SettingError
	if q, ok := v.String("query"); ok {
		if validDomainName(q) {
			p.Query = q
		} else {
			errs = append(errs, badSetting("query", "%q is not a valid domain name", q))
		}
	}
	if t, ok := v.String("type"); ok {
		if q, known := dnsTypes[strings.ToUpper(t)]; known {
			p.QType = q
		} else {
			errs = append(errs, badSetting("type", "%q is not a supported query type (valid: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, ANY)", t))
		}
	}
	return p, errs
}

// validDomainName checks the wire limits: 253 characters, labels of 1..63.
func validDomainName(s string) bool {
	if s == "." {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || strings.ContainsAny(label, " \t\r\n") {
			return false
		}
	}
	return true
}

// DNSProbe is a DNS check: the name to ask for, in presentation form ("."
// is the root; empty is no query), and the query type number (1 for A, 28
// for AAAA, ...).
type DNSProbe struct {
	Query string
	QType uint16
}

// Kind implements Probe.
func (DNSProbe) Kind() string { return "dns" }

// DNSChecker sends one recursive-desired query for DNSProbe.Query and
// DNSProbe.QType (class IN) over UDP and passes when a response with the
// query's ID and question comes back with rcode NOERROR. The answer count
// is not looked at: NOERROR with no data (the name exists without records
// of that type) still shows a working server. Datagrams that do not match
// the query (another ID, not a response, another question) are ignored
// until the timeout, as a resolver would.
type DNSChecker struct{}

// DNS wire constants (RFC 1035).
const (
	dnsHeaderLen  = 12
	dnsClassIN    = 1
	dnsFlagQR     = 1 << 15
	dnsFlagRD     = 1 << 8
	dnsOpcodeMask = 0xf << 11
	dnsRcodeMask  = 0xf
)

var dnsRcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

func dnsRcodeName(rcode int) string {
	if rcode >= 0 && rcode < len(dnsRcodeNames) {
		return dnsRcodeNames[rcode]
	}
	return strconv.Itoa(rcode)
}

// Check implements Checker.
func (DNSChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()
	probe, _ := probeOf[DNSProbe](t)
	if probe.Query == "" { // "." is the root: an empty query is a missing one
		return failResult(start, "no dns query configured")
	}
	id := uint16(rand.Uint32())
	query, err := encodeDNSQuery(id, probe.Query, probe.QType)
	if err != nil {
		return failResult(start, err.Error())
	}

	conn, err := dial(ctx, "udp", t)
	if err != nil {
		return errResult(ctx, start, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if _, err := conn.Write(query); err != nil {
		return errResult(ctx, start, err)
	}
	buf := make([]byte, maxDatagram)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return errResult(ctx, start, err)
		}
		rcode, err := dnsResponseRcode(buf[:n], query)
		if err != nil {
			continue // not the answer to our query
		}
		if rcode != 0 {
			return failResult(start, "rcode "+dnsRcodeName(rcode))
		}
		return okResult(start)
	}
}

// encodeDNSQuery builds a standard query with one question. name is in
// presentation form, with or without the final dot; "." is the root.
func encodeDNSQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	msg := make([]byte, dnsHeaderLen, dnsHeaderLen+len(name)+6)
	binary.BigEndian.PutUint16(msg[0:], id)
	binary.BigEndian.PutUint16(msg[2:], dnsFlagRD)
	binary.BigEndian.PutUint16(msg[4:], 1) // QDCOUNT
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for label := range strings.SplitSeq(name, ".") {
			if len(label) == 0 || len(label) > 63 {
				return nil, fmt.Errorf("dns query %q: bad label length %d", name, len(label))
			}
			msg = append(msg, byte(len(label)))
			msg = append(msg, label...)
		}
	}
	msg = append(msg, 0)
	if len(msg)-dnsHeaderLen > 255 {
		return nil, fmt.Errorf("dns query %q: name longer than 255 bytes", name)
	}
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	msg = binary.BigEndian.AppendUint16(msg, dnsClassIN)
	return msg, nil
}

var errNotOurResponse = errors.New("not a response to the query")

// dnsResponseRcode returns the rcode of resp when it answers query: same
// ID, QR set, standard opcode, and the same single question (names compare
// case-insensitively, as DNS does; some servers randomise case).
func dnsResponseRcode(resp, query []byte) (int, error) {
	if len(resp) < dnsHeaderLen {
		return 0, errNotOurResponse
	}
	if !bytes.Equal(resp[0:2], query[0:2]) {
		return 0, errNotOurResponse
	}
	flags := binary.BigEndian.Uint16(resp[2:])
	if flags&dnsFlagQR == 0 || flags&dnsOpcodeMask != 0 {
		return 0, errNotOurResponse
	}
	rcode := int(flags & dnsRcodeMask)
	qdcount := binary.BigEndian.Uint16(resp[4:])
	// Some servers answer FORMERR or NOTIMP without echoing the question;
	// that is still their answer to our ID.
	if qdcount == 0 && rcode != 0 {
		return rcode, nil
	}
	question := query[dnsHeaderLen:]
	if qdcount != 1 || len(resp) < dnsHeaderLen+len(question) {
		return 0, errNotOurResponse
	}
	echoed := resp[dnsHeaderLen : dnsHeaderLen+len(question)]
	nameLen := len(question) - 4 // the name, then QTYPE and QCLASS
	if !asciiEqualFold(echoed[:nameLen], question[:nameLen]) || !bytes.Equal(echoed[nameLen:], question[nameLen:]) {
		return 0, errNotOurResponse
	}
	return rcode, nil
}

// asciiEqualFold compares wire-form names ignoring ASCII case only; length
// octets (at most 63) are below 'A' and so compare exactly.
func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
