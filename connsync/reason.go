package connsync

import (
	"errors"
	"strconv"
)

// Reason is why a receiver rejected a datagram, for per-reason counters.
type Reason uint8

const (
	ReasonBadLength   Reason = iota // ErrBadLength (also datagrams truncated by the read buffer)
	ReasonBadMagic                  // ErrBadMagic
	ReasonBadVersion                // ErrBadVersion
	ReasonWrongSyncID               // ErrWrongSyncID
	ReasonBadMAC                    // ErrBadMAC
	ReasonMalformed                 // ErrMalformed
	ReasonDuplicate                 // ErrDuplicate
	ReasonStale                     // ErrStale
	ReasonTooOld                    // ErrTooOld (ReceiverConfig.MaxAge)
	ReasonOwn                       // ErrOwnMessage: our own process sent it
	ReasonPeer                      // ErrUnknownPeer (ReceiverConfig.AllowFrom)
	ReasonOther                     // anything else

	NumReasons = int(ReasonOther) + 1
)

var reasonNames = [NumReasons]string{
	"bad_length", "bad_magic", "bad_version", "wrong_sync_id", "bad_mac",
	"malformed", "duplicate", "stale", "too_old", "own", "unknown_peer", "other",
}

// String returns a name fit for a metric label.
func (r Reason) String() string {
	if int(r) < NumReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

var reasonErrs = [...]error{
	ReasonBadLength:   ErrBadLength,
	ReasonBadMagic:    ErrBadMagic,
	ReasonBadVersion:  ErrBadVersion,
	ReasonWrongSyncID: ErrWrongSyncID,
	ReasonBadMAC:      ErrBadMAC,
	ReasonMalformed:   ErrMalformed,
	ReasonDuplicate:   ErrDuplicate,
	ReasonStale:       ErrStale,
	ReasonTooOld:      ErrTooOld,
	ReasonOwn:         ErrOwnMessage,
	ReasonPeer:        ErrUnknownPeer,
}

// ReasonOf maps an error from Decode, Replay.Check or the receiver's own
// checks to its Reason; ReasonOther for anything else.
func ReasonOf(err error) Reason {
	for r, e := range reasonErrs {
		if errors.Is(err, e) {
			return Reason(r)
		}
	}
	return ReasonOther
}
