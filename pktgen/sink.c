// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * sink: the receiving end of generated traffic. It counts UDP packets and
 * IP-in-IP packets (what an LVS-TUN director sends a real server) and drops
 * them, or passes them on when the sink_settings pass flag is set; everything else
 * (ARP, neighbour discovery, TCP, ...) is passed to the kernel untouched.
 * On a veth end it also enables the NAPI receive path that XDP frames sent
 * by the peer's XDP_TX or XDP_REDIRECT need.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sink.h"

/* classify returns the counter for the frame. Only the first header after
 * IPv4 (any options) or IPv6 (no extension headers) is looked at: that is
 * all generated and forwarded benchmark traffic carries. */
static __always_inline enum counter_id classify(void *data, void *end)
{
	struct ethhdr *eth = data;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return passed;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return passed;
		proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return passed;
		proto = ip6->nexthdr;
	} else {
		return passed;
	}
	switch (proto) {
	case IPPROTO_UDP:
		return sunk_udp;
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
		return sunk_tunnel;
	}
	return passed;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	enum counter_id id = classify((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	const struct sink_config *cfg = bpf_map_lookup_elem(&sink_settings, &zero);

	count(id);
	if (id == passed || (cfg && cfg->pass))
		return XDP_PASS;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
