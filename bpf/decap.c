// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * decap: the real-server side of LVS tunnel mode, for hosts without the
 * ipip / ip6_tunnel modules. The director forwards a client's packet
 * unchanged inside an outer IP header addressed to the real server; this
 * program strips that outer header when the inner destination is one of the
 * virtual addresses the real server serves (decap_vips), so the kernel
 * receives the client's packet as if it had arrived directly. Everything
 * else passes untouched.
 *
 * Handled: IPv4 in IPv4 (protocol 4), IPv6 in IPv6 (next header 41), IPv6
 * in IPv4 and IPv4 in IPv6, behind up to two VLAN tags; an IPv6 outer header
 * may carry one destination options header (the tunnel encapsulation limit
 * of RFC 2473).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"
#include "decap.h"

/* The layer-2 header, saved while the outer IP header is cut out. */
struct l2_header {
	__u8 bytes[sizeof(struct ethhdr) + VLAN_MAX_DEPTH * sizeof(struct vlan_hdr)];
};

/*
 * find_tunnel parses the outer IP header at the cursor. On success the
 * cursor is on the inner IP header and *inner_ethertype is its family.
 */
static __always_inline enum counter_id find_tunnel(struct cursor *c, __be16 ethertype, __be16 *inner_ethertype)
{
	__u8 inner_proto;

	if (ethertype == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = c->pos;
		if ((void *)(iph + 1) > c->end)
			return malformed;
		if (iph->version != 4 || iph->ihl < 5)
			return malformed;
		__u32 hdr_len = iph->ihl * 4;
		__u32 total_len = bpf_ntohs(iph->tot_len);
		if (total_len < hdr_len || c->pos + total_len > c->end)
			return malformed;
		inner_proto = iph->protocol;
		if (inner_proto != IPPROTO_IPIP && inner_proto != IPPROTO_IPV6)
			return not_ours;
		/* More-fragments or an offset: only the reassembled packet holds the inner one. */
		if (iph->frag_off & bpf_htons(0x2000 | IPV4_FRAG_OFFSET_MASK))
			return fragmented;
		c->pos += hdr_len;
	} else if (ethertype == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = c->pos;
		if ((void *)(ip6 + 1) > c->end)
			return malformed;
		if (ip6->version != 6)
			return malformed;
		if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > c->end)
			return malformed;
		inner_proto = ip6->nexthdr;
		c->pos = ip6 + 1;
		if (inner_proto == IPPROTO_DSTOPTS) {
			struct ipv6_opt_hdr *opt = c->pos;
			if ((void *)(opt + 1) > c->end)
				return malformed;
			__u32 len = ((__u32)opt->hdrlen + 1) * 8;
			inner_proto = opt->nexthdr;
			if (c->pos + len > c->end)
				return malformed;
			c->pos += len;
		}
		if (inner_proto == IPPROTO_FRAGMENT)
			return fragmented;
		if (inner_proto != IPPROTO_IPIP && inner_proto != IPPROTO_IPV6)
			return not_ours;
	} else {
		return not_ours;
	}

	__u8 addr[16];
	if (inner_proto == IPPROTO_IPIP) {
		struct iphdr *inner = c->pos;
		if ((void *)(inner + 1) > c->end)
			return malformed;
		if (inner->version != 4)
			return malformed;
		map_ipv4(addr, inner->daddr);
		*inner_ethertype = bpf_htons(ETH_P_IP);
	} else {
		struct ipv6hdr *inner = c->pos;
		if ((void *)(inner + 1) > c->end)
			return malformed;
		if (inner->version != 6)
			return malformed;
		__builtin_memcpy(addr, &inner->daddr, 16);
		*inner_ethertype = bpf_htons(ETH_P_IPV6);
	}
	if (!bpf_map_lookup_elem(&decap_vips, addr))
		return not_ours;
	return decapsulated;
}

/*
 * restore_l2 writes the first len bytes of l2 (len: 14, 18 or 22) at data,
 * with the innermost ethertype, the last two bytes, replaced by ethertype.
 * Each size is its own case so every access has a constant bound.
 */
#define L2_ETH sizeof(struct ethhdr)
#define L2_VLAN1 (L2_ETH + sizeof(struct vlan_hdr))
#define L2_VLAN2 (L2_ETH + 2 * sizeof(struct vlan_hdr))

static __always_inline int restore_l2(struct l2_header *l2, void *data, void *data_end, __u32 len, __be16 ethertype)
{
	switch (len) {
	case L2_ETH:
		if (data + L2_ETH > data_end)
			return -1;
		__builtin_memcpy(data, l2->bytes, L2_ETH);
		*(__be16 *)(data + L2_ETH - 2) = ethertype;
		return 0;
	case L2_VLAN1:
		if (data + L2_VLAN1 > data_end)
			return -1;
		__builtin_memcpy(data, l2->bytes, L2_VLAN1);
		*(__be16 *)(data + L2_VLAN1 - 2) = ethertype;
		return 0;
	case L2_VLAN2:
		if (data + L2_VLAN2 > data_end)
			return -1;
		__builtin_memcpy(data, l2->bytes, L2_VLAN2);
		*(__be16 *)(data + L2_VLAN2 - 2) = ethertype;
		return 0;
	}
	return -1;
}

SEC("xdp")
int decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cursor c = { .pos = data, .end = data_end };
	__be16 ethertype, inner_ethertype = 0;

	if (parse_eth(&c, &ethertype) != PARSE_OK) {
		count(malformed);
		return XDP_PASS;
	}
	__u32 l2_len = c.pos - data;
	void *outer = c.pos;
	enum counter_id result = find_tunnel(&c, ethertype, &inner_ethertype);
	if (result != decapsulated) {
		count(result);
		return XDP_PASS;
	}
	__u32 outer_len = c.pos - outer;

	/* Save the largest layer-2 header; the outer and inner IP headers
	 * behind it make every tunnel packet longer than that. */
	struct l2_header l2;
	if (data + sizeof(l2.bytes) > data_end) {
		count(malformed);
		return XDP_PASS;
	}
	__builtin_memcpy(l2.bytes, data, sizeof(l2.bytes));
	if (bpf_xdp_adjust_head(ctx, (int)outer_len) != 0) {
		count(adjust_failed);
		return XDP_PASS;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (restore_l2(&l2, data, data_end, l2_len, inner_ethertype) != 0) {
		/* Cannot happen: the inner packet is longer than the layer-2
		 * header. The frame is beyond repair; do not hand it on. */
		count(adjust_failed);
		return XDP_DROP;
	}
	count(decapsulated);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
