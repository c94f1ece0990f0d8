// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The SYN defence of the steering program. A TCP SYN (no ACK, no RST) to a
 * virtual service is counted per service, then, by the service's flags in
 * its endpoint_value and a per-CPU token bucket:
 *
 *   - VIP_SYNPROXY_ON: answered here with a SYN-ACK whose sequence number is
 *     a SYN cookie (sent back out of its interface), so no state is kept for SYNs that never finish
 *     their handshake; a worker checks the cookie of the client's ACK
 *     (packet.CheckSynCookie) and only then opens the connection to a real
 *     server;
 *   - otherwise, admitted to the workers while the bucket (syn_cfg: rate and
 *     burst, rate 0 = unlimited) has tokens; over the rate, answered with a
 *     cookie when the service is VIP_SYNPROXY_CAPABLE, dropped otherwise.
 *
 * Only untagged frames of IPv4 without options or IPv6 without extension
 * headers are answered (or metered): other SYNs go to the workers as
 * before. The cookie is the function of dataplane/packet/syncookie.go, bit
 * for bit (SipHash-2-4 over the tuple, the client's ISN, the period and the
 * option bits); tests compare both through BPF_PROG_TEST_RUN. The SYN-ACK
 * carries MSS, window scale (when the client sent one) and SACK-permitted
 * (when the client did) and no timestamps.
 */
#ifndef GOVS_SYNPROXY_H
#define GOVS_SYNPROXY_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"
#include "csum.h"
#include "maps.h"
#include "counters.h"
#include "bucket.h"
#include "spread.h"

/* Verdicts of syn_guard besides an XDP action: steer the packet to the
 * workers; SYN_ADMITTED: a SYN the SYN budget let through, which the
 * steering meter leaves alone (the budget metered it already). */
#define SYN_STEER -1
#define SYN_ADMITTED -2

#define SYNPROXY_WSCALE 7     /* the shift the SYN-ACK announces (packet.SynProxyWScale) */
#define SYNPROXY_WINDOW 65535 /* the SYN-ACK's window (never scaled, RFC 7323) */
#define SYNPROXY_TTL 64
#define SYNPROXY_MSS4 1460 /* default MSS announced over IPv4 */
#define SYNPROXY_MSS6 1440 /* default MSS announced over IPv6 */
#define SYNCOOKIE_CLOCK_SHIFT 36 /* period = CLOCK_MONOTONIC ns >> 36, about 69 s */

#define SYN_TCP_SYN 0x02
#define SYN_TCP_RST 0x04
#define SYN_TCP_ACK 0x10
#define SYN_TCP_SYNACK 0x12

#define SYN_OPT_EOL 0
#define SYN_OPT_NOP 1
#define SYN_OPT_MSS 2
#define SYN_OPT_WS 3
#define SYN_OPT_SACK_PERM 4
#define SYN_OPTS_MAX 40 /* TCP options of a SYN: at most 40 bytes */
#define SYN_WS_MAX 14   /* RFC 7323 2.3: a larger shift counts as 14 */

/* The cookie's low bits: MSS index (2), window scale + 1 (4), SACK (1),
 * period & 3 (2); the hash fills the other 23. */
#define COOKIE_WS_SHIFT 2
#define COOKIE_SACK 0x40
#define COOKIE_PERIOD_SHIFT 7
#define COOKIE_HASH_MASK 0xfffffe00U

/* The options of a client's SYN that a cookie carries. */
struct syn_opts {
	__u16 mss; /* 0: none sent */
	__u8 ws;   /* shift, when has_ws */
	bool has_ws;
	bool sack;
};

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIP_ROUND(v0, v1, v2, v3)        \
	do {                             \
		v0 += v1;                \
		v1 = SIP_ROTL(v1, 13);   \
		v1 ^= v0;                \
		v0 = SIP_ROTL(v0, 32);   \
		v2 += v3;                \
		v3 = SIP_ROTL(v3, 16);   \
		v3 ^= v2;                \
		v0 += v3;                \
		v3 = SIP_ROTL(v3, 21);   \
		v3 ^= v0;                \
		v2 += v1;                \
		v1 = SIP_ROTL(v1, 17);   \
		v1 ^= v2;                \
		v2 = SIP_ROTL(v2, 32);   \
	} while (0)

