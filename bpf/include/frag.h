// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fragments for the load balancer. A first fragment carries the transport
 * header and is classified like any packet; a later one carries no ports,
 * so it cannot be matched against vips or reals. It is the load balancer's
 * when its destination address is a VIP (a request) or its source address a
 * NAT/full-NAT real server's and its destination not the director's own (a
 * reply): frag_addrs holds those addresses, reference counted by the control
 * plane as it fills vips and reals (bpf/fragsteer.go). Such a fragment goes
 * to the workers of its RX queue like a first packet (it meets the steering
 * meter: it belongs to no known flow), where dataplane/frag.go sends it
 * after the first fragment of its datagram, to the same place. Everything
 * else is left to the kernel (frag_passed). Destinations in a prefix of a
 * firewall mark (the marks trie, maps.h) count as VIPs here. Fragments never take the fast
 * path (fastpath.h sends known flows' first fragments to the workers).
 *
 * A datagram between those addresses may still not be the load balancer's:
 * a real server's own traffic through the director (its gateway under NAT),
 * or a datagram to a port of the VIP no service takes. Its first fragment
 * matches no service and goes to the kernel; frag_to_kernel then remembers
 * its (source, destination, protocol, id) for FRAG_KERNEL_NS, so that its
 * later fragments follow it there instead of waiting in a worker for a
 * first fragment that never comes. A later fragment that overtakes such a
 * first one is lost (the kernel's reassembly times out).
 */
#ifndef GOVS_FRAG_H
#define GOVS_FRAG_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "parse.h"
#include "maps.h"

/* frag_addrs values: which role the address has. */
#define FRAG_ADDR_VIP 0x1  /* the address of a virtual service */
#define FRAG_ADDR_REAL 0x2 /* the address of a NAT or full-NAT real server */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u32);
} frag_addrs SEC(".maps");

/* The datagrams whose first fragment went to the kernel: key -> when
 * (bpf_ktime_get_coarse_ns). */
struct frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be32 id;
	__u8 proto;
	__u8 pad[3]; /* always 0: hash keys compare every byte */
};

#define FRAG_KERNEL_NS (2ULL * 1000000000ULL)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct frag_key);
	__type(value, __u64);
} frag_to_kernel SEC(".maps");

static __always_inline void frag_key_of(struct frag_key *k, const struct tuple *t)
{
	__builtin_memcpy(k->saddr, t->saddr, 16);
	__builtin_memcpy(k->daddr, t->daddr, 16);
	k->id = t->frag_id;
	k->proto = t->proto;
}

static __always_inline __u32 frag_addr_flags(const __u8 addr[16])
{
	struct addr_key key = {};
	__u32 *v;

	__builtin_memcpy(key.addr, addr, 16);
	v = bpf_map_lookup_elem(&frag_addrs, &key);
	return v ? *v : 0;
}

/* frag_addrs_ours reports whether the fragment with tuple t (addresses and
 * protocol; no ports) is between the load balancer's addresses: to a VIP,
 * or from a real server to anything but the director's own addresses. Only
 * TCP and UDP: the workers forward nothing else. */
static __always_inline bool frag_addrs_ours(const struct tuple *t)
{
	if (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP)
		return false;
	if (frag_addr_flags(t->daddr) & FRAG_ADDR_VIP)
		return true;
	/* An address a firewall mark matches counts as a VIP, whatever the
	 * port (a later fragment has none); a datagram to a port the mark
	 * does not take has its first fragment passed, and frag_to_kernel
	 * sends the rest after it. */
	if (mark_prefix_lookup(t->daddr))
		return true;
	if (!(frag_addr_flags(t->saddr) & FRAG_ADDR_REAL))
		return false;
	struct addr_key own = {};
	__builtin_memcpy(own.addr, t->daddr, 16);
	return bpf_map_lookup_elem(&own_addrs, &own) == NULL;
}

/* frag_ours reports whether the later fragment t goes to the workers: its
 * addresses are the load balancer's and its first fragment did not go to
 * the kernel. */
static __always_inline bool frag_ours(const struct tuple *t)
{
	if (!frag_addrs_ours(t))
		return false;
	struct frag_key k = {};
	frag_key_of(&k, t);
	__u64 *when = bpf_map_lookup_elem(&frag_to_kernel, &k);
	return !when || bpf_ktime_get_coarse_ns() - *when > FRAG_KERNEL_NS;
}

/* frag_note_passed records that t, about to go to the kernel, is a first
 * fragment between the load balancer's addresses: its later fragments go
 * there too. */
static __always_inline void frag_note_passed(const struct tuple *t)
{
	if (t->frag != TUPLE_FRAG_FIRST || !frag_addrs_ours(t))
		return;
	struct frag_key k = {};
	frag_key_of(&k, t);
	__u64 now = bpf_ktime_get_coarse_ns();
	bpf_map_update_elem(&frag_to_kernel, &k, &now, BPF_ANY);
}

#endif /* GOVS_FRAG_H */
