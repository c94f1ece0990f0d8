package connsync

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

var testHeader = Header{SyncID: 7, Flags: 0, Sender: 0x1122334455667788, Seq: 42, SendTime: 1_700_000_000_123_456_789}

func TestRoundTrip(t *testing.T) {
	cases := map[string][]Entry{
		"v4":    sampleEntries(false),
		"v6":    sampleEntries(true),
		"mixed": append(sampleEntries(false), sampleEntries(true)...),
		"empty": nil,
		"full":  manyEntries(EntriesPerMessage(DefaultMaxPayload)),
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			hdr := testHeader
			hdr.Flags = 0x8001 // unknown flags travel as they are
			prefix := []byte("prefix")
			msg, err := Encode(prefix, &hdr, es, testKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(msg, []byte("prefix")) {
				t.Fatal("Encode did not append to dst")
			}
			msg = msg[len(prefix):]
			if len(msg) != MessageLen(len(es)) {
				t.Fatalf("len %d, want %d", len(msg), MessageLen(len(es)))
			}
			got, gotEs, err := Decode(msg, testKey, hdr.SyncID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != hdr {
				t.Errorf("header %+v, want %+v", got, hdr)
			}
			if len(gotEs) != len(es) {
				t.Fatalf("%d entries, want %d", len(gotEs), len(es))
			}
			for i := range es {
				if gotEs[i] != es[i] {
					t.Errorf("entry %d: %+v, want %+v", i, gotEs[i], es[i])
				}
			}
		})
	}
}

// TestLayout pins the wire format documented in doc.go.
func TestLayout(t *testing.T) {
	es := sampleEntries(false)[1:2] // full-NAT entry: every field set
	msg := mustEncode(t, testHeader, es)
	wantHeader := "47565359" + "01" + "07" + "0000" + "1122334455667788" + "000000000000002a" +
		hex.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(testHeader.SendTime))) + "0001"
	if got := hex.EncodeToString(msg[:HeaderLen]); got != wantHeader {
		t.Errorf("header\n got %s\nwant %s", got, wantHeader)
	}
	mapped := "00000000000000000000ffff"
	wantEntry := "02" + "06" + "01" + "04" + "0001" + "0001d4bf" +
		mapped + "c612000a" + "9c41" + // client 198.18.0.10:40001
		mapped + "c6120101" + "01bb" + // virtual 198.18.1.1:443
		mapped + "c6120214" + "01bb" + // dest 198.18.2.20:443
		mapped + "c6120303" + "ee48" // local 198.18.3.3:61000
	wantEntry = "01" + wantEntry[2:] // kind conn
	if got := hex.EncodeToString(msg[HeaderLen : HeaderLen+EntryLen]); got != wantEntry {
		t.Errorf("entry\n got %s\nwant %s", got, wantEntry)
	}
	if EntriesPerMessage(DefaultMaxPayload) != 16 {
		t.Errorf("EntriesPerMessage(%d) = %d, want 16", DefaultMaxPayload, EntriesPerMessage(DefaultMaxPayload))
	}
}

