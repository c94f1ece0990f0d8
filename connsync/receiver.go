package connsync

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors for the receiver's own checks, counted like Decode's.
var (
	ErrTooOld      = errors.New("connsync: send time outside MaxAge")
	ErrOwnMessage  = errors.New("connsync: message from this process")
	ErrUnknownPeer = errors.New("connsync: source not in AllowFrom")
)

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// Interface is the sync interface: required for multicast (the group
	// is joined on it); the socket is bound to it whenever it is set.
	Interface string
	Group     netip.Addr // multicast group; invalid (zero) for unicast
	Listen    netip.Addr // unicast: local address to bind; zero: all
	Port      uint16     // 0: an ephemeral port (tests; see Addr)
	SyncID    uint8
	Key       []byte // at least MinKeyLen bytes; see LoadKey

	// Deliver is called, on the receiver's goroutine, with each accepted
	// message's source and entries. entries is reused for the next
	// message: copy what must outlive the call. Required.
	Deliver func(from netip.Addr, entries []Entry)

	// AllowFrom, when set, is the only sources accepted (unicast peers).
	AllowFrom []netip.Addr
	// MaxAge, when positive, rejects messages whose send time differs from
	// the local clock by more than MaxAge: it stops replays of captured
	// messages after a receiver restart (which empties the replay filter)
	// but needs the directors' clocks in step (NTP). Zero: not checked.
	MaxAge time.Duration
	// MaxSenders bounds the replay filter (0: DefaultReplaySenders).
	MaxSenders int
	// AcceptOwn delivers messages carrying this process's sender id, which
	// are otherwise dropped (a director must not install its own updates).
	// For tests only.
	AcceptOwn bool
}

// ReceiverStats are a Receiver's counters.
type ReceiverStats struct {
	Datagrams uint64 // datagrams read
	Messages  uint64 // messages delivered
	Entries   uint64 // entries delivered
	Rejected  [NumReasons]uint64
}

// RejectedTotal sums Rejected.
func (s *ReceiverStats) RejectedTotal() uint64 {
	var n uint64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// Receiver reads sync messages, checks them (Decode, then own sender id,
// MaxAge, replay filter) and delivers the accepted ones' entries.
type Receiver struct {
	conn    *net.UDPConn
	cfg     ReceiverConfig
	codec   *Codec
	replay  *Replay
	entries []Entry
	closing atomic.Bool
	done    chan struct{}
	once    sync.Once
	err     error

	datagrams, messages, delivered atomic.Uint64
	rejected                       [NumReasons]atomic.Uint64
}

// NewReceiver opens the socket (joining the group for multicast) and
// starts the receiving goroutine.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	codec, err := NewCodec(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Deliver == nil {
		return nil, errors.New("sync receiver: no Deliver callback")
	}
	cfg.Group, cfg.Listen = cfg.Group.Unmap(), cfg.Listen.Unmap()
	if cfg.Group.IsValid() {
		if !cfg.Group.IsMulticast() {
			return nil, fmt.Errorf("sync receiver: group %s is not a multicast address", cfg.Group)
		}
		if cfg.Interface == "" {
			return nil, errors.New("sync receiver: multicast needs an interface")
		}
	}
	allow := make([]netip.Addr, len(cfg.AllowFrom))
	for i, a := range cfg.AllowFrom {
		allow[i] = a.Unmap()
	}
	cfg.AllowFrom = allow
	r := &Receiver{
		cfg:     cfg,
		codec:   codec,
		replay:  NewReplay(cfg.MaxSenders),
		entries: make([]Entry, 0, EntriesPerMessage(DefaultMaxPayload)),
		done:    make(chan struct{}),
	}
	if r.conn, err = openReceiverSocket(&cfg); err != nil {
		return nil, err
	}
	go r.run()
	return r, nil
}

// Addr returns the local address the receiver is bound to.
func (r *Receiver) Addr() netip.AddrPort {
	return r.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close stops the receiver; it returns after the last Deliver call ends.
func (r *Receiver) Close() error {
	r.once.Do(func() {
		r.closing.Store(true)
		r.err = r.conn.Close()
		<-r.done
	})
	return r.err
}

func (r *Receiver) run() {
	defer close(r.done)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if r.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (ENOMEM, ...): count, and do not spin.
			r.rejected[ReasonOther].Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r.datagrams.Add(1)
		if err := r.handle(buf[:n], from.Addr().Unmap(), time.Now()); err != nil {
			r.rejected[ReasonOf(err)].Add(1)
		}
	}
}

func (r *Receiver) handle(msg []byte, from netip.Addr, now time.Time) error {
	if len(r.cfg.AllowFrom) > 0 && !slices.Contains(r.cfg.AllowFrom, from) {
		return ErrUnknownPeer
	}
	hdr, entries, err := r.codec.Decode(msg, r.cfg.SyncID, r.entries)
	r.entries = entries[:0]
	if err != nil {
		return err
	}
	if hdr.Sender == processID && !r.cfg.AcceptOwn {
		return ErrOwnMessage
	}
	if r.cfg.MaxAge > 0 {
		if age := now.Sub(hdr.Sent()); age > r.cfg.MaxAge || age < -r.cfg.MaxAge {
			return ErrTooOld
		}
	}
	if err := r.replay.Check(hdr.Sender, hdr.Seq); err != nil {
		return err
	}
	r.cfg.Deliver(from, entries)
	r.delivered.Add(uint64(len(entries)))
	r.messages.Add(1) // last: a reader that sees the message count sees its entries
	return nil
}

// Stats returns the counters; each is read atomically.
func (r *Receiver) Stats() ReceiverStats {
	st := ReceiverStats{
		Datagrams: r.datagrams.Load(),
		Messages:  r.messages.Load(),
		Entries:   r.delivered.Load(),
	}
	for i := range r.rejected {
		st.Rejected[i] = r.rejected[i].Load()
	}
	return st
}
