package dataplane

import (
	"sync/atomic"
)

// DropReason is why a worker dropped a frame.
type DropReason int

// Drop reasons; each has a counter per worker.
const (
	DropMalformed     DropReason = iota // the parser refused it
	DropFragment                        // a later fragment whose first was dropped or never forwarded here, or not TCP/UDP (frag.go)
	DropNoService                       // no service and no connection matches
	DropNoConn                          // a TCP packet other than SYN with no connection entry
	DropNoDest                          // the scheduler found no available real server
	DropTableFull                       // the connection table is full
	DropNeighMiss                       // the real server's next hop is not resolved yet
	DropNoTxQueue                       // the egress interface has no socket for this queue
	DropTxFull                          // the TX ring was full
	DropUnsupported                     // a forwarding mode or packet kind not handled
	DropTTL                             // TTL or hop limit exhausted
	DropTooBig                          // too big for the egress path once encapsulated
	DropNoSource                        // no local address to use as tunnel source
	DropPortExhausted                   // full-NAT local ports exhausted
	DropHandoffFull                     // the owner worker's hand-off ring was full
	DropSyncNoL2                        // a reply of a synced connection before its first request
	DropNoFrame                         // no free frame for one the worker makes (a PROXY header segment)
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropMalformed:     "malformed",
	DropFragment:      "fragment",
	DropNoService:     "no_service",
	DropNoConn:        "no_conn",
	DropNoDest:        "no_dest",
	DropTableFull:     "table_full",
	DropNeighMiss:     "neigh_miss",
	DropNoTxQueue:     "no_tx_queue",
	DropTxFull:        "tx_full",
	DropUnsupported:   "unsupported",
	DropTTL:           "ttl_exceeded",
	DropTooBig:        "too_big",
	DropNoSource:      "no_source_addr",
	DropPortExhausted: "lport_exhausted",
	DropHandoffFull:   "handoff_full",
	DropSyncNoL2:      "sync_no_l2",
	DropNoFrame:       "no_frame",
}

func (r DropReason) String() string { return dropReasonNames[r] }

// DropReasons lists every reason, for metrics.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

// workerCounters are written by one worker and read atomically by anyone.
// Each worker has its own, so writers never share a cache line.
type workerCounters struct {
	RxPackets     atomic.Uint64
	RxBytes       atomic.Uint64
	TxPackets     atomic.Uint64
	TxBytes       atomic.Uint64
	TxErrors      atomic.Uint64
	NewConns      atomic.Uint64
	Inbound       atomic.Uint64
	Outbound      atomic.Uint64
	ICMP          atomic.Uint64 // related ICMP errors forwarded
	ICMPSent      atomic.Uint64 // ICMP errors originated (path MTU)
	HandedOff     atomic.Uint64 // frames passed to the connection's owner worker
	SyncDropped   atomic.Uint64 // sync entries lost to a full queue
	SyncUnknown   atomic.Uint64 // synced entries for an unknown service or server
	SyncInstalled atomic.Uint64 // connections installed from a master
	FastInstalled atomic.Uint64 // XDP flow entries written (forwarding or steer-only)
	FastFailed    atomic.Uint64 // flow entries that could not be written (map full)
	// SYN proxy (synproxy.go): handshake ACKs whose cookie was valid,
	// handshake ACKs to a proxied service whose cookie was not (no
	// connection either), and client segments dropped while the real
	// server's handshake was pending; and resets sent to a real server
	// that answered the proxy's SYN with an old connection's ACK.
	SynCookiesAccepted atomic.Uint64
	SynCookiesRejected atomic.Uint64
	SynProxyDropped    atomic.Uint64
	SynProxyResets     atomic.Uint64
	// PROXY headers sent to real servers (resent ones too) and client
	// segments given a TOA option (proxyproto.go).
	ProxyHeaders atomic.Uint64
	TOAInserted  atomic.Uint64
	// CsumFinished counts TCP/UDP checksums the workers completed: the
	// sender left them to a checksum offload (packet.FinishL4Checksum).
	CsumFinished atomic.Uint64
	// Fragments (frag.go): later fragments forwarded as their first was,
	// held until their first came, dropped after waiting fragHoldTimeout,
	// and fragments that found no room in the fragment table or hold.
	FragForwarded atomic.Uint64
	FragHeld      atomic.Uint64
	FragTimedOut  atomic.Uint64
	FragTableFull atomic.Uint64
	// MirrorDropped counts connection-mirror records lost because the
	// pump had not taken the worker's earlier ones yet (mirror.go).
	MirrorDropped atomic.Uint64
	Drops         [numDropReasons]atomic.Uint64
	_             [64]byte // keep the next worker's counters off this cache line
}

// Counters is a snapshot of the data path's counters summed over workers.
type Counters struct {
	RxPackets, RxBytes, TxPackets, TxBytes, TxErrors     uint64
	NewConns, Inbound, Outbound, ICMP, ICMPSent          uint64
	HandedOff, SyncDropped, SyncUnknown, SyncInstalled   uint64
	FastInstalled, FastFailed                            uint64
	SynCookiesAccepted, SynCookiesRejected               uint64
	SynProxyDropped, SynProxyResets                      uint64
	ProxyHeaders, TOAInserted                            uint64
	CsumFinished                                         uint64
	FragForwarded, FragHeld, FragTimedOut, FragTableFull uint64
	// Connection mirror (mirror.go): records lost to a full queue, and
	// records the store refused (full or failing).
	MirrorDropped, MirrorFailed uint64
	Drops                       [numDropReasons]uint64
	Conns                       int
}
