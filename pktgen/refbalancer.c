// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * refbalancer: a minimal stateless XDP load balancer, the reference row of
 * `make bench` (the most an XDP balancer can deliver on its topology).
 *
 * An IPv4 UDP or TCP packet to the configured VIP and port goes to real
 * server hash(source address, source port) % num_reals: its destination
 * address and port become the real server's (IP and L4 checksums fixed
 * incrementally; a UDP checksum of 0, none, stays 0), its MACs those of the
 * real server's next hop and of the egress interface, and it is redirected
 * to the egress interface. No state, no connection tracking, no clock, no
 * counters. Everything else (other addresses and ports, fragments, ARP,
 * IPv6, ...) is passed to the kernel. Replies are not handled.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "csum.h"
#include "refbalancer.h"

#define IP_FRAG_BITS 0x3fff /* more fragments and the fragment offset */

/* pick returns the index of the real server for a source: a multiplicative
 * hash of the address and port as they lie in memory (network order read
 * on this little-endian machine), modulo n. The Go test computes the same. */
static __always_inline __u32 pick(__be32 saddr, __be16 sport, __u32 n)
{
	__u32 h = (saddr ^ ((__u32)sport << 16 | sport)) * 0x9e3779b1u;

	h ^= h >> 16;
	return h % n;
}

/* csum_delta16 is the one's complement difference of replacing word from by
 * word to (RFC 1624, eqn. 3), to add to a complemented checksum. */
static __always_inline __u32 csum_delta16(__u16 from, __u16 to)
{
	return (__u16)~from + (__u32)to;
}

static __always_inline __u32 csum_delta32(__u32 from, __u32 to)
{
	return csum_delta16(from, to) + csum_delta16(from >> 16, to >> 16);
}

/* csum_apply returns checksum sum updated by delta (RFC 1624, eqn. 3). */
static __always_inline __u16 csum_apply(__u16 sum, __u32 delta)
{
	return csum_fold((__u16)~sum + delta);
}

SEC("xdp")
int refbalancer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	const struct refbalancer_config *cfg;
	const struct refbalancer_real *rs;
	__u32 zero = 0, idx, n;
	__be16 *ports; /* source, destination */
	__u16 *check;
	__u32 delta;
	void *l4;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl < 5 || ip->frag_off & bpf_htons(IP_FRAG_BITS))
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&refbalancer_settings, &zero);
	if (!cfg || ip->daddr != cfg->vip)
		return XDP_PASS;
	n = cfg->num_reals;
	if (n == 0 || n > REFBALANCER_MAX_REALS)
		return XDP_PASS;

	l4 = (void *)ip + ip->ihl * 4;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > end)
			return XDP_PASS;
		ports = &udp->source;
		check = &udp->check;
	} else if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > end)
			return XDP_PASS;
		ports = &tcp->source;
		check = &tcp->check;
	} else {
		return XDP_PASS;
	}
	if (ports[1] != cfg->vport)
		return XDP_PASS;

	idx = pick(ip->saddr, ports[0], n);
	rs = bpf_map_lookup_elem(&refbalancer_reals, &idx);
	if (!rs)
		return XDP_PASS;

	/* The address is in the IP header's checksum and, through the
	 * pseudo-header, in the L4 one; the port in the L4 one only. */
	delta = csum_delta32(ip->daddr, rs->addr);
	ip->check = csum_apply(ip->check, delta);
	if (ip->protocol == IPPROTO_TCP || *check != 0) {
		__u16 sum = csum_apply(*check, delta + csum_delta16(ports[1], rs->port));
		if (sum == 0 && ip->protocol == IPPROTO_UDP)
			sum = 0xffff; /* 0 would mean no checksum */
		*check = sum;
	}
	ip->daddr = rs->addr;
	ports[1] = rs->port;

	__builtin_memcpy(eth->h_dest, rs->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->egress_mac, ETH_ALEN);
	return bpf_redirect(cfg->egress_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
