package connsync

import "errors"

// ReplayWindow is how many sequence numbers behind a sender's newest the
// replay filter still accepts (once each). Sync traffic is one LAN hop, so
// reordering is rare and shallow; the window absorbs it and the loss of a
// burst without rejecting late but genuine messages.
const ReplayWindow = 256

// DefaultReplaySenders is the number of sender ids a Replay remembers when
// NewReplay is given no limit.
const DefaultReplaySenders = 64

// Errors returned by Replay.Check.
var (
	ErrDuplicate = errors.New("connsync: duplicate message")
	ErrStale     = errors.New("connsync: message older than the replay window")
)

// Replay rejects repeated and too-old messages, per sender id, with a
// sliding window of ReplayWindow sequence numbers (as IPsec's anti-replay
// window, RFC 4303 3.4.3). A sender id it has not seen starts a fresh
// window at whatever sequence number arrives first: that is how a restarted
// master, which draws a new random id, is accepted at once.
//
// Check it only after the HMAC has been verified, so that only holders of
// the key can add senders or move windows. It remembers a bounded number of
// senders and forgets the least recently heard one first; as new ids come
// only from restarts of genuine senders, an id is forgotten only after many
// restarts, long after its messages are worth replaying.
//
// A Replay is not safe for concurrent use.
type Replay struct {
	senders    map[uint64]*replayState
	maxSenders int
	tick       uint64 // advances on every accepted message, for LRU eviction
}

type replayState struct {
	top      uint64                    // highest sequence number accepted
	seen     [ReplayWindow / 64]uint64 // ring: bit seq%ReplayWindow set when seq was accepted
	lastUsed uint64
}

// NewReplay returns a filter remembering up to maxSenders sender ids
// (DefaultReplaySenders when maxSenders <= 0).
func NewReplay(maxSenders int) *Replay {
	if maxSenders <= 0 {
		maxSenders = DefaultReplaySenders
	}
	return &Replay{senders: make(map[uint64]*replayState), maxSenders: maxSenders}
}

// Check accepts (and records) sequence number seq from sender, or returns
// ErrDuplicate when it was accepted before, ErrStale when it is
// ReplayWindow or more behind the sender's newest.
func (r *Replay) Check(sender, seq uint64) error {
	r.tick++
	st := r.senders[sender]
	if st == nil {
		if len(r.senders) >= r.maxSenders {
			r.evictOldest()
		}
		st = &replayState{top: seq}
		st.mark(seq)
		st.lastUsed = r.tick
		r.senders[sender] = st
		return nil
	}
	switch {
	case seq > st.top:
		st.advance(seq)
	case st.top-seq >= ReplayWindow:
		return ErrStale
	case st.has(seq):
		return ErrDuplicate
	}
	st.mark(seq)
	st.lastUsed = r.tick
	return nil
}

// Senders returns how many sender ids are remembered.
func (r *Replay) Senders() int { return len(r.senders) }

func (r *Replay) evictOldest() {
	var oldest uint64
	first := true
	var oldestUse uint64
	for id, st := range r.senders {
		if first || st.lastUsed < oldestUse {
			oldest, oldestUse, first = id, st.lastUsed, false
		}
	}
	delete(r.senders, oldest)
}

func (st *replayState) has(seq uint64) bool {
	i := seq % ReplayWindow
	return st.seen[i/64]&(1<<(i%64)) != 0
}

func (st *replayState) mark(seq uint64) {
	i := seq % ReplayWindow
	st.seen[i/64] |= 1 << (i % 64)
}

// advance moves the window's top to seq, forgetting the ring slots that
// now stand for the sequence numbers between the old top and seq.
func (st *replayState) advance(seq uint64) {
	if seq-st.top >= ReplayWindow {
		st.seen = [ReplayWindow / 64]uint64{}
	} else {
		for s := st.top + 1; s != seq+1; s++ {
			i := s % ReplayWindow
			st.seen[i/64] &^= 1 << (i % 64)
		}
	}
	st.top = seq
}
