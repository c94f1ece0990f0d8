package healthcheck

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// dnsServer is a tiny authoritative server for tests, built on gopacket's
// DNS layer so it checks our encoder independently. It knows A records of
// names; "junk." first gets a datagram with a wrong ID; "servfail." gets
// SERVFAIL; "silent." no answer.
func dnsServer(t *testing.T, records map[string]netip.Addr) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q layers.DNS
			if err := q.DecodeFromBytes(buf[:n], gopacket.NilDecodeFeedback); err != nil || len(q.Questions) != 1 {
				t.Errorf("server: bad query: %v", err)
				continue
			}
			question := q.Questions[0]
			name := strings.ToLower(string(question.Name))
			r := layers.DNS{ID: q.ID, QR: true, OpCode: layers.DNSOpCodeQuery, RD: q.RD, AA: true,
				Questions: q.Questions, ResponseCode: layers.DNSResponseCodeNoErr}
			switch {
			case name == "silent":
				continue
			case name == "servfail":
				r.ResponseCode = layers.DNSResponseCodeServFail
			case name == "junk":
				junk := r
				junk.ID = q.ID + 1
				send(t, pc, from, &junk)
				junk.ID, junk.QR = q.ID, false // a query, not a response
				send(t, pc, from, &junk)
			}
			if a, ok := records[name]; ok {
				if question.Type == layers.DNSTypeA {
					r.Answers = []layers.DNSResourceRecord{{Name: question.Name, Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 60, IP: a.AsSlice()}}
				}
			} else if r.ResponseCode == layers.DNSResponseCodeNoErr && name != "junk" {
				r.ResponseCode = layers.DNSResponseCodeNXDomain
			}
			send(t, pc, from, &r)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func send(t *testing.T, pc net.PacketConn, to net.Addr, d *layers.DNS) {
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Errorf("server: serialize: %v", err)
		return
	}
	pc.WriteTo(buf.Bytes(), to)
}

func TestDNSCheck(t *testing.T) {
	ap := dnsServer(t, map[string]netip.Addr{"web.example.test": netip.MustParseAddr("198.18.0.10")})
	dns := func(q string, qtype uint16) Spec {
		return Spec{Probe: DNSProbe{Query: q, QType: qtype}, Timeout: 300 * time.Millisecond}
	}
	c := DNSChecker{}
	for _, tc := range []struct {
		query  string
		qtype  uint16
		ok     bool
		reason string
	}{
		{"web.example.test.", 1, true, "ok"},
		{"web.example.test", 1, true, "ok"},
		{"Web.Example.TEST.", 1, true, "ok"},
		{"web.example.test.", 28, true, "ok"}, // NOERROR without data
		{"missing.example.test.", 1, false, "rcode NXDOMAIN"},
		{"servfail.", 1, false, "rcode SERVFAIL"},
		{"junk.", 1, true, "ok"}, // wrong ID and a non-response are skipped
		{"silent.", 1, false, "timeout"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			wantResult(t, c.Check(t.Context(), target(ap, dns(tc.query, tc.qtype))), tc.ok, tc.reason)
		})
	}
	wantResult(t, c.Check(t.Context(), target(closedPort(t, "udp"), dns("web.example.test.", 1))), false, "refused")
}

func TestEncodeDNSQuery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"example.test.", 28, "example.test"},
		{"a.b.c", 1, "a.b.c"},
		{".", 2, ""},
	} {
		msg, err := encodeDNSQuery(0xbeef, tc.name, tc.qtype)
		if err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		var d layers.DNS
		if err := d.DecodeFromBytes(msg, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("%q: gopacket cannot decode our query: %v", tc.name, err)
		}
		if d.ID != 0xbeef || d.QR || !d.RD || d.OpCode != layers.DNSOpCodeQuery || len(d.Questions) != 1 || len(d.Answers) != 0 {
			t.Errorf("%q: header %+v", tc.name, d)
			continue
		}
		q := d.Questions[0]
		if string(q.Name) != tc.want || uint16(q.Type) != tc.qtype || q.Class != layers.DNSClassIN {
			t.Errorf("%q: question %q type %d class %d", tc.name, q.Name, q.Type, q.Class)
		}
	}
	for _, bad := range []string{"a..b", strings.Repeat("x", 64) + ".test", strings.Repeat("abcdefghi.", 26)} {
		if _, err := encodeDNSQuery(1, bad, 1); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDNSResponseRcode(t *testing.T) {
	query, _ := encodeDNSQuery(7, "x.test", 1)
	resp := func(mod func([]byte)) []byte {
		r := append([]byte(nil), query...)
		r[2] |= 0x80 // QR
		mod(r)
		return r
	}
	if rc, err := dnsResponseRcode(resp(func([]byte) {}), query); err != nil || rc != 0 {
		t.Errorf("plain response: %d %v", rc, err)
	}
	if rc, err := dnsResponseRcode(resp(func(r []byte) { r[3] |= 3 }), query); err != nil || rc != 3 {
		t.Errorf("NXDOMAIN: %d %v", rc, err)
	}
	if rc, err := dnsResponseRcode(resp(func(r []byte) { r[3] |= 1; r[5] = 0 }), query); err != nil || rc != 1 {
		t.Errorf("FORMERR without question: %d %v", rc, err)
	}
	for name, r := range map[string][]byte{
		"short":          query[:5],
		"query":          query,
		"other id":       resp(func(r []byte) { r[1]++ }),
		"other opcode":   resp(func(r []byte) { r[2] |= 0x10 }),
		"other name":     resp(func(r []byte) { r[13] = 'y' }),
		"other type":     resp(func(r []byte) { r[len(r)-3] = 28 }),
		"two questions":  resp(func(r []byte) { r[5] = 2 }),
		"no question ok": resp(func(r []byte) { r[5] = 0 }),
		"truncated":      resp(func([]byte) {})[:len(query)-1],
	} {
		if _, err := dnsResponseRcode(r, query); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
