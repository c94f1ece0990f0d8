// Package dataplane is the director's packet path: it attaches the steering
// XDP program to the configured interfaces, opens one AF_XDP socket per RX
// queue of each interface, and runs one worker goroutine per RX queue index.
//
// A worker owns one UMEM shared by its sockets (queue i of every interface),
// so a frame received on the client-side interface is rewritten in place and
// transmitted on the real-server-side interface without a copy in userspace.
// It owns its connection table too: no lock is taken per packet.
//
// Per packet a worker parses the frame (dataplane/packet), looks the
// connection up in both directions (conntrack), schedules a real server for a
// new connection (sched, once per connection), rewrites addresses, ports,
// checksums and MAC addresses in place, and queues the frame for TX.
//
// Next hops toward real servers come from the kernel's route and neighbour
// tables (netlink), resolved ahead of traffic and kept fresh by a resolver
// goroutine; replies toward clients go back out of the interface the request
// came in on, to the L2 neighbour it came from, which the connection entry
// remembers. A packet that cannot be forwarded is counted by reason and
// dropped; nothing on the packet path panics or allocates.
//
// # Layout
//
// A worker's concerns each have a file: worker.go the loop, the ring I/O
// and the hand-off between workers (handoff.go holds the rings);
// process.go the packet of a tracked connection; newconn.go the setup of
// a new one (scheduling, persistence, full-NAT local ports); icmp.go the
// ICMP errors about a connection; listings.go the control plane's
// listings, run on the worker between batches. What differs between the
// forwarding methods is a forwarder (fwd.go), one file per method:
// fwd_nat.go, fwd_fullnat.go, fwd_dr.go, fwd_tun.go, found through a table
// indexed by lvs.Fwd. A new method is one such file plus its part of the
// XDP program (bpf/).
//
// The connection table (conntrack) holds what tracking needs; what the
// data path needs to forward a connection (the return path, the flow
// entries' generation, the SYN proxy's translation, its flags) it keeps
// per table slot (connpath.go), and it turns the table's state changes
// into the real servers' active and inactive counts (class.go). The
// backups' records (sync.go) are the data path's own type; the daemon
// carries them on connsync's wire.
package dataplane
