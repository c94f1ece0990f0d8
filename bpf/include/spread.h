// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Spreading SYNs beyond the SYN budget (synproxy.h) over the real servers of
 * a DR or TUN service, statelessly, instead of dropping them.
 *
 * A DR or TUN service cannot be SYN-proxied: its replies bypass the
 * director. Under a flood its SYNs beyond syn_limit were dropped, and a
 * legitimate client's SYN with them. For a service that schedules with
 * Maglev hashing (mh) and takes connections mid-flow (sloppy), the program
 * forwards such a SYN itself, to the server the workers' mh would pick: the
 * control plane copies the service's Maglev table here (spread_tables) and
 * the forwarding of each of its real servers (spread_dests), and the
 * program hashes the client's address (and port, with mh-port) as
 * sched.hashAddrPort does. The real server answers with its own SYN cookies
 * if it must; the client's ACK, which no worker has a connection for, goes
 * to a worker, whose sloppy mh schedules it to the same server and starts
 * the connection there. No state is kept for the SYN.
 */
#ifndef GOVS_SPREAD_H
#define GOVS_SPREAD_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"
#include "csum.h"
#include "counters.h"
#include "fastpath.h"

#define SPREAD_TABLE_SIZE 65537 /* slots of a Maglev table (sched.mhTableSize) */
#define SPREAD_SERVICES 16      /* services whose SYNs may be spread at once */
#define SPREAD_NONE -1          /* spread_syn: not spread (no table, no server, not plain) */

/* The Maglev hash's seeds and finaliser (sched/common.go, sched/mh.go). */
#define SPREAD_SEED_LOOKUP 0xd6e8feb86659fd93ULL
#define SPREAD_GOLDEN 0x9e3779b97f4a7c15ULL

/* spread_service flags. */
#define SPREAD_HASH_PORT 0x1 /* mh-port: the client's port is hashed too */

struct spread_service {
	__u32 table; /* which of spread_tables' SPREAD_SERVICES tables */
	__u32 flags; /* SPREAD_* */
};

/* Service id -> its Maglev table and hashing: the services whose SYNs are spread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPREAD_SERVICES);
	__type(key, __u32);
	__type(value, struct spread_service);
} spread_services SEC(".maps");

/* table * SPREAD_TABLE_SIZE + slot -> real server id + 1 (0: none): the Maglev tables. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPREAD_SERVICES * SPREAD_TABLE_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} spread_tables SEC(".maps");

/* Real server id -> how a spread SYN reaches it (ifindex 0: it takes none now). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FAST_DESTS);
	__type(key, __u32);
	__type(value, struct flow_action);
} spread_dests SEC(".maps");

static __always_inline __u64 spread_mix(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* spread_slot is the Maglev table slot of a client (sched.hashAddrPort with
 * the lookup seed, modulo the table size): addr as the tuple holds it
 * (IPv4-mapped for IPv4), port in host order (0 without mh-port). */
static __always_inline __u32 spread_slot(const __u8 addr[16], __u16 port)
{
	__u64 hi, lo;
	__builtin_memcpy(&hi, addr, 8);
	__builtin_memcpy(&lo, addr + 8, 8);
	__u64 h = spread_mix(SPREAD_SEED_LOOKUP ^ bpf_be64_to_cpu(hi));
	h = spread_mix(h ^ bpf_be64_to_cpu(lo));
	h = spread_mix(h ^ ((__u64)port << 32) ^ SPREAD_GOLDEN);
	return h % SPREAD_TABLE_SIZE;
}

/*
 * spread_syn forwards a SYN with tuple t to service_id's real server by its
 * Maglev table, as fast_forward forwards an established flow's packet (the
 * TTL or hop limit decremented, DR's MAC rewrite or TUN's encapsulation,
 * counted for the server), and returns the XDP action; SPREAD_NONE when the
 * service spreads no SYNs, its slot's server takes none (unavailable,
 * unresolved), or the frame is not plain or its TTL runs out. The caller
 * has checked the frame is a plain one (syn_guard).
 */
static __always_inline int spread_syn(struct xdp_md *ctx, const struct tuple *t, __u32 service_id, bool is_ipv6)
{
	struct spread_service *svc = bpf_map_lookup_elem(&spread_services, &service_id);
	if (!svc || svc->table >= SPREAD_SERVICES)
		return SPREAD_NONE;
	__u16 port = (svc->flags & SPREAD_HASH_PORT) ? bpf_ntohs(t->sport) : 0;
	__u32 key = svc->table * SPREAD_TABLE_SIZE + spread_slot(t->saddr, port);
	__u32 *dest = bpf_map_lookup_elem(&spread_tables, &key);
	if (!dest || *dest == 0)
		return SPREAD_NONE;
	__u32 id = *dest - 1;
	struct flow_action *a = bpf_map_lookup_elem(&spread_dests, &id);
	if (!a || a->ifindex == 0)
		return SPREAD_NONE;

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return SPREAD_NONE;
	__u32 frame_len = end - data;
	__u32 l3len;
	if (!is_ipv6) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return SPREAD_NONE;
		l3len = bpf_ntohs(ip->tot_len);
		if ((a->flags & FLOW_ENCAP) && l3len > a->max_l3_len)
			return SPREAD_NONE;
		/* A sender with TX checksum offload left the checksum
		 * unfinished: finished here, as the fast path does, since
		 * the server's end checks it. */
		__u16 *csum = (void *)(ip + 1) + 16;
		if ((void *)(csum + 1) > end || l3len < sizeof(*ip) + 20)
			return SPREAD_NONE;
		__u32 l4len = l3len - sizeof(*ip);
		__u64 pseudo = pseudo_sum((__u16 *)&ip->saddr, (__u16 *)&ip->daddr, 2, IPPROTO_TCP, l4len);
		if (finish_unfinished(ctx, *csum, pseudo, ETH_HLEN + sizeof(*ip), l4len, 16) < 0)
			return SPREAD_NONE;
		ip4_dec_ttl(ip, 0);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return SPREAD_NONE;
		l3len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		if ((a->flags & FLOW_ENCAP) && l3len > a->max_l3_len)
			return SPREAD_NONE;
		__u16 *csum = (void *)(ip6 + 1) + 16;
		if ((void *)(csum + 1) > end || l3len < sizeof(*ip6) + 20)
			return SPREAD_NONE;
		__u32 l4len = l3len - sizeof(*ip6);
		__u64 pseudo = pseudo_sum((__u16 *)&ip6->saddr, (__u16 *)&ip6->daddr, 8, IPPROTO_TCP, l4len);
		if (finish_unfinished(ctx, *csum, pseudo, ETH_HLEN + sizeof(*ip6), l4len, 16) < 0)
			return SPREAD_NONE;
		ip6->hop_limit--;
	}
	fast_count(a, frame_len);
	int act = flow_out(ctx, eth, a, l3len, is_ipv6);
	if (act == XDP_REDIRECT)
		count(syn_spread);
	else
		count(fast_aborted); /* the encapsulation failed */
	return act;
}

#endif /* GOVS_SPREAD_H */