/* SIP_COMPRESS absorbs one message word with two SipRounds (SipHash-2-4). */
#define SIP_COMPRESS(v0, v1, v2, v3, m)    \
	do {                               \
		v3 ^= (m);                 \
		SIP_ROUND(v0, v1, v2, v3); \
		SIP_ROUND(v0, v1, v2, v3); \
		v0 ^= (m);                 \
	} while (0)

/* The 48-byte message of the cookie hash, as six little-endian words:
 * saddr ‖ daddr ‖ le64(sport | dport << 16 | isn << 32) ‖ le64(period | opts << 32),
 * addresses IPv4-mapped, ports and isn in host order. */
struct syncookie_msg {
	__u64 w[6];
};

/*
 * siphash24_48 is SipHash-2-4 of a syncookie_msg. A subprogram of its own,
 * over aligned words: inlined into the SYN-ACK builder, reading the tuple
 * byte by byte, clang spills past the 512-byte stack.
 */
static __noinline __u64 siphash24_48(const struct syncookie_key *k, const struct syncookie_msg *m)
{
	__u64 v0 = k->k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k->k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k->k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k->k1 ^ 0x7465646279746573ULL;

#pragma unroll
	for (int i = 0; i < 6; i++)
		SIP_COMPRESS(v0, v1, v2, v3, m->w[i]);
	SIP_COMPRESS(v0, v1, v2, v3, 48ULL << 56); /* the final block: the length, no tail bytes */
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* syncookie_hash is the cookie hash of the SYN with tuple t (ports in
 * network order, as parsed), client ISN isn, in period, with option bits
 * opts: packet.synCookieHash. */
static __always_inline __u64 syncookie_hash(const struct syncookie_key *k, const struct tuple *t, __u32 isn,
					    __u32 period, __u32 opts)
{
	struct syncookie_msg m;

	__builtin_memcpy(&m.w[0], t->saddr, 16);
	__builtin_memcpy(&m.w[2], t->daddr, 16);
	m.w[4] = (__u64)bpf_ntohs(t->sport) | (__u64)bpf_ntohs(t->dport) << 16 | (__u64)isn << 32;
	m.w[5] = (__u64)period | (__u64)opts << 32;
	return siphash24_48(k, &m);
}

/* syncookie_opts packs a SYN's options into the cookie's low 7 bits. The
 * MSS index is that of the largest of 536, 1220, 1440, 1460 not above the
 * client's MSS; a SYN without MSS counts as 536 (IPv4) or 1220 (IPv6),
 * the defaults of RFC 9293 3.7.1. */
static __always_inline __u32 syncookie_opts(const struct syn_opts *o, bool is_ipv6)
{
	__u32 mss = o->mss;
	__u32 v;

	if (mss == 0)
		mss = is_ipv6 ? 1220 : 536;
	if (mss >= 1460)
		v = 3;
	else if (mss >= 1440)
		v = 2;
	else if (mss >= 1220)
		v = 1;
	else
		v = 0;
	if (o->has_ws)
		v |= ((__u32)(o->ws > SYN_WS_MAX ? SYN_WS_MAX : o->ws) + 1) << COOKIE_WS_SHIFT;
	if (o->sack)
		v |= COOKIE_SACK;
	return v;
}

/* The walk over a SYN's options: a copy of them, where the walk is, and
 * what it found. */
struct syn_opt_walk {
	__u8 buf[64]; /* the options, zero-padded: read through opt_byte */
	__u32 off;
	__u32 len;
	struct syn_opts o;
};

/* opt_byte reads buf[i & 63]. The barrier hides from clang that i is
 * already below 40, so that it keeps the mask, which is what lets the
 * verifier bound the variable stack offset. */
static __always_inline __u8 opt_byte(const __u8 buf[64], __u32 i)
{
	asm volatile("" : "+r"(i));
	return buf[i & 63];
}

/* syn_opt_step reads the option at w->off: bpf_loop's callback, so that the
 * verifier checks one step once instead of every path through 40 of them.
 * It returns 1 to stop the walk. */
static long syn_opt_step(__u32 index, void *ctx)
{
	struct syn_opt_walk *w = ctx;
	__u32 off = w->off;

	if (off >= w->len || off >= SYN_OPTS_MAX)
		return 1;
	__u8 kind = opt_byte(w->buf, off);
	if (kind == SYN_OPT_EOL)
		return 1;
	if (kind == SYN_OPT_NOP) {
		w->off = off + 1;
		return 0;
	}
	if (off + 2 > w->len)
		return 1;
	__u8 len = opt_byte(w->buf, off + 1);
	if (len < 2 || off + len > w->len)
		return 1;
	if (kind == SYN_OPT_MSS && len == 4) {
		w->o.mss = ((__u16)opt_byte(w->buf, off + 2) << 8) | opt_byte(w->buf, off + 3);
	} else if (kind == SYN_OPT_WS && len == 3) {
		w->o.ws = opt_byte(w->buf, off + 2);
		w->o.has_ws = true;
	} else if (kind == SYN_OPT_SACK_PERM && len == 2) {
		w->o.sack = true;
	}
	w->off = off + len;
	return 0;
}

/*
 * syn_parse_options reads the MSS, window scale and SACK-permitted options
 * of the SYN whose TCP header is at tcp (its hdr_len bytes lie in the frame:
 * parse_ports checked). The options are copied to the stack first, four
 * bytes at a time (their length is a multiple of four), so that the walk
 * reads at variable offsets from a fixed buffer, not the packet. Every step
 * consumes a byte at least, so SYN_OPTS_MAX steps (bpf_loop, Linux 5.17)
 * reach the end. Other options, timestamps included, are skipped; a
 * malformed length ends the walk with what was found so far. A subprogram,
 * so that its buffer is not on the stack with the builder's temporaries.
 */
static __noinline void syn_parse_options(const __u8 *tcp, const void *end, __u32 hdr_len,
					 struct syn_opts *o)
{
	struct syn_opt_walk w = {};
	__u32 optlen = hdr_len - 20;

	if (optlen == 0 || optlen > SYN_OPTS_MAX)
		return;
#pragma unroll
	for (int i = 0; i < SYN_OPTS_MAX / 4; i++) {
		if ((__u32)i * 4 >= optlen)
			break;
		if ((void *)(tcp + 20 + i * 4 + 4) > end)
			break;
		__builtin_memcpy(&w.buf[i * 4], tcp + 20 + i * 4, 4);
	}
	w.len = optlen;
	bpf_loop(SYN_OPTS_MAX, syn_opt_step, &w, 0);
	*o = w.o;
}

/* The TCP header of the SYN-ACK, built on the stack: 20 bytes and at most
 * 12 of options. Unused option bytes stay zero, so the checksum can sum the
 * whole struct whatever the header's length. */
struct synack_tcp {
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack;
	__u8 doff;
	__u8 flags;
	__be16 window;
	__u16 check;
	__be16 urg;
	__u8 opts[12];
};

/*
 * synack_csum returns the TCP checksum of th, tcplen bytes long, for the
 * pseudo-header of t's addresses (swapped: the sum does not care). A
 * subprogram: inlined, clang loads the 16 address words early and spills
 * them all.
 */
static __noinline __u16 synack_csum(const struct tuple *t, const struct synack_tcp *th, __u32 tcplen,
				    bool is_ipv6)
{
	__u64 sum = bpf_htons(IPPROTO_TCP) + bpf_htons(tcplen);
	const __u16 *sa = (const __u16 *)t->saddr;
	const __u16 *da = (const __u16 *)t->daddr;
	const __u16 *words = (const __u16 *)th;

	if (is_ipv6) {
#pragma unroll
		for (int i = 0; i < 8; i++)
			sum += sa[i] + da[i];
	} else {
		sum += sa[6] + sa[7] + da[6] + da[7];
	}
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*th) / 2); i++)
		sum += words[i];
	return ~csum_fold(sum);
}

