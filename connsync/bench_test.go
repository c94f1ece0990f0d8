package connsync

import "testing"

// The codec benchmarks encode and decode full default-size messages (16
// entries) and report the cost per entry; the HMAC dominates.
func BenchmarkEncode(b *testing.B) {
	c, err := NewCodec(testKey)
	if err != nil {
		b.Fatal(err)
	}
	es := manyEntries(EntriesPerMessage(DefaultMaxPayload))
	buf := make([]byte, 0, MessageLen(len(es)))
	b.SetBytes(int64(MessageLen(len(es))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encode(buf[:0], &testHeader, es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(es)), "ns/entry")
}

func BenchmarkDecode(b *testing.B) {
	c, err := NewCodec(testKey)
	if err != nil {
		b.Fatal(err)
	}
	es := manyEntries(EntriesPerMessage(DefaultMaxPayload))
	msg := mustEncode(b, testHeader, es)
	out := make([]Entry, 0, len(es))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, out, err = c.Decode(msg, testHeader.SyncID, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(es)), "ns/entry")
}

// BenchmarkDecodeOneShot is the package-level Decode, which builds the HMAC
// state on every call.
func BenchmarkDecodeOneShot(b *testing.B) {
	es := manyEntries(EntriesPerMessage(DefaultMaxPayload))
	msg := mustEncode(b, testHeader, es)
	out := make([]Entry, 0, len(es))
	b.ReportAllocs()
	var err error
	for b.Loop() {
		if _, out, err = Decode(msg, testKey, testHeader.SyncID, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(es)), "ns/entry")
}
