package connsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/govs/govs/inet"
)

// Wire format constants; doc.go has the field table.
const (
	Magic   uint32 = 0x47565359 // "GVSY"
	Version uint8  = 1

	HeaderLen = 34 // bytes before the first entry
	EntryLen  = 82 // bytes per entry
	MACLen    = sha256.Size
	// Overhead is the size of a message with no entries.
	Overhead = HeaderLen + MACLen

	// MaxEntries is the most entries one message can carry (the count is a
	// uint16); the transport's payload limit is usually far lower.
	MaxEntries = 1<<16 - 1

	// MinKeyLen is the shortest HMAC key accepted: 128 bits.
	MinKeyLen = 16
)

// Header offsets.
const (
	offMagic    = 0
	offVersion  = 4
	offSyncID   = 5
	offFlags    = 6
	offSender   = 8
	offSeq      = 16
	offSendTime = 24
	offCount    = 32
)

// Entry offsets, relative to the entry's start.
const (
	eoKind    = 0
	eoProto   = 1
	eoFwd     = 2
	eoState   = 3
	eoFlags   = 4
	eoTimeout = 6
	eoClient  = 10
	eoCPort   = 26
	eoVirtual = 28
	eoVPort   = 44
	eoDest    = 46
	eoDPort   = 62
	eoLocal   = 64
	eoLPort   = 80
)

// Errors returned by Decode (and Encode where they apply). Each names one
// rejection reason the receiver counts separately; see ReasonOf.
var (
	ErrBadLength   = errors.New("connsync: bad message length")
	ErrBadMagic    = errors.New("connsync: bad magic")
	ErrBadVersion  = errors.New("connsync: unsupported version")
	ErrWrongSyncID = errors.New("connsync: wrong sync id")
	ErrBadMAC      = errors.New("connsync: bad HMAC")
	// ErrMalformed: an authenticated message holds an entry this version does
	// not understand (unknown kind or forwarding method). Only a peer holding
	// the key can send one, so it means a bug or version skew, not an attack.
	ErrMalformed   = errors.New("connsync: malformed entry")
	ErrKeyTooShort = fmt.Errorf("connsync: HMAC key shorter than %d bytes", MinKeyLen)
	ErrTooMany     = fmt.Errorf("connsync: more than %d entries in one message", MaxEntries)
)

// Kind says what an entry describes.
type Kind uint8

const (
	// KindConn is a connection: its state, flags and remaining timeout. A
	// backup inserts it or, if it has it, updates it.
	KindConn Kind = 1
	// KindTemplate is a persistence template: Client is the masked client
	// network, Virtual:VPort the service (VPort 0 for port-0 services), Dest
	// the real server the clients are bound to, Timeout its remaining time.
	KindTemplate Kind = 2
	// KindDelete says the connection with this Proto, Client:CPort and
	// Virtual:VPort is gone (closed or expired on the master); a backup
	// removes it rather than waiting for its timeout.
	KindDelete Kind = 3
)

func (k Kind) valid() bool { return k >= KindConn && k <= KindDelete }