/*
 * synproxy_answer turns the SYN in the frame, untagged IPv4 without options
 * (is_ipv6 false) or IPv6 without extension headers, into its SYN-ACK
 * cookie, in place: MACs, addresses and ports swapped, payload and options
 * replaced, the frame cut or grown to the new length with
 * bpf_xdp_adjust_tail (which generic XDP supports too). It returns
 * XDP_REDIRECT to the ingress interface,
 * SYN_STEER when it left the frame untouched (no key, no room to grow), or
 * XDP_ABORTED when the frame was not what it just made it (cannot happen).
 */
static __always_inline int synproxy_answer(struct xdp_md *ctx, const struct tuple *t,
					   const struct syn_opts *o, bool is_ipv6)
{
	const __u32 l4off = ETH_HLEN + (is_ipv6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *tcp = data + l4off;
	__u32 zero = 0;

	if ((void *)(tcp + 20) > end)
		return SYN_STEER;
	struct syncookie_key *key = bpf_map_lookup_elem(&syncookie_keys, &zero);
	struct syn_config *cfg = bpf_map_lookup_elem(&syn_cfg, &zero);
	if (!key || !cfg)
		return SYN_STEER;

	__u32 isn = bpf_ntohl(*(__be32 *)(tcp + 4));
	__u32 period = bpf_ktime_get_coarse_ns() >> SYNCOOKIE_CLOCK_SHIFT;
	__u32 opts = syncookie_opts(o, is_ipv6);
	__u64 h = syncookie_hash(key, t, isn, period, opts);
	__u32 cookie = ((__u32)h & COOKIE_HASH_MASK) | (period & 3) << COOKIE_PERIOD_SHIFT | opts;

	struct synack_tcp th = {};
	__u16 mss = is_ipv6 ? cfg->mss6 : cfg->mss4;
	if (mss == 0)
		mss = is_ipv6 ? SYNPROXY_MSS6 : SYNPROXY_MSS4;
	__u32 optlen = 4;
	th.sport = t->dport;
	th.dport = t->sport;
	th.seq = bpf_htonl(cookie);
	th.ack = bpf_htonl(isn + 1);
	th.flags = SYN_TCP_SYNACK;
	th.window = bpf_htons(SYNPROXY_WINDOW);
	th.opts[0] = SYN_OPT_MSS;
	th.opts[1] = 4;
	th.opts[2] = mss >> 8;
	th.opts[3] = mss & 0xff;
	if (o->has_ws) {
		th.opts[4] = SYN_OPT_NOP;
		th.opts[5] = SYN_OPT_WS;
		th.opts[6] = 3;
		th.opts[7] = SYNPROXY_WSCALE;
		optlen = 8;
	}
	if (o->sack) {
		/* At the next free place, by a branch rather than a variable
		 * offset into the stack. */
		if (optlen == 4) {
			th.opts[4] = SYN_OPT_NOP;
			th.opts[5] = SYN_OPT_NOP;
			th.opts[6] = SYN_OPT_SACK_PERM;
			th.opts[7] = 2;
		} else {
			th.opts[8] = SYN_OPT_NOP;
			th.opts[9] = SYN_OPT_NOP;
			th.opts[10] = SYN_OPT_SACK_PERM;
			th.opts[11] = 2;
		}
		optlen += 4;
	}
	__u32 tcplen = 20 + optlen;
	th.doff = (tcplen / 4) << 4;

	th.check = synack_csum(t, &th, tcplen, is_ipv6);

	/* Cut or grow the frame to its new length; the headers before the
	 * options stay where they are. */
	int delta = (int)(l4off + tcplen) - (int)(end - data);
	if (delta != 0 && bpf_xdp_adjust_tail(ctx, delta))
		return SYN_STEER;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	tcp = data + l4off;
	if ((void *)(tcp + 20) > end)
		return XDP_ABORTED;

	struct ethhdr *eth = data;
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	if (is_ipv6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		*(__be32 *)ip6 = bpf_htonl(6U << 28);
		ip6->payload_len = bpf_htons(tcplen);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = SYNPROXY_TTL;
		__builtin_memcpy(&ip6->saddr, t->daddr, 16);
		__builtin_memcpy(&ip6->daddr, t->saddr, 16);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0;
		ip->tot_len = bpf_htons(sizeof(struct iphdr) + tcplen);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = SYNPROXY_TTL;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		__builtin_memcpy(&ip->saddr, &t->daddr[12], 4);
		__builtin_memcpy(&ip->daddr, &t->saddr[12], 4);
		ip->check = csum_ipv4_header((const __u16 *)ip);
	}

	__builtin_memcpy(tcp, &th, 20);
	if ((void *)(tcp + 24) > end)
		return XDP_ABORTED;
	__builtin_memcpy(tcp + 20, &th.opts[0], 4);
	if (optlen >= 8) {
		if ((void *)(tcp + 28) > end)
			return XDP_ABORTED;
		__builtin_memcpy(tcp + 24, &th.opts[4], 4);
	}
	if (optlen >= 12) {
		if ((void *)(tcp + 32) > end)
			return XDP_ABORTED;
		__builtin_memcpy(tcp + 28, &th.opts[8], 4);
	}
	/* Not XDP_TX: a veth queues XDP_TX frames on its peer's ring but wakes
	 * the peer only when the peer runs an XDP program of its own
	 * (veth_xdp_flush), so a SYN-ACK would wait there for the next frame
	 * toward the client. A redirect to the ingress interface goes through
	 * ndo_xdp_xmit, which flushes, and works in generic mode as well. */
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

/* The builders are subprograms of their own (BPF-to-BPF calls), so that
 * their stack frame does not add to the steering program's. */
static __noinline int synproxy_answer4(struct xdp_md *ctx, const struct tuple *t, const struct syn_opts *o)
{
	return synproxy_answer(ctx, t, o, false);
}

static __noinline int synproxy_answer6(struct xdp_md *ctx, const struct tuple *t, const struct syn_opts *o)
{
	return synproxy_answer(ctx, t, o, true);
}

/*
 * syn_admit takes a token from this CPU's bucket: SYN_ADMITTED when the
 * SYN is within the rate, XDP_DROP when it is over it, SYN_STEER when there
 * is no limit (bucket.h).
 */
static __always_inline int syn_admit(void)
{
	__u32 zero = 0;
	struct syn_config *cfg = bpf_map_lookup_elem(&syn_cfg, &zero);
	if (!cfg || cfg->rate == 0)
		return SYN_STEER; /* no budget: the steering meter applies */
	struct syn_bucket *b = bpf_map_lookup_elem(&syn_buckets, &zero);
	if (!b)
		return SYN_STEER;

	if (!bucket_take(&b->credit, &b->last, cfg->rate, cfg->burst))
		return XDP_DROP;
	return SYN_ADMITTED;
}

static __always_inline void count_service_syn(__u32 service_id)
{
	__u64 *n = bpf_map_lookup_elem(&service_syns, &service_id);

	if (n)
		*n += 1;
}

/*
 * syn_guard decides on a TCP packet with tuple t to the virtual service
 * with entry vip (a copy) whose transport header is at offset l4off
 * (checked by parse_ports). It returns SYN_STEER for anything but a SYN
 * and for SYNs steered without a SYN budget (none set, or not a plain
 * frame), SYN_ADMITTED for SYNs the budget admitted, or the action of a SYN answered
 * (sent back, counted syncookie_sent) or dropped (XDP_DROP, syn_throttled).
 * A global function: the verifier checks it once, not once for every path
 * of the parser that reaches it.
 */
__noinline int syn_guard(struct xdp_md *ctx, __u32 l4off, const struct tuple *t, __u32 service_id,
			 __u32 flags)
{
	if (!t)
		return SYN_STEER;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	/* VLAN tags, IPv4 options and IPv6 extension headers: the largest
	 * offset parse_eth and parse_ipv6 allow is far below this bound. */
	if (l4off > 1024)
		return SYN_STEER;
	const __u8 *l4 = data + l4off;
	if ((void *)(l4 + 20) > end)
		return SYN_STEER;
	if ((l4[13] & (SYN_TCP_SYN | SYN_TCP_ACK | SYN_TCP_RST)) != SYN_TCP_SYN)
		return SYN_STEER;
	count_service_syn(service_id);

	/* Only plain frames: no VLAN tag, no IPv4 options, no IPv6 extension
	 * headers, no fragment. */
	struct ethhdr *eth = data;
	bool is_ipv6;
	if ((void *)(eth + 1) > end)
		return SYN_STEER;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && l4off == ETH_HLEN + sizeof(struct iphdr)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || (ip->frag_off & bpf_htons(0x3fff)))
			return SYN_STEER;
		is_ipv6 = false;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6) && l4off == ETH_HLEN + sizeof(struct ipv6hdr)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return SYN_STEER;
		is_ipv6 = true;
	} else {
		return SYN_STEER;
	}

	if (!(flags & VIP_SYNPROXY_ON)) {
		int admit = syn_admit();
		if (admit != XDP_DROP)
			return admit;
		if (!(flags & VIP_SYNPROXY_CAPABLE)) {
			/* DR or TUN with mh and sloppy: forwarded by the
			 * service's Maglev table rather than dropped. */
			int act = spread_syn(ctx, t, service_id, is_ipv6);
			if (act != SPREAD_NONE)
				return act;
			count(syn_throttled);
			return XDP_DROP;
		}
	}
	/* The options are read here, not in the builder, so that the
	 * walk's frame and the builder's are never on the stack together. */
	struct syn_opts o = {};
	syn_parse_options(l4, end, (l4[12] >> 4) * 4, &o);
	int act = is_ipv6 ? synproxy_answer6(ctx, t, &o) : synproxy_answer4(ctx, t, &o);
	if (act != SYN_STEER)
		count(syncookie_sent);
	return act;
}

#endif /* GOVS_SYNPROXY_H */
