// Package bpf holds govs' XDP programs and their Go loaders.
//
// # steer: the director's steering program
//
// steer.c runs on the interfaces the director serves. For every frame it
// parses Ethernet (up to two VLAN tags, 802.1Q and 802.1ad), IPv4 (with
// options) or IPv6 (with a bounded walk over extension headers, fragment
// header included) and the TCP, UDP or SCTP ports, then sends to the
// workers' AF_XDP sockets:
//
//   - traffic to a virtual service: (destination address, destination port,
//     protocol) is in the vips map, or (address, port 0, protocol) for a
//     service that takes every port;
//   - replies from real servers of NAT and full-NAT services: (source
//     address, source port, protocol), or port 0, is in the reals map;
//   - ICMP and ICMPv6 errors (destination unreachable, packet too big, time
//     exceeded, parameter problem) whose quoted packet is a reply from a
//     virtual service or a request to a real server;
//   - non-first TCP and UDP fragments (no ports) whose destination address
//     is a VIP's, or whose source address is a NAT real server's and whose
//     destination is not the director's own: the frag_addrs map
//     (include/frag.h), kept by AddVIP and AddReal (Counters.SteeredFrag),
//     unless their first fragment went to the kernel (frag_to_kernel).
//
// Before any of that, a frame unicast to a MAC other than the interface's
// own (its ifaces entry, [Interface]) passes to the kernel untouched
// (Counters.ForeignMAC): a promiscuous interface receives other hosts'
// frames, which the kernel drops. Broadcast and multicast frames are
// classified; an interface with [Interface].AcceptForeignMAC skips the check.
//
// The socket is the one in xsks slot base+q, where base is the interface's
// entry in the ifaces map and q the RX queue. Everything else goes to the
// kernel (XDP_PASS), and so do other non-first fragments (FragPassed),
// frames the program cannot parse and frames on interfaces not in ifaces.
// The program drops nothing it does not understand; the fast path
// (fastpath.h) forwards established flows itself. A steered frame whose
// slot holds no socket is dropped (Counters.RedirectFailed): that is the
// gap between two director processes, when the kernel would reset
// connections the next process adopts; a SYN to a [VIPSynProxyCapable]
// service is answered with a cookie then, as under VIPSynProxyOn.
//
// Before the redirect, a packet passes the steering meter: a token bucket
// per xsks slot ([Steering.SetSteerLimit]); over its rate the packet is
// dropped (Counters.SteerMetered). Packets of flows the workers know (an
// entry of the current generation in a flow map: a forwarding one, or a
// [FlowAction.SteerOnly] one for traffic the workers forward themselves),
// SYNs the SYN budget admitted and ICMP errors bypass it. To know the flows
// with the fast path off, the program looks every TCP and UDP packet up in
// its family's flow map all the same.
// [Steering] loads it, attaches it and edits its maps; [Counters] reports
// the per-CPU counters of those outcomes, summed.
//
// A TCP SYN to a virtual service meets the SYN defence (include/synproxy.h)
// first: it is counted per service ([Steering.ServiceSYNs]), then answered
// by the program itself with a SYN-ACK whose sequence number is a SYN cookie
// (redirected back out of its interface) when the service's [VIPFlags] say VIPSynProxyOn, or else metered
// by a per-CPU token bucket ([Steering.SetSynLimit]): within the rate it goes
// to the workers, over it it gets a cookie (VIPSynProxyCapable) or is
// dropped. The cookie is packet.SynCookie's, keyed by
// [Steering.SetSynCookieKey]; the workers check the client's ACK with
// packet.CheckSynCookie. Only untagged IPv4 without options and IPv6 without
// extension headers are answered or metered; other SYNs are steered.
//
// IPv4 addresses are held IPv4-mapped (::ffff:a.b.c.d) in every map, like
// [inet.Addr], so one key layout serves both families; flows4 is the
// exception: IPv4 flows have a map of their own with a 16-byte key, so
// that the hash every forwarded IPv4 packet pays covers 16 bytes, not 40.
//
// The program is attached through a BPF link. Without a pin path
// ([SteeringOptions.PinPath]) the kernel detaches it when the daemon dies,
// so the interface falls back to the kernel path. With one, the links and
// the maps that carry state across processes (the flow maps, fast_cfg, the
// SYN cookie key) are pinned there (pin.go): the program keeps forwarding
// established flows while no daemon runs, and the next one adopts the
// state and swaps its own program in atomically
// ([Steering.AttachPinned]).
//
// # decap: tunnel decapsulation on real servers
//
// decap.c is for real servers of tunnel-mode (LVS-TUN) services on hosts
// without the ipip / ip6_tunnel modules. It strips the outer IPv4 (protocol
// 4 or 41) or IPv6 (next header 41 or 4, optionally behind one destination
// options header) of packets whose inner destination address is in the
// decap_vips map, rewrites the ethertype for the inner family and passes
// the inner packet to the kernel. Fragmented outer packets and everything
// else pass untouched. [Decap] loads and attaches it.
//
// # Layout and regeneration
//
// The C sources are steer.c and decap.c; include/ holds one header per
// concern: parse.h (packet parsing), icmp.h (ICMP errors), maps.h and
// counters.h (steer's maps and counters), decap.h (decap's map and
// counters). Map key and value types and the counter enums reach Go through
// bpf2go -type, never as hand-written copies.
//
// The generated steer_bpfel.{go,o} and decap_bpfel.{go,o} are committed, so
// building needs no clang. After changing a C file, regenerate them with
// clang 14 and commit the result:
//
//	make generate    # runs: cd bpf && go generate ./...
//
// The go:generate lines are in gen.go. Only the little-endian BPF target is
// built, so the package builds on little-endian architectures only.
//
// Tests run the programs through BPF_PROG_TEST_RUN and attach them to veth
// pairs in private network namespaces; they need root and skip without it.
package bpf
