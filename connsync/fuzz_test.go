package connsync

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds Decode arbitrary bytes twice: as they are, which
// exercises the checks in front of the HMAC, and with the MAC recomputed
// over them, which lets the fuzzer reach the entry parsing. Decode must not
// panic, and whatever decodes must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, testHeader, sampleEntries(false)))
	f.Add(mustEncode(f, testHeader, sampleEntries(true)))
	f.Add(mustEncode(f, testHeader, nil))
	f.Add(mustEncode(f, testHeader, manyEntries(16))[:100])
	f.Add([]byte{})
	f.Add([]byte("GVSY\x01\x07"))
	c, err := NewCodec(testKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(msg []byte) {
			hdr, es, err := c.Decode(msg, testHeader.SyncID, nil)
			if err != nil {
				return
			}
			again, err := c.Encode(nil, &hdr, es)
			if err != nil {
				t.Fatalf("decoded message does not re-encode: %v", err)
			}
			if !bytes.Equal(again, msg) {
				t.Fatalf("re-encoded message differs:\n got %x\nwant %x", again, msg)
			}
		}
		check(data)
		if len(data) >= MACLen {
			body := bytes.Clone(data[:len(data)-MACLen])
			check(c.seal(body, 0))
		}
	})
}
