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
package dataplane
