// Package connsync synchronises connections between directors, as IPVS's
// sync daemon does, so that a backup director can take over a master's
// established connections without breaking them ("no single point of
// failure").
//
// A master (role master or both) reports connection updates with a Sender:
// new connections, state changes, persistence templates and deletions. The
// Sender batches them into messages and sends them over UDP, to a multicast
// group on the sync interface (TTL 1, loopback off) or to unicast peers. A
// backup (role backup or both) runs a Receiver, which checks every message
// (format, sync id, HMAC, replay) and hands the accepted entries to a
// callback. The package knows nothing of the connection table: Entry is the
// type the daemon converts its connections to and from.
//
// # Wire format
//
// One message per UDP datagram; all integers big-endian. A message is a
// header, Count entries and an HMAC-SHA256 trailer: 34 + 82*Count + 32
// bytes, 16 entries in the default 1400-byte payload.
//
// Header (HeaderLen = 34 bytes):
//
//	offset size field
//	0      4    magic       0x47565359 ("GVSY")
//	4      1    version     1
//	5      1    sync id     a receiver drops other sync ids (sync_id in the YAML)
//	6      2    flags       none defined; sent as 0, ignored, authenticated
//	8      8    sender id   random per process (ProcessID)
//	16     8    sequence    +1 per message from that sender
//	24     8    send time   Unix nanoseconds
//	32     2    count       number of entries
//
// Entry (EntryLen = 82 bytes), fixed size; addresses are 16 bytes, IPv4
// carried IPv4-mapped (::ffff:a.b.c.d):
//
//	offset size field
//	0      1    kind        1 connection, 2 persistence template, 3 delete
//	1      1    protocol    IP protocol number
//	2      1    forwarding  0 NAT, 1 full-NAT, 2 DR, 3 TUN (lvs.Fwd)
//	3      1    state       conntrack.State numbering, carried as is
//	4      2    flags       connection flags (conntrack's and the data path's), carried as is
//	6      4    timeout     remaining idle time, milliseconds
//	10     16   client      address (template: masked client network)
//	26     2    client      port
//	28     16   virtual     address
//	44     2    virtual     port (template: 0 for port-0 services)
//	46     16   destination address (real server)
//	62     2    destination port
//	64     16   local       address (full-NAT source towards the real server; else zero)
//	80     2    local       port
//
// Trailer: 32 bytes of HMAC-SHA256, keyed with the shared key, over every
// byte before it.
//
// A fixed-size entry keeps decoding to bounds arithmetic: the length must
// equal exactly what the count implies, so no field can point outside the
// datagram. Decode checks, cheapest first: length, magic, version, sync id,
// exact length, HMAC (constant-time), then each entry's kind and forwarding
// method; each failure has its own sentinel error (ErrBadLength, ErrBadMagic,
// ErrBadVersion, ErrWrongSyncID, ErrBadMAC, ErrMalformed), counted per
// Reason by the Receiver. A new version changes the version byte;
// receivers reject versions they do not know, so directors are upgraded
// together (or the backup first, once it understands both).
//
// # Security model
//
// All directors of a sync id share one secret key, read raw from key_file
// (LoadKey: at least 16 bytes, the whole file, not readable by others; for
// example 32 bytes from /dev/urandom). The HMAC authenticates every message:
// without the key nobody can inject, alter or truncate entries, which
// would otherwise let anyone on the sync network steer clients to chosen
// servers on the next failover. The replay filter (Replay), applied only to
// authenticated messages, rejects repeated messages and messages more than
// ReplayWindow behind a sender's newest; sender ids are random per
// process, so a restarted master is accepted at once while its old
// messages stay rejected as long as the backup remembers the old id (the
// DefaultReplaySenders most recent). A backup that restarts forgets
// everything: ReceiverConfig.MaxAge, with clocks kept in step, closes that
// gap. There is no confidentiality: client addresses and ports travel in
// clear, so the sync network should be a private one. The receiver drops
// messages carrying its own process's sender id.
//
// # How a backup uses the entries
//
// For KindConn the backup installs the connection in its own table, or
// updates it if present: the service is found by protocol and
// virtual address:port, the real server by destination address:port, and
// the connection gets the entry's state, flags, forwarding method and
// full-NAT local address:port; its expiry is now plus the remaining timeout.
// Nothing else is needed to forward the connection's next packet, so after
// failover (the VIPs moving to the backup, by VRRP or BGP) established
// connections continue: their packets match the installed entry instead of
// being scheduled afresh, or, for TCP, dropped as non-SYN packets of unknown
// connections. For KindTemplate it installs the persistence template, so a
// persistent client keeps its real server. For KindDelete it removes the
// connection. Entries whose service or real server the backup does not
// have are counted and skipped. The master should send an entry when a
// connection is created and when its state changes, and again for
// long-lived connections before the backup's copy would expire (as IPVS's
// sync_refresh_period), so that the remaining timeout stays current; a lost
// datagram is then repaired by the next update of the same connection.
package connsync
