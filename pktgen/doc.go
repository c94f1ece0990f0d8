// Package pktgen is a traffic generator on the kernel's XDP live-frames mode,
// the counting sink that receives its traffic in tests and benchmarks, and
// the stateless reference balancer that `make bench` sets load balancers
// against.
//
// # Generator
//
// generator.c is an XDP program run with BPF_PROG_RUN and the
// BPF_F_TEST_XDP_LIVE_FRAMES flag (the mechanism of xdp-trafficgen): the
// kernel runs it Repeat times over frames from a page pool, and every frame
// for which it returns XDP_TX is transmitted out of the interface given as
// the context's ingress_ifindex, without an skb. Frames are recycled
// without being reset and whoever received them may have written into
// them, so the program writes the whole frame each time: Ethernet, IPv4 or
// IPv6, a UDP header or a TCP SYN (with an MSS option), lengths, checksums
// and a zero payload that fills the frame to its configured size.
//
// Flows: flow f of Flows has source address Src + f % SrcCount, source port
// SrcPortMin + (f / SrcCount) % SrcPorts and destination Dsts[f % len(Dsts)];
// frame n carries flow n % Flows, so destinations alternate frame by frame.
//
// Rate: with Config.Rate the program paces itself: it hands out a budget of
// frames per slice of about 100 µs (bpf_ktime_get_ns) and drops the runs
// over budget (counted as Paced), so the Go loop just keeps the kernel
// busy. A frame budget (RunOptions.Count) is enforced in the program too,
// so the count is exact even when the kernel restarts an interrupted batch.
//
// Sending: Generator.Run issues BPF_PROG_RUN itself, once, with the
// largest repeat count, and a watcher goroutine stops it with a signal
// (the call returns EINTR) at the duration, the frame budget or ctx's end.
// ebpf.Program.Run is not used for this: each live-frames call sets up and
// tears down a page pool, which costs tens of milliseconds of silence per
// call here (an RCU grace period), and Program.Run restarts an interrupted
// call from the start. Stats.Elapsed ends when the watcher saw the run end,
// not when the kernel finished tearing down. The unit tests do use
// Program.Run, without live frames, and check the frames it returns.
//
// Offered and sent: Stats.Sent counts XDP_TX verdicts; the interface's own
// transmit counter (InterfaceTxPackets) leaves out frames the driver could
// not queue, such as those a veth drops when its peer's ring is full.
//
// One goroutine runs a Generator at a time; its state (flow, pacing slice,
// budget) is one shared value in the program's maps, not per CPU, so that
// it stays right when the thread migrates.
//
// # Sink
//
// sink.c counts UDP and IP-in-IP packets and drops them (or passes them
// on); everything else passes. Attached to a veth end, it also turns on the
// NAPI receive path that frames sent with XDP_TX by the peer need: without
// an XDP program (or GRO) there, veth refuses them.
//
// # Reference balancer
//
// refbalancer.c is a minimal stateless XDP load balancer: an IPv4 UDP or
// TCP packet to the configured VIP and port goes to real server
// hash(source address, source port) % N (N up to 8), its destination
// address and port rewritten with incremental checksum fixes, its MACs set,
// and redirected to the egress interface; everything else passes. No
// state, no connection tracking, no clock: the most an XDP balancer can
// deliver on a topology (bench's stateless path).
//
// # Layout and regeneration
//
// include/ holds one header per concern: csum.h (checksums), genmaps.h
// (the generator's settings, state and counters), sink.h (the sink's),
// refbalancer.h (the reference balancer's settings and real servers).
// Types reach Go through bpf2go -type. The generated *_bpfel.{go,o} are
// committed; after changing a C file run `go generate ./pktgen/` (the
// go:generate lines are in gen.go) with clang 14.
//
// Sending needs root (CAP_BPF, CAP_NET_ADMIN). cmd/govs-pktgen is the
// command-line front end; bench/ uses both programs for `make bench`.
package pktgen
