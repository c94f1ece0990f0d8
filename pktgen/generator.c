// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * generator: a traffic generator for the kernel's XDP live-frames mode
 * (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES). Every run writes one whole
 * frame (Ethernet, IPv4 or IPv6, UDP or a TCP SYN, zero payload) for the
 * next flow and returns XDP_TX, which the kernel turns into a transmission
 * out of the interface named by the context's ingress_ifindex.
 *
 * Live frames are recycled without being reset, and whoever received a
 * frame may have written into it (a forwarding hop decrements the TTL, NAT
 * rewrites addresses), so nothing of a previous frame is trusted: every
 * header field, every checksum and the payload are written anew each time.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "csum.h"
#include "genmaps.h"

#define TCP_SYN_LEN 24 /* the TCP header with one MSS option */
#define TCP_SYN_MSS 1460
#define TCP_SYN_WINDOW 64240
#define GEN_TTL 64

/* The payload is zeroed from this read-only block, ZERO_CHUNK bytes per
 * helper call; ZERO_CHUNKS calls cover the largest live frame (a page). */
#define ZERO_CHUNK 512
#define ZERO_CHUNKS 8
static const __u8 zeros[ZERO_CHUNK];

/* pace admits the frame if the current slice still has budget. */
static __always_inline int pace(const struct gen_config *cfg, struct gen_state *st)
{
	if (!cfg->per_slice)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	if (now - st->slice_start >= cfg->slice_ns) {
		/* Slightly late: stay on the slice grid so the average rate
		 * holds. Far behind (a pause): restart from now rather than
		 * bursting to catch up. */
		if (now - st->slice_start < 2 * cfg->slice_ns)
			st->slice_start += cfg->slice_ns;
		else
			st->slice_start = now;
		st->slice_used = 0;
	}
	if (st->slice_used >= cfg->per_slice)
		return 0;
	st->slice_used++;
	return 1;
}

/* next_flow moves the state to the next frame's flow. */
static __always_inline void next_flow(const struct gen_config *cfg, struct gen_state *st)
{
	st->seq++;
	if (++st->flow >= cfg->flows) {
		st->flow = 0;
		st->dst_idx = 0;
		st->addr_idx = 0;
		st->port_idx = 0;
		return;
	}
	if (++st->dst_idx >= cfg->dst_count)
		st->dst_idx = 0;
	if (++st->addr_idx >= cfg->src_count) {
		st->addr_idx = 0;
		if (++st->port_idx >= cfg->sport_count)
			st->port_idx = 0;
	}
}

/* zero_payload zeroes [off, len) of the frame. */
static __always_inline int zero_payload(struct xdp_md *ctx, __u64 off, __u64 len)
{
	for (int i = 0; i < ZERO_CHUNKS; i++) {
		if (off >= len)
			return 0;
		/* 64 bits: a __u32 would reach the helper with its upper
		 * half unbounded in the verifier's eyes. */
		__u64 n = len - off;
		if (n > ZERO_CHUNK)
			n = ZERO_CHUNK;
		/* Keep clang from folding the clamp away: the verifier must
		 * see n bounded in the register handed to the helper. */
		barrier_var(n);
		if (n == 0 || n > ZERO_CHUNK)
			return -1;
		if (bpf_xdp_store_bytes(ctx, off, (void *)zeros, n))
			return -1;
		off += n;
	}
	return off >= len ? 0 : -1;
}

/* last32 returns the last 32 bits of a 16-byte address plus idx, in network order. */
static __always_inline __be32 last32(const __u8 *addr, __u32 idx)
{
	__be32 v;

	__builtin_memcpy(&v, addr + 12, sizeof(v));
	return bpf_htonl(bpf_ntohl(v) + idx);
}

/*
 * write_l4 writes the UDP header or the TCP SYN at l4 (l4_len bytes from
 * there to the end of the frame) and its checksum, given the sum of the
 * pseudo-header's addresses. The payload is zero and adds nothing.
 */