func (k Kind) String() string {
	switch k {
	case KindConn:
		return "conn"
	case KindTemplate:
		return "template"
	case KindDelete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Forwarding methods, numbered as lvs.Fwd.
const (
	FwdNAT     uint8 = 0
	FwdFullNAT uint8 = 1
	FwdDR      uint8 = 2
	FwdTun     uint8 = 3

	maxFwd = FwdTun
)

// MaxTimeout is the longest remaining timeout an entry can carry
// (about 49.7 days); SetRemaining clamps to it.
const MaxTimeout = time.Duration(1<<32-1) * time.Millisecond

// Entry is one connection update as carried on the wire. Every field is
// carried as is; the package interprets only Kind and Fwd (to reject what
// it does not know). Addresses are 16 bytes, IPv4 held IPv4-mapped.
type Entry struct {
	Kind  Kind
	Proto uint8  // IP protocol number (6 TCP, 17 UDP, ...)
	Fwd   uint8  // forwarding method: FwdNAT, FwdFullNAT, FwdDR, FwdTun
	State uint8  // conntrack.State numbering
	Flags uint16 // the connection's flags: the table's in bits 0..7 (conntrack.Conn.Flags), the data path's in 8..15
	// Timeout is the remaining idle time in milliseconds when the master
	// sent the entry; zero for KindDelete.
	Timeout uint32

	Client  inet.Addr // CIP (templates: the masked client network)
	Virtual inet.Addr // VIP
	Dest    inet.Addr // RIP
	Local   inet.Addr // LIP (full-NAT only; zero otherwise)
	CPort   uint16
	VPort   uint16
	DPort   uint16
	LPort   uint16
}

// Remaining returns Timeout as a duration.
func (e *Entry) Remaining() time.Duration {
	return time.Duration(e.Timeout) * time.Millisecond
}

// SetRemaining sets Timeout from d, rounded up to the millisecond so that
// a live connection never travels as zero, and clamped to [0, MaxTimeout].
func (e *Entry) SetRemaining(d time.Duration) {
	switch {
	case d <= 0:
		e.Timeout = 0
	case d >= MaxTimeout:
		e.Timeout = 1<<32 - 1
	default:
		e.Timeout = uint32((d + time.Millisecond - 1) / time.Millisecond)
	}
}

// Header is a message's header, less the constants (magic, version) and
// the entry count, which Encode derives from the entries.
type Header struct {
	SyncID uint8
	// Flags are reserved: senders send zero; receivers ignore bits they do
	// not know. They are carried (and authenticated) as is.
	Flags uint16
	// Sender identifies the sending process: random per process, so a
	// restarted master starts a fresh replay window.
	Sender uint64
	// Seq is the sender's message counter, one more for each message.
	Seq uint64
	// SendTime is when the message was sent, Unix nanoseconds.
	SendTime int64
}

// Sent returns SendTime as a time.Time.
func (h *Header) Sent() time.Time { return time.Unix(0, h.SendTime) }

// MessageLen returns the size of a message carrying n entries.
func MessageLen(n int) int { return Overhead + n*EntryLen }

// EntriesPerMessage returns how many entries fit in a message of at most
// payload bytes; 0 when not even one does.
func EntriesPerMessage(payload int) int {
	if payload < MessageLen(1) {
		return 0
	}
	return min((payload-Overhead)/EntryLen, MaxEntries)
}

// Codec encodes and decodes messages with one key, reusing its HMAC state
// so that neither direction allocates. It is not safe for concurrent use.
type Codec struct {
	mac hash.Hash
	sum [MACLen]byte
}

// NewCodec returns a Codec for key, which must be at least MinKeyLen bytes.
func NewCodec(key []byte) (*Codec, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKeyTooShort
	}
	return &Codec{mac: hmac.New(sha256.New, key)}, nil
}

// Encode appends a message holding hdr and entries to dst and returns the
// extended slice. It fails for more than MaxEntries entries or for an entry
// with an unknown Kind or Fwd (ErrMalformed), so that what it sends always
// decodes.
func Encode(dst []byte, hdr *Header, entries []Entry, key []byte) ([]byte, error) {
	c, err := NewCodec(key)
	if err != nil {
		return dst, err
	}
	return c.Encode(dst, hdr, entries)
}

// Decode checks and parses msg, appending its entries to out[:0]. Checks run
// cheapest first: length (at least a header and a MAC), magic, version,
// sync id, exact length for the entry count, HMAC (constant-time), then the
// entries. Each failure returns its own sentinel error; on error the entries
// are not to be used. Decode never panics, whatever msg holds.
func Decode(msg []byte, key []byte, syncID uint8, out []Entry) (Header, []Entry, error) {
	c, err := NewCodec(key)
	if err != nil {
		return Header{}, out[:0], err
	}
	return c.Decode(msg, syncID, out)
}

// Encode is the package-level Encode with c's key.
func (c *Codec) Encode(dst []byte, hdr *Header, entries []Entry) ([]byte, error) {
	if len(entries) > MaxEntries {
		return dst, ErrTooMany
	}
	for i := range entries {
		if err := checkEntry(&entries[i]); err != nil {
			return dst, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	start := len(dst)
	dst = growTo(dst, start+HeaderLen+len(entries)*EntryLen)
	msg := dst[start:]
	putHeader(msg, hdr, len(entries))
	for i := range entries {
		putEntry(msg[HeaderLen+i*EntryLen:], &entries[i])
	}
	return c.seal(dst, start), nil
}

// seal appends the HMAC of dst[start:] to dst.
func (c *Codec) seal(dst []byte, start int) []byte {
	c.mac.Reset()
	c.mac.Write(dst[start:])
	return c.mac.Sum(dst)
}

// Decode is the package-level Decode with c's key.
func (c *Codec) Decode(msg []byte, syncID uint8, out []Entry) (Header, []Entry, error) {
	out = out[:0]
	if len(msg) < Overhead {
		return Header{}, out, ErrBadLength
	}
	if binary.BigEndian.Uint32(msg[offMagic:]) != Magic {
		return Header{}, out, ErrBadMagic
	}
	if msg[offVersion] != Version {
		return Header{}, out, ErrBadVersion
	}
	if msg[offSyncID] != syncID {
		return Header{}, out, ErrWrongSyncID
	}
	n := int(binary.BigEndian.Uint16(msg[offCount:]))
	if len(msg) != MessageLen(n) {
		return Header{}, out, ErrBadLength
	}
	body := msg[:len(msg)-MACLen]
	c.mac.Reset()
	c.mac.Write(body)
	if !hmac.Equal(c.mac.Sum(c.sum[:0]), msg[len(body):]) {
		return Header{}, out, ErrBadMAC
	}
	hdr := Header{
		SyncID:   msg[offSyncID],
		Flags:    binary.BigEndian.Uint16(msg[offFlags:]),
		Sender:   binary.BigEndian.Uint64(msg[offSender:]),
		Seq:      binary.BigEndian.Uint64(msg[offSeq:]),
		SendTime: int64(binary.BigEndian.Uint64(msg[offSendTime:])),
	}
	out = growEntries(out, n)
	for i := range out {
		e := &out[i]
		getEntry(body[HeaderLen+i*EntryLen:HeaderLen+(i+1)*EntryLen], e)
		if err := checkEntry(e); err != nil {
			return hdr, out[:0], fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return hdr, out, nil
}

func checkEntry(e *Entry) error {
	if !e.Kind.valid() || e.Fwd > maxFwd {
		return ErrMalformed
	}
	return nil
}

func putHeader(b []byte, h *Header, count int) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint32(b[offMagic:], Magic)
	b[offVersion] = Version
	b[offSyncID] = h.SyncID
	binary.BigEndian.PutUint16(b[offFlags:], h.Flags)
	binary.BigEndian.PutUint64(b[offSender:], h.Sender)
	binary.BigEndian.PutUint64(b[offSeq:], h.Seq)
	binary.BigEndian.PutUint64(b[offSendTime:], uint64(h.SendTime))
	binary.BigEndian.PutUint16(b[offCount:], uint16(count))
}

func putEntry(b []byte, e *Entry) {
	b = b[:EntryLen]
	b[eoKind] = byte(e.Kind)
	b[eoProto] = e.Proto
	b[eoFwd] = e.Fwd
	b[eoState] = e.State
	binary.BigEndian.PutUint16(b[eoFlags:], e.Flags)
	binary.BigEndian.PutUint32(b[eoTimeout:], e.Timeout)
	copy(b[eoClient:eoClient+16], e.Client[:])
	binary.BigEndian.PutUint16(b[eoCPort:], e.CPort)
	copy(b[eoVirtual:eoVirtual+16], e.Virtual[:])
	binary.BigEndian.PutUint16(b[eoVPort:], e.VPort)
	copy(b[eoDest:eoDest+16], e.Dest[:])
	binary.BigEndian.PutUint16(b[eoDPort:], e.DPort)
	copy(b[eoLocal:eoLocal+16], e.Local[:])
	binary.BigEndian.PutUint16(b[eoLPort:], e.LPort)
}

func getEntry(b []byte, e *Entry) {
	b = b[:EntryLen]
	e.Kind = Kind(b[eoKind])
	e.Proto = b[eoProto]
	e.Fwd = b[eoFwd]
	e.State = b[eoState]
	e.Flags = binary.BigEndian.Uint16(b[eoFlags:])
	e.Timeout = binary.BigEndian.Uint32(b[eoTimeout:])
	e.Client = inet.Addr(b[eoClient : eoClient+16])
	e.CPort = binary.BigEndian.Uint16(b[eoCPort:])
	e.Virtual = inet.Addr(b[eoVirtual : eoVirtual+16])
	e.VPort = binary.BigEndian.Uint16(b[eoVPort:])
	e.Dest = inet.Addr(b[eoDest : eoDest+16])
	e.DPort = binary.BigEndian.Uint16(b[eoDPort:])
	e.Local = inet.Addr(b[eoLocal : eoLocal+16])
	e.LPort = binary.BigEndian.Uint16(b[eoLPort:])
}

// growTo returns b extended to length n with room for the MAC after it,
// reallocating only when needed.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n+MACLen {
		return b[:n]
	}
	nb := make([]byte, n, n+MACLen)
	copy(nb, b)
	return nb
}

func growEntries(es []Entry, n int) []Entry {
	if cap(es) >= n {
		return es[:n]
	}
	return make([]Entry, n)
}
