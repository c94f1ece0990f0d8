package dataplane

import "github.com/govs/govs/conntrack"

// connPath is what the data path keeps per connection beside the table's
// conntrack.Conn: how its packets are forwarded, which the table never
// reads. The worker holds one per slot of its table (Table.Slot), so a
// connection's path is found without a lookup and lives exactly as long as
// the slot's connection; every Insert writes the whole entry, since a slot
// is reused.
type connPath struct {
	// The SYN proxy's sequence translation (synproxy.go): seqDelta is the
	// real server's initial sequence number minus the cookie the director
	// answered the client with; clientWin the window of the client's
	// handshake ACK, until the real server's SYN-ACK; winShift the real
	// server's window scale less the one the director announced.
	seqDelta  uint32
	clientWin uint16
	winShift  int8

	// The PROXY header and TOA (proxyproto.go): ppLen is the header's
	// length (0: none), the client's bytes move up by it toward the
	// real server; ppFlags the ppHeaderPending, ... bits; clientSeq the
	// client's ISN+1, where the header goes.
	ppLen     uint8
	ppFlags   uint8
	clientSeq uint32

	// flags are the data path's: flagNoL2, flagFastIn, flagFastOut, the
	// fast-path count, flagSynProxy, flagSynPending. They hold bits 8..15
	// (conntrack.Conn.Flags has bits 0..7), so that the two together are
	// the 16-bit flags of the sync wire and of the mirror records.
	flags uint16
	// fastGen is the generation of the XDP flow entries written for the
	// connection (fastpath.go).
	fastGen uint16

	// The return path learned from the request: the interface it came in
	// on (index into Director.ifaces) and the L2 neighbours, so that
	// replies need no route or neighbour lookup.
	inPort              uint16
	clientMAC, localMAC [6]byte

	// mirSlot is 1 + the index of the connection's record in the
	// worker's mirror buffer, 0 for none (mirror.go: mirrorConnSlot).
	mirSlot uint16
	// mirExpires is the expiry its latest record holds, in whole seconds
	// of nanotime, rounded down (mirror.go: refreshMirror).
	mirExpires uint32
}

// path returns the data path's part of c, a connection of w's table.
func (w *worker) path(c *conntrack.Conn) *connPath { return &w.paths[w.ct.Slot(c)] }

// setTable makes ct the worker's connection table, with a path per slot.
func (w *worker) setTable(ct *conntrack.Table) {
	w.ct = ct
	w.paths = make([]connPath, ct.Cap())
}

// insert adds conn to the table with its data path part cp; nil when the
// table refuses it (conntrack.ErrFull, conntrack.ErrExists).
func (w *worker) insert(conn *conntrack.Conn, cp connPath, now int64) (*conntrack.Conn, error) {
	c, err := w.ct.Insert(conn, now)
	if err != nil {
		return nil, err
	}
	*w.path(c) = cp
	return c, nil
}

// wireFlags are c's flags as the sync wire and the mirror records carry
// them: the table's in bits 0..7, the data path's in 8..15.
func (w *worker) wireFlags(c *conntrack.Conn) uint16 {
	return uint16(c.Flags) | w.path(c).flags
}