static __always_inline void write_l4(void *l4, void *end, const struct gen_config *cfg,
				     const struct gen_state *st, const struct gen_dst *dst,
				     __u32 l4_len, __u32 addr_sum)
{
	__be16 sport = bpf_htons((__u16)(cfg->sport_min + st->port_idx));
	__u32 sum = addr_sum + bpf_htons((__u16)l4_len) + bpf_htons((__u16)cfg->proto);

	if (cfg->proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > end)
			return;
		udp->source = sport;
		udp->dest = dst->port;
		udp->len = bpf_htons((__u16)l4_len);
		udp->check = 0;
		__u16 check = csum_fold(sum + csum_words(udp, sizeof(*udp) / 2));
		/* 0 means "no checksum" in UDP; its complement is sent instead. */
		udp->check = check ? check : 0xffff;
		return;
	}

	__u8 *tcp = l4;
	if (l4 + TCP_SYN_LEN > end)
		return;
	struct tcphdr *th = l4;
	th->source = sport;
	th->dest = dst->port;
	th->seq = bpf_htonl((__u32)st->seq);
	th->ack_seq = 0;
	tcp[12] = (TCP_SYN_LEN / 4) << 4; /* data offset, reserved bits clear */
	tcp[13] = 0x02;                   /* SYN, and no other flag */
	th->window = bpf_htons(TCP_SYN_WINDOW);
	th->check = 0;
	th->urg_ptr = 0;
	tcp[20] = 2; /* MSS option: kind 2, length 4 */
	tcp[21] = 4;
	tcp[22] = TCP_SYN_MSS >> 8;
	tcp[23] = TCP_SYN_MSS & 0xff;
	th->check = csum_fold(sum + csum_words(tcp, TCP_SYN_LEN / 2));
}

/* write_headers writes the frame for the current flow; it returns the
 * header length, or 0 when the frame is too short for its headers. */
static __always_inline __u32 write_headers(struct xdp_md *ctx, const struct gen_config *cfg,
					   const struct gen_state *st)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	const struct gen_dst *dst = &cfg->dsts[st->dst_idx & (GEN_MAX_DSTS - 1)];
	__u32 l4_hdr = cfg->proto == IPPROTO_UDP ? sizeof(struct udphdr) : TCP_SYN_LEN;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	__builtin_memcpy(eth->h_dest, cfg->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->src_mac, ETH_ALEN);

	if (cfg->family == 4) {
		struct iphdr *ip = (void *)(eth + 1);
		void *l4 = ip + 1;
		if (l4 + l4_hdr > end)
			return 0;
		__u32 ip_len = cfg->frame_len - sizeof(*eth);
		eth->h_proto = bpf_htons(ETH_P_IP);
		*(__u8 *)ip = 0x45; /* version 4, 20-byte header */
		ip->tos = 0;
		ip->tot_len = bpf_htons((__u16)ip_len);
		ip->id = bpf_htons((__u16)st->seq);
		ip->frag_off = bpf_htons(0x4000); /* don't fragment */
		ip->ttl = GEN_TTL;
		ip->protocol = cfg->proto;
		ip->check = 0;
		ip->saddr = last32(cfg->src_addr, st->addr_idx);
		__builtin_memcpy(&ip->daddr, dst->addr + 12, 4);
		ip->check = csum_fold(csum_words(ip, sizeof(*ip) / 2));
		write_l4(l4, end, cfg, st, dst, ip_len - sizeof(*ip),
			 csum_words(&ip->saddr, 4));
		return sizeof(*eth) + sizeof(*ip) + l4_hdr;
	}

	struct ipv6hdr *ip6 = (void *)(eth + 1);
	void *l4 = ip6 + 1;
	if (l4 + l4_hdr > end)
		return 0;
	__u32 payload_len = cfg->frame_len - sizeof(*eth) - sizeof(*ip6);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, class 0, label 0 */
	ip6->payload_len = bpf_htons((__u16)payload_len);
	ip6->nexthdr = cfg->proto;
	ip6->hop_limit = GEN_TTL;
	__builtin_memcpy(&ip6->saddr, cfg->src_addr, 12);
	__be32 low = last32(cfg->src_addr, st->addr_idx);
	__builtin_memcpy((__u8 *)&ip6->saddr + 12, &low, 4);
	__builtin_memcpy(&ip6->daddr, dst->addr, 16);
	write_l4(l4, end, cfg, st, dst, payload_len, csum_words(&ip6->saddr, 16));
	return sizeof(*eth) + sizeof(*ip6) + l4_hdr;
}

SEC("xdp")
int generate(struct xdp_md *ctx)
{
	__u32 zero = 0;
	const struct gen_config *cfg = bpf_map_lookup_elem(&gen_settings, &zero);
	struct gen_state *st = bpf_map_lookup_elem(&gen_progress, &zero);

	if (!cfg || !st || !cfg->frame_len) {
		count(unconfigured);
		return XDP_DROP;
	}
	__u32 len = ctx->data_end - ctx->data;
	if (len != cfg->frame_len) {
		count(bad_frame);
		return XDP_DROP;
	}
	if (cfg->limited && !st->budget) {
		count(over_limit);
		return XDP_DROP;
	}
	if (!pace(cfg, st)) {
		count(paced);
		return XDP_DROP;
	}

	__u32 hdr_len = write_headers(ctx, cfg, st);
	if (!hdr_len || zero_payload(ctx, hdr_len, len)) {
		count(bad_frame);
		return XDP_DROP;
	}
	if (cfg->limited)
		st->budget--;
	next_flow(cfg, st);
	count(sent);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
