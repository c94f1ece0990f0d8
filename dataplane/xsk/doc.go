// Package xsk is a small AF_XDP socket implementation on golang.org/x/sys/unix.
//
// A dataplane worker owns one UMEM (a block of packet buffers shared with the
// kernel) and one Socket per interface, all bound to the same RX queue index
// and all sharing that UMEM. A frame received on interface A can therefore be
// rewritten in place and transmitted on interface B by handing the same UMEM
// address to B's TX ring: no copy in userspace.
//
// # Frame lifecycle
//
// The worker keeps its own free list of chunk addresses. It gives free chunks
// to the kernel with Fill, gets received frames back from Receive, rewrites
// them through UMEM.Bytes, queues them with Transmit on any socket of the
// UMEM, and gets the chunk back from that socket's Complete once the kernel
// is done with it. Complete returns chunk bases, not the transmitted
// addresses: the kernel reports the transmitted address, and Linux 6.18 in
// copy mode even clears its bit 0 (observed in TestEcho), so only the chunk
// is reliable. Frames dropped by the worker go straight back to its free list.
//
// # Where the kernel puts received data
//
// In aligned mode the kernel writes a received frame at
//
//	chunk base + PacketHeadroom (256) + UMEM headroom
//
// and reports that address in the RX descriptor, in copy mode as well as in
// zero-copy mode (the buffer's data pointer is hard_start + XDP_PACKET_HEADROOM,
// and the handle returned to userspace is data - UMEM start). The tests confirm
// it for copy mode on veth (see TestReceiveUDP). So every received frame has at
// least 256 free bytes in front of it: to prepend an outer header (IPIP, GUE)
// lower Desc.Addr and raise Desc.Len by the header size. The kernel accepts a
// TX descriptor at any offset inside a chunk as long as it does not cross the
// chunk end (tested with several offsets, odd ones included).
//
// # Ring protocol
//
// Every ring is single-producer/single-consumer between this process and the
// kernel. The producer and consumer indices are free-running uint32 words in
// shared memory; they are read and written with sync/atomic, whose
// sequentially consistent loads and stores give the acquire/release ordering
// the kernel side relies on (descriptors are written before the producer index
// is published, and read before the consumer index is released). The local
// cached copies keep the hot path to one atomic load per batch in the common
// case.
//
// # Concurrency
//
// A Socket and its UMEM belong to one goroutine: Fill, Receive, Transmit,
// Complete, Flush and Wakeup must not run concurrently on the same socket, and
// Fill/Complete of different sockets of one UMEM share that goroutine's free
// list anyway. Stats and SetBusyPoll (getsockopt and setsockopt only) may be
// called from another goroutine. NewSocket and Close are serialised per UMEM
// by a mutex.
//
// # Why not github.com/asavie/xdp
//
// govs used github.com/asavie/xdp first. It is archived, and it has defects
// that matter for a load balancer that must not stall or crash:
//
//   - ring producer/consumer indices are read and written as plain memory,
//     without atomics, so neither the compiler nor the CPU is kept from
//     reordering descriptor accesses against index updates;
//   - Transmit panics when sendto returns an errno it does not expect (for
//     example ENETDOWN when the link goes down, ENXIO when it is deleted);
//   - GetDescs walks all frames to find free ones, O(frames) per call;
//   - no XDP_USE_NEED_WAKEUP support, so every batch costs a syscall;
//   - no shared UMEM, so forwarding between interfaces needs a copy.
//
// This package fixes all five, allocates nothing per packet (tests prove it
// with testing.AllocsPerRun), and returns every kernel error as an error.
package xsk