func TestDecodeRejects(t *testing.T) {
	good := mustEncode(t, testHeader, sampleEntries(false))

	// Every single-byte change is caught; the checks that run before the
	// HMAC claim the bytes they read.
	t.Run("tamper", func(t *testing.T) {
		for i := range good {
			msg := bytes.Clone(good)
			msg[i] ^= 0x01
			want := ErrBadMAC
			switch {
			case i < offVersion:
				want = ErrBadMagic
			case i == offVersion:
				want = ErrBadVersion
			case i == offSyncID:
				want = ErrWrongSyncID
			case i == offCount || i == offCount+1:
				want = ErrBadLength
			}
			if _, _, err := Decode(msg, testKey, testHeader.SyncID, nil); !errors.Is(err, want) {
				t.Fatalf("byte %d flipped: err %v, want %v", i, err, want)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range len(good) {
			if _, _, err := Decode(good[:n], testKey, testHeader.SyncID, nil); !errors.Is(err, ErrBadLength) {
				t.Fatalf("truncated to %d: err %v, want ErrBadLength", n, err)
			}
		}
	})

	otherKey := bytes.Clone(testKey)
	otherKey[0] ^= 0x80
	badKind := bytes.Clone(good)
	badKind[HeaderLen+EntryLen+eoKind] = 4
	zeroKind := bytes.Clone(good)
	zeroKind[HeaderLen+eoKind] = 0
	badFwd := bytes.Clone(good)
	badFwd[HeaderLen+eoFwd] = 4
	v2 := bytes.Clone(good)
	v2[offVersion] = 2
	tests := []struct {
		name   string
		msg    []byte
		key    []byte
		syncID uint8
		want   error
	}{
		{"wrong key", good, otherKey, 7, ErrBadMAC},
		{"short key", good, testKey[:MinKeyLen-1], 7, ErrKeyTooShort},
		{"wrong sync id", good, testKey, 8, ErrWrongSyncID},
		{"extra byte", append(bytes.Clone(good), 0), testKey, 7, ErrBadLength},
		{"empty", nil, testKey, 7, ErrBadLength},
		{"version 2", reseal(t, v2), testKey, 7, ErrBadVersion},
		{"unknown kind", reseal(t, badKind), testKey, 7, ErrMalformed},
		{"zero kind", reseal(t, zeroKind), testKey, 7, ErrMalformed},
		{"unknown fwd", reseal(t, badFwd), testKey, 7, ErrMalformed},
		{"mac zeroed", append(bytes.Clone(good[:len(good)-MACLen]), make([]byte, MACLen)...), testKey, 7, ErrBadMAC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, es, err := Decode(tc.msg, tc.key, tc.syncID, make([]Entry, 3))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if len(es) != 0 {
				t.Errorf("%d entries returned with an error", len(es))
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := Encode(nil, &testHeader, sampleEntries(false), testKey[:MinKeyLen-1]); !errors.Is(err, ErrKeyTooShort) {
		t.Errorf("short key: %v", err)
	}
	es := sampleEntries(false)
	es[2].Kind = 0
	if _, err := Encode(nil, &testHeader, es, testKey); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero kind: %v", err)
	}
	es = sampleEntries(false)
	es[0].Fwd = 9
	if _, err := Encode(nil, &testHeader, es, testKey); !errors.Is(err, ErrMalformed) {
		t.Errorf("fwd 9: %v", err)
	}
	if _, err := Encode(nil, &testHeader, make([]Entry, MaxEntries+1), testKey); !errors.Is(err, ErrTooMany) {
		t.Errorf("too many: %v", err)
	}
}

func TestRemaining(t *testing.T) {
	var e Entry
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{
		{-time.Second, 0}, {0, 0}, {time.Nanosecond, 1}, {time.Millisecond, 1},
		{1500 * time.Microsecond, 2}, {15 * time.Minute, 900_000}, {2000 * time.Hour, 1<<32 - 1}, {MaxTimeout, 1<<32 - 1},
	} {
		e.SetRemaining(tc.d)
		if e.Timeout != tc.want {
			t.Errorf("SetRemaining(%v): %d, want %d", tc.d, e.Timeout, tc.want)
		}
	}
	e.Timeout = 1500
	if e.Remaining() != 1500*time.Millisecond {
		t.Errorf("Remaining %v", e.Remaining())
	}
}

// A Codec reused across messages allocates nothing.
func TestCodecAllocs(t *testing.T) {
	c, err := NewCodec(testKey)
	if err != nil {
		t.Fatal(err)
	}
	es := manyEntries(16)
	buf := make([]byte, 0, MessageLen(len(es)))
	out := make([]Entry, 0, len(es))
	var msg []byte
	if n := testing.AllocsPerRun(100, func() {
		msg, err = c.Encode(buf[:0], &testHeader, es)
	}); n != 0 || err != nil {
		t.Errorf("Encode: %v allocs, err %v", n, err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, out, err = c.Decode(msg, testHeader.SyncID, out)
	}); n != 0 || err != nil {
		t.Errorf("Decode: %v allocs, err %v", n, err)
	}
}
