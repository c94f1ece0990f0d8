package connsync

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/inet"
)

var testKey = []byte("0123456789abcdef-test-sync-key")

func addr(s string) inet.Addr { return inet.AddrFromNetip(netip.MustParseAddr(s)) }

// sampleEntries returns one entry of every kind and forwarding method, for
// IPv4 (v6 false) or IPv6 addresses.
func sampleEntries(v6 bool) []Entry {
	c, v, d, l := "198.18.0.10", "198.18.1.1", "198.18.2.20", "198.18.3.3"
	if v6 {
		c, v, d, l = "2001:db8::10", "2001:db8:1::1", "2001:db8:2::20", "2001:db8:3::3"
	}
	return []Entry{
		{Kind: KindConn, Proto: 6, Fwd: FwdNAT, State: 1, Flags: 0x0100, Timeout: 900_000,
			Client: addr(c), CPort: 40000, Virtual: addr(v), VPort: 80, Dest: addr(d), DPort: 8080},
		{Kind: KindConn, Proto: 6, Fwd: FwdFullNAT, State: 4, Flags: 0x0001, Timeout: 119_999,
			Client: addr(c), CPort: 40001, Virtual: addr(v), VPort: 443, Dest: addr(d), DPort: 443, Local: addr(l), LPort: 61000},
		{Kind: KindConn, Proto: 17, Fwd: FwdDR, State: 11, Timeout: 300_000,
			Client: addr(c), CPort: 5353, Virtual: addr(v), VPort: 53, Dest: addr(d), DPort: 53},
		{Kind: KindConn, Proto: 6, Fwd: FwdTun, State: 2, Flags: 0xffff, Timeout: 1<<32 - 1,
			Client: addr(c), CPort: 1, Virtual: addr(v), VPort: 65535, Dest: addr(d), DPort: 65535},
		{Kind: KindTemplate, Proto: 6, Fwd: FwdNAT, Timeout: 360_000,
			Client: addr(c).Mask(24), Virtual: addr(v), VPort: 0, Dest: addr(d), DPort: 80},
		{Kind: KindDelete, Proto: 6, Client: addr(c), CPort: 40000, Virtual: addr(v), VPort: 80},
	}
}

// manyEntries returns n distinct connection entries.
func manyEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Kind: KindConn, Proto: 6, Fwd: uint8(i % 4), State: 1, Timeout: uint32(1000 + i),
			Client: inet.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), CPort: uint16(1024 + i),
			Virtual: addr("198.18.1.1"), VPort: 80, Dest: addr("198.18.2.2"), DPort: 80}
	}
	return es
}

func mustEncode(t testing.TB, hdr Header, es []Entry) []byte {
	t.Helper()
	msg, err := Encode(nil, &hdr, es, testKey)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return msg
}

// reseal recomputes msg's MAC after a deliberate change to its body.
func reseal(t testing.TB, msg []byte) []byte {
	t.Helper()
	c, err := NewCodec(testKey)
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte(nil), msg[:len(msg)-MACLen]...)
	return c.seal(body, 0)
}
