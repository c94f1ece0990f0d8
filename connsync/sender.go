package connsync

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Transport defaults.
const (
	DefaultMaxPayload    = 1400 // UDP payload bytes per message: fits a 1500-byte MTU with room for tunnels
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultQueueLen      = 256 // full messages waiting for the writer
	maxUDPPayload        = 65507
)

// ErrClosed is returned by Send and Flush after Close.
var ErrClosed = errors.New("connsync: closed")

// processID and processSeq identify this process's messages: a fresh
// random id per process, so a restarted master starts a new replay window
// on every backup, and one counter for every Sender using it, so a Sender
// re-created on reload continues the sequence instead of being taken for a
// replay.
var (
	processID  = randomID()
	processSeq atomic.Uint64
)

func randomID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("connsync: crypto/rand: %v", err)) // crypto/rand does not fail on Linux
		}
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// ProcessID returns the sender id of this process's messages.
func ProcessID() uint64 { return processID }

// SenderConfig configures a Sender. Exactly one of Group and Peers is set.
type SenderConfig struct {
	// Interface is the sync interface: required for multicast (the
	// messages go out on it); for unicast, when set, the socket is bound
	// to it.
	Interface string
	Group     netip.Addr   // multicast group (IPv4 or IPv6)
	Peers     []netip.Addr // unicast destinations
	Port      uint16       // destination port; required
	SyncID    uint8
	Key       []byte // at least MinKeyLen bytes; see LoadKey

	MaxPayload    int           // bytes of UDP payload per message; 0: DefaultMaxPayload
	FlushInterval time.Duration // 0: DefaultFlushInterval
	QueueLen      int           // 0: DefaultQueueLen
	// SenderID overrides ProcessID (tests running several senders, or a
	// sender and a receiver, in one process); it gets its own sequence.
	SenderID uint64
}

// SenderStats are a Sender's counters.
type SenderStats struct {
	Messages   uint64 // messages built and sent
	Datagrams  uint64 // datagrams written (one per message and destination)
	Entries    uint64 // entries in sent messages
	Bytes      uint64 // bytes written
	SendErrors uint64 // failed datagram writes
	Dropped    uint64 // entries dropped because the writer was behind
	Invalid    uint64 // entries refused by Send (unknown Kind or Fwd)
}

// Sender batches entries into messages and sends them to the multicast
// group or the unicast peers: a message goes out when it is full, and what
// is pending goes out every FlushInterval. Send never blocks on the
// network: full messages queue for a writer goroutine, and when that queue
// is full the message is dropped and counted (a backup recovers from a lost
// update with the next update of the same connection). Send is safe for
// concurrent use.
type Sender struct {
	conn   *net.UDPConn
	dsts   []netip.AddrPort
	syncID uint8
	id     uint64
	seq    *atomic.Uint64
	perMsg int
	codec  *Codec // the writer goroutine's

	mu      sync.Mutex
	pending []byte // header room, then n encoded entries
	n       int
	closed  bool

	full     chan []byte        // messages with entries encoded, waiting for header and MAC
	free     chan []byte        // spare message buffers
	flushReq chan chan struct{} // Flush's requests to the writer
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
	closeErr error
	batch    [][]byte // the writer's scratch list

	messages, datagrams, entries, bytes atomic.Uint64
	sendErrors, dropped, invalid        atomic.Uint64
}

// NewSender opens the socket and starts the writer goroutine.
func NewSender(cfg SenderConfig) (*Sender, error) {
	codec, err := NewCodec(cfg.Key)
	if err != nil {
		return nil, err
	}
	cfg.Group = cfg.Group.Unmap()
	var dsts []netip.AddrPort
	switch {
	case cfg.Group.IsValid() && len(cfg.Peers) > 0:
		return nil, errors.New("sync sender: both a multicast group and unicast peers")
	case cfg.Group.IsValid():
		if !cfg.Group.IsMulticast() {
			return nil, fmt.Errorf("sync sender: group %s is not a multicast address", cfg.Group)
		}
		if cfg.Interface == "" {
			return nil, errors.New("sync sender: multicast needs an interface")
		}
		dsts = []netip.AddrPort{netip.AddrPortFrom(cfg.Group, cfg.Port)}
	case len(cfg.Peers) > 0:
		for _, p := range cfg.Peers {
			dsts = append(dsts, netip.AddrPortFrom(p.Unmap(), cfg.Port))
		}
	default:
		return nil, errors.New("sync sender: neither a multicast group nor unicast peers")
	}
	if cfg.Port == 0 {
		return nil, errors.New("sync sender: no port")
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	perMsg := EntriesPerMessage(min(cfg.MaxPayload, maxUDPPayload))
	if perMsg == 0 || cfg.MaxPayload > maxUDPPayload {
		return nil, fmt.Errorf("sync sender: payload size %d outside [%d, %d]", cfg.MaxPayload, MessageLen(1), maxUDPPayload)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	s := &Sender{
		dsts:     dsts,
		syncID:   cfg.SyncID,
		id:       processID,
		seq:      &processSeq,
		perMsg:   perMsg,
		codec:    codec,
		full:     make(chan []byte, cfg.QueueLen),
		free:     make(chan []byte, cfg.QueueLen+2),
		flushReq: make(chan chan struct{}),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.SenderID != 0 {
		s.id, s.seq = cfg.SenderID, new(atomic.Uint64)
	}
	s.pending = s.buffer()
	if s.conn, err = openSenderSocket(&cfg); err != nil {
		return nil, err
	}
	go s.writer(cfg.FlushInterval)
	return s, nil
}

// ID returns the sender id the messages carry.
func (s *Sender) ID() uint64 { return s.id }

// EntriesPerMessage returns how many entries one message holds.
func (s *Sender) EntriesPerMessage() int { return s.perMsg }

// Send queues entries for sending; they are copied. Entries with an
// unknown Kind or Fwd are skipped, counted as Invalid, and reported with
// ErrMalformed once the rest are queued.
func (s *Sender) Send(entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var err error
	for i := range entries {
		e := &entries[i]
		if cerr := checkEntry(e); cerr != nil {
			s.invalid.Add(1)
			if err == nil {
				err = fmt.Errorf("entry %d: %w", i, cerr)
			}
			continue
		}
		putEntry(s.pending[HeaderLen+s.n*EntryLen:], e)
		s.n++
		if s.n == s.perMsg {
			s.queuePending()
		}
	}
	return err
}

// queuePending hands the pending message to the writer, or drops it when
// the writer is that far behind. s.mu is held.
func (s *Sender) queuePending() {
	select {
	case s.full <- s.pending[:HeaderLen+s.n*EntryLen]:
		s.pending = s.buffer()
	default:
		s.dropped.Add(uint64(s.n))
	}
	s.n = 0
}

// buffer returns a spare message buffer, full length.
func (s *Sender) buffer() []byte {
	select {
	case b := <-s.free:
		return b[:cap(b)]
	default:
		n := MessageLen(s.perMsg)
		return make([]byte, n)
	}
}

// Flush sends what is pending now, and returns once it is written.
func (s *Sender) Flush() error {
	ack := make(chan struct{})
	select {
	case s.flushReq <- ack:
		<-ack
		return nil
	case <-s.done:
		return ErrClosed
	}
}

// Close sends what is pending, stops the writer and closes the socket.
func (s *Sender) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
		<-s.done
		s.closeErr = s.conn.Close()
	})
	return s.closeErr
}

func (s *Sender) writer(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case b := <-s.full:
			s.transmit(b)
		case <-t.C:
			s.flush()
		case ack := <-s.flushReq:
			s.flush()
			close(ack)
		case <-s.quit:
			s.flush()
			return
		}
	}
}

// flush sends the queued full messages, then the pending one, in the order
// their entries were given to Send: the queue is emptied under the lock
// that Send holds while it queues.
func (s *Sender) flush() {
	s.mu.Lock()
	s.batch = s.batch[:0]
drain:
	for {
		select {
		case b := <-s.full:
			s.batch = append(s.batch, b)
		default:
			break drain
		}
	}
	if s.n > 0 {
		s.batch = append(s.batch, s.pending[:HeaderLen+s.n*EntryLen])
		s.pending = s.buffer()
		s.n = 0
	}
	s.mu.Unlock()
	for i, b := range s.batch {
		s.transmit(b)
		s.batch[i] = nil
	}
}

// transmit fills in the header, seals the message and writes it to every
// destination, then recycles the buffer.
func (s *Sender) transmit(b []byte) {
	n := (len(b) - HeaderLen) / EntryLen
	hdr := Header{SyncID: s.syncID, Sender: s.id, Seq: s.seq.Add(1), SendTime: time.Now().UnixNano()}
	putHeader(b, &hdr, n)
	msg := s.codec.seal(b, 0)
	for _, d := range s.dsts {
		if _, err := s.conn.WriteToUDPAddrPort(msg, d); err != nil {
			s.sendErrors.Add(1)
			continue
		}
		s.datagrams.Add(1)
		s.bytes.Add(uint64(len(msg)))
	}
	s.messages.Add(1)
	s.entries.Add(uint64(n))
	select {
	case s.free <- msg[:0]:
	default:
	}
}

// Stats returns the counters; each is read atomically.
func (s *Sender) Stats() SenderStats {
	return SenderStats{
		Messages:   s.messages.Load(),
		Datagrams:  s.datagrams.Load(),
		Entries:    s.entries.Load(),
		Bytes:      s.bytes.Load(),
		SendErrors: s.sendErrors.Load(),
		Dropped:    s.dropped.Load(),
		Invalid:    s.invalid.Load(),
	}
}
