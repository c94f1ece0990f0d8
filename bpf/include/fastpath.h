// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The XDP fast path: established connections forwarded without leaving the
 * driver. The workers stay the authority on every connection: they schedule
 * it, track its state and decide when it ends. Once a connection is
 * established (TCP) or has seen its first packet (UDP), the owning worker
 * writes one flow entry per direction that passes the director: how to
 * rewrite the packet and where to send it. The steering program then
 * rewrites and redirects packets of that direction itself; SYN, FIN and RST
 * segments, fragments, VLAN-tagged frames, IPv6 packets with extension
 * headers and packets too big to encapsulate still go to the workers, which
 * drive the TCP state machine and delete the entries when the connection
 * leaves ESTABLISHED or expires. The program stamps each entry with when it
 * last saw a packet, which the workers read before expiring a connection,
 * and counts packets and bytes per real server for ipvsadm --stats. A packet
 * that comes after the connection's idle timeout goes to the workers, which
 * decide, as for any packet, whether its connection still lives (the other
 * direction may have kept it alive) or a new one starts.
 *
 * A SYN-proxied TCP connection (the director answered the client's SYN with
 * a cookie, the real server chose another ISN) needs its sequence numbers
 * translated for its whole life: its entries carry FLOW_SEQ_ADJ, and the
 * program moves seq, ack and the window as packet.AdjustTCP does in the
 * workers. Segments with TCP options go to the workers then, since SACK
 * blocks quote sequence numbers too and walking options here is not worth
 * its verifier cost on the common path; timestamps alone, in Linux's
 * layout, are the exception. The PROXY header's shift (full-NAT with
 * proxy_protocol) is the same translation.
 *
 * The entries also tell the steering meter (steer.c) which flows the
 * workers know: a FLOW_STEER entry forwards nothing, it only lets its
 * flow's packets reach the workers past the meter; with the fast path off
 * every entry acts so.
 *
 * Entries are a cache: a worker can always rebuild one, so the control plane
 * invalidates them all at once (a service or next-hop change) by bumping the
 * generation in fast_cfg; entries of an older generation are ignored.
 */
#ifndef GOVS_FASTPATH_H
#define GOVS_FASTPATH_H

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
#include "counters.h"

/* flow_action.flags */
#define FLOW_SET_SRC 0x01 /* rewrite the source address and port (SNAT, full-NAT) */
#define FLOW_SET_DST 0x02 /* rewrite the destination address and port (DNAT, full-NAT) */
#define FLOW_ENCAP 0x04   /* IP-in-IP encapsulate (LVS-TUN), outer addresses saddr -> daddr */
#define FLOW_REPLY 0x08   /* a reply: counted as outgoing */
#define FLOW_SEQ_ADJ 0x10 /* TCP sequence translation (SYN proxy): seq_add, ack_add, win_shift */
#define FLOW_STEER 0x20   /* steer-only: a known flow whose packets go to the workers, unmetered */

/* Real servers with a fast-path counter slot: ids below this. */
#define FAST_DESTS 16384

/* last_seen is rewritten at most this often (~67 ms), so that a flow's
 * packets on several CPUs do not fight over the entry's cache line. */
#define FLOW_TOUCH_NS (1ULL << 26)

/* TTL and hop limit of the outer header of an encapsulated packet. */
#define OUTER_TTL 64

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* NOP, NOP, then the timestamps option's kind (8) and length (10): how
 * Linux starts the options of a segment that carries timestamps alone. */
#define TCP_OPT_NOP_NOP_TS 0x0101080a

/* An IPv6 packet as received; ports in network order. */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3]; /* always 0 */
};

/* An IPv4 packet as received: 16 bytes, not flow_key's 40, since the
 * hash map's jhash over the key is a good part of the fast path's cost
 * and most traffic is IPv4. */
struct flow_key4 {
	__u8 saddr[4];
	__u8 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3]; /* always 0 */
};

struct flow_action {
	__u8 saddr[16];   /* new source (FLOW_SET_SRC) or outer source (FLOW_ENCAP) */
	__u8 daddr[16];   /* new destination (FLOW_SET_DST) or outer destination (FLOW_ENCAP) */
	__be16 sport;     /* new source port (FLOW_SET_SRC) */
	__be16 dport;     /* new destination port (FLOW_SET_DST) */
	__u8 dmac[6];     /* next hop */
	__u8 smac[6];     /* egress interface */
	__u32 ifindex;    /* egress interface */
	__u32 dest_id;    /* fast_stats slot of the real server */
	__u32 gen;        /* fast_config.gen when written */
	__u32 flow_label; /* outer IPv6 flow label (FLOW_ENCAP), host order */
	__u16 max_l3_len; /* longer IP packets go to the workers (FLOW_ENCAP: path MTU) */
	__u8 flags;       /* FLOW_* */
	__s8 win_shift;   /* FLOW_SEQ_ADJ: window << win_shift (saturating), >> -win_shift if negative */
	__u32 seq_add;    /* FLOW_SEQ_ADJ: added to the sequence number, host order, modulo 2^32 */
	__u32 ack_add;    /* FLOW_SEQ_ADJ: added to the acknowledgement number (ACK set), host order */
	__u32 pad;
	__u64 last_seen;  /* CLOCK_MONOTONIC ns of a recent packet: set by the worker, then here */
	__u64 idle_timeout; /* ns, at most INT64_MAX: a packet after this long idle goes to the workers */
};

/* IPv6 flows: flow_key -> how to forward them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 21); /* the control plane sizes it to its connection table */
	__type(key, struct flow_key);
	__type(value, struct flow_action);
} flows SEC(".maps");

/* IPv4 flows: flow_key4 -> how to forward them; sized as flows. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 21);
	__type(key, struct flow_key4);
	__type(value, struct flow_action);
} flows4 SEC(".maps");

struct fast_config {
	__u32 enabled;
	__u32 gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fast_config);
} fast_cfg SEC(".maps");

struct dest_counters {
	__u64 in_pkts;
	__u64 in_bytes;
	__u64 out_pkts;
	__u64 out_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAST_DESTS);
	__type(key, __u32);
	__type(value, struct dest_counters);
} fast_stats SEC(".maps");

/* Verdicts of fast_forward besides an XDP action. */
#define FAST_NO -1 /* not a fast-path packet: steer it to the workers */
#define FAST_STEER -2       /* a known flow's packet for the workers: steer it, unmetered */
#define FAST_STEER_REPLY -3 /* the same, of a reply direction (FLOW_REPLY) */

/* ecn_encapsulate: DSCP copied, ECN copied except CE, which becomes ECT(0)
 * (RFC 6040 normal mode), as the workers' encapsulation does. */
static __always_inline __u8 ecn_encapsulate(__u8 ds)
{
	if ((ds & 3) == 3)
		return (ds & ~3) | 2;
	return ds;
}

/*
 * rewrite_l4 rewrites the ports, and the transport checksum for them and for
 * the difference addr_d of the addresses (the pseudo-header) and of a
 * translated TCP segment's sequence numbers and window, as the workers do: an
 * IPv4 UDP checksum of zero (none) stays zero, a computed zero becomes
 * 0xffff.
 */
static __always_inline void rewrite_l4(__u16 *ports, __u16 *csum, bool udp, bool v4,
				       const struct flow_action *a, __u64 addr_d)
{
	__u64 d = addr_d;

	if (a->flags & FLOW_SET_SRC)
		d = csum_delta16(d, ports[0], a->sport);
	if (a->flags & FLOW_SET_DST)
		d = csum_delta16(d, ports[1], a->dport);
	if (!(udp && v4 && *csum == 0)) {
		__u16 c = csum_apply(*csum, d);
		if (udp && c == 0)
			c = 0xffff;
		*csum = c;
	}
	if (a->flags & FLOW_SET_SRC)
		ports[0] = a->sport;
	if (a->flags & FLOW_SET_DST)
		ports[1] = a->dport;
}

/* csum_delta32 adds to sum the difference of replacing the 32-bit field
 * old by new, both as they lie in the packet. */
static __always_inline __u64 csum_delta32(__u64 sum, __u32 old, __u32 new)
{
	sum = csum_delta16(sum, (__u16)old, (__u16)new);
	return csum_delta16(sum, (__u16)(old >> 16), (__u16)(new >> 16));
}

/*
 * seq_adjust translates the sequence numbers of a SYN-proxied connection's
 * TCP segment without options at l4 (the caller checked its 20 bytes), as
 * packet.AdjustTCP does: seq += seq_add; when ACK is set, ack += ack_add;
 * the window rescaled by win_shift. It returns sum plus the checksum
 * difference; every word counts even when its offset is zero, as in
 * AdjustTCP, so that both write the same checksum bytes.
 */
static __always_inline __u64 seq_adjust(__u8 *l4, const struct flow_action *a, __u64 sum)
{
	__u32 *seq = (__u32 *)(l4 + 4);
	__u32 *ack = (__u32 *)(l4 + 8);
	__u16 *win = (__u16 *)(l4 + 14);
	__u32 old = *seq;
	__u32 v = bpf_htonl(bpf_ntohl(old) + a->seq_add);

	sum = csum_delta32(sum, old, v);
	*seq = v;
	if (l4[13] & TCP_FLAG_ACK) {
		old = *ack;
		v = bpf_htonl(bpf_ntohl(old) + a->ack_add);
		sum = csum_delta32(sum, old, v);
		*ack = v;
	}

	/* A 16-bit window shifted 16 or more places saturates or vanishes. */
	__u16 old_win = *win;
	__u32 w = bpf_ntohs(old_win);
	int shift = a->win_shift;
	if (shift > 0) {
		if (shift > 16)
			shift = 16;
		w <<= shift;
		if (w > 0xffff)
			w = 0xffff;
	} else if (shift < 0) {
		shift = -shift;
		if (shift > 16)
			shift = 16;
		w >>= shift;
	}
	__u16 new_win = bpf_htons((__u16)w);
	*win = new_win;
	return csum_delta16(sum, old_win, new_win);
}

/* encap4 puts an outer IPv4 header before the inner IPv4 packet of l3len
 * bytes at data + ETH_HLEN, replacing the Ethernet header. */
static __always_inline int encap4(struct xdp_md *ctx, const struct flow_action *a, __u32 l3len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *inner = data + ETH_HLEN;

	if ((void *)(inner + 1) > end)
		return XDP_ABORTED;
	__u8 tos = ecn_encapsulate(inner->tos);
	__be16 df = inner->frag_off & bpf_htons(0x4000);
	int pad = (int)(end - data) - (int)(ETH_HLEN + l3len);

	/* Ethernet padding of a short frame is not part of the packet. */
	if (pad > 0 && bpf_xdp_adjust_tail(ctx, -pad))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, a->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, a->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = bpf_htons(l3len + sizeof(struct iphdr));
	outer->id = (__be16)bpf_get_prandom_u32();
	outer->frag_off = df;
	outer->ttl = OUTER_TTL;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	__builtin_memcpy(&outer->saddr, &a->saddr[12], 4);
	__builtin_memcpy(&outer->daddr, &a->daddr[12], 4);
	outer->check = csum_ipv4_header((const __u16 *)outer);
	return XDP_PASS; /* done: the caller redirects */
}

/* encap6 puts an outer IPv6 header before the inner IPv6 packet. */
static __always_inline int encap6(struct xdp_md *ctx, const struct flow_action *a, __u32 l3len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *inner = data + ETH_HLEN;

	if ((void *)(inner + sizeof(struct ipv6hdr)) > end)
		return XDP_ABORTED;
	__u8 tc = ecn_encapsulate((inner[0] << 4) | (inner[1] >> 4));
	int pad = (int)(end - data) - (int)(ETH_HLEN + l3len);

	if (pad > 0 && bpf_xdp_adjust_tail(ctx, -pad))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, a->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, a->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)outer = bpf_htonl((6U << 28) | ((__u32)tc << 20) | (a->flow_label & 0xfffff));
	outer->payload_len = bpf_htons(l3len);
	outer->nexthdr = IPPROTO_IPV6;
	outer->hop_limit = OUTER_TTL;
	__builtin_memcpy(&outer->saddr, a->saddr, 16);
	__builtin_memcpy(&outer->daddr, a->daddr, 16);
	return XDP_PASS;
}

/*
 * Unfinished checksums. A sender with transmit checksum offload (a veth or
 * tap with its default offloads: containers, namespaces) hands over TCP and
 * UDP segments whose checksum field holds only the folded pseudo-header
 * sum, not complemented (CHECKSUM_PARTIAL): the NIC would finish it. XDP
 * sees the bytes so, and the receiver of a redirected frame verifies its
 * checksum, so the program finishes it (packet.FinishL4Checksum does the
 * same in the workers): the field equals the folded pseudo-header sum, and
 * the sum over the transport header and payload, field included, is then
 * the full one. A complete checksum equal to that sum by chance comes out
 * the same. Segments longer than CSUM_FINISH_MAX go to the workers.
 */
#define CSUM_BLOCK 512 /* bpf_csum_diff takes at most 512 bytes */
#define CSUM_FINISH_BLOCKS 8
#define CSUM_FINISH_MAX (CSUM_FINISH_BLOCKS * CSUM_BLOCK)

/* pseudo_sum returns the unfolded pseudo-header sum, words as they lie in
 * memory: n 16-bit words of each address, the protocol and the length. */
static __always_inline __u64 pseudo_sum(const __u16 *saddr, const __u16 *daddr, int n, __u8 proto, __u32 len)
{
	__u64 sum = bpf_htons((__u16)proto) + bpf_htons((__u16)len);

#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= n)
			break;
		sum += saddr[i];
		sum += daddr[i];
	}
	return sum;
}

#define CSUM_ADD(n)                                                              \
	if (left & (n)) {                                                        \
		if ((void *)(p + (n)) > end)                                     \
			return -1;                                               \
		sum += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)p, (n), 0);      \
		p += (n);                                                        \
	}

/*
 * csum_finish finishes the unfinished checksum (the caller checked it)
 * of the l4len-byte TCP or UDP segment at offset l4off, whose checksum
 * field is at l4off + field: 6 for UDP, 16 for TCP. It returns 1, or -1
 * when it cannot (too long, or the frame ends before the segment): the
 * workers finish it then. A global function: the verifier checks it
 * once, not once for every path of fast_forward that calls it; it changes
 * no packet pointer of the caller (no helper that moves the packet).
 */
__noinline int csum_finish(struct xdp_md *ctx, __u32 l4off, __u32 l4len, __u32 field)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	/* VLAN tags aside, IPv4 options are the longest headers before the
	 * segment: far below this bound. */
	if (l4off > 1024)
		return -1;
	if (l4len > CSUM_FINISH_MAX)
		return -1;
	if (field != 6 && field != 16)
		return -1;
	/* Keep the bounds in the registers the verifier checks. */
	asm volatile("" : "+r"(l4off), "+r"(l4len));
	l4off &= 2047;
	l4len &= 2 * CSUM_FINISH_MAX - 1;
	__u8 *l4 = data + l4off;
	if ((void *)(l4 + 8) > end || (void *)(l4 + l4len) > end)
		return -1;

	__u8 *p = l4;
	__u32 left = l4len;
	__u64 sum = 0;
	for (int i = 0; i < CSUM_FINISH_BLOCKS; i++) {
		if (left < CSUM_BLOCK)
			break;
		if ((void *)(p + CSUM_BLOCK) > end)
			return -1;
		sum += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)p, CSUM_BLOCK, 0);
		p += CSUM_BLOCK;
		left -= CSUM_BLOCK;
	}
	CSUM_ADD(256)
	CSUM_ADD(128)
	CSUM_ADD(64)
	CSUM_ADD(32)
	CSUM_ADD(16)
	CSUM_ADD(8)
	CSUM_ADD(4)
	if (left & 2) {
		if ((void *)(p + 2) > end)
			return -1;
		sum += *(__u16 *)p;
		p += 2;
	}
	if (left & 1) {
		if ((void *)(p + 1) > end)
			return -1;
		sum += bpf_htons((__u16)(*p << 8)); /* padded with a zero byte */
	}
	/* The field held the pseudo-header sum: sum is the full sum. */
	__u16 c = ~csum_fold(sum);
	if (field == 6 && c == 0)
		c = 0xffff; /* UDP sends a computed 0 as 0xffff */
	if (field == 6) {
		if ((void *)(l4 + 8) > end)
			return -1;
		*(__u16 *)(l4 + 6) = c;
	} else {
		if ((void *)(l4 + 20) > end)
			return -1;
		*(__u16 *)(l4 + 16) = c;
	}
	return 1;
}
#undef CSUM_ADD

static __always_inline void fast_count(const struct flow_action *a, __u32 bytes)
{
	__u32 slot = a->dest_id;
	struct dest_counters *dc = bpf_map_lookup_elem(&fast_stats, &slot);

	if (!dc)
		return;
	if (a->flags & FLOW_REPLY) {
		dc->out_pkts++;
		dc->out_bytes += bytes;
	} else {
		dc->in_pkts++;
		dc->in_bytes += bytes;
	}
}

/* ip4_dec_ttl decrements an IPv4 packet's TTL, folding the change into the
 * header checksum together with delta (the sum of the header's other
 * changes, from csum_delta_words; 0 for none). */
static __always_inline void ip4_dec_ttl(struct iphdr *ip, __u64 delta)
{
	__u16 *ttl_word = (__u16 *)&ip->ttl;
	__u16 old_ttl = *ttl_word;
	ip->ttl--;
	ip->check = csum_apply(ip->check, csum_delta16(delta, old_ttl, *ttl_word));
}

/* flow_out sends a frame the program forwards on as action a says: TUN's
 * encapsulation (l3len: the packet's length) or the next hop's MACs, then
 * the redirect to a->ifindex. It returns the XDP action: encapsulation's
 * when that fails (XDP_ABORTED, XDP_DROP), else the redirect's. eth is the
 * frame's Ethernet header, checked by the caller. */
static __always_inline int flow_out(struct xdp_md *ctx, struct ethhdr *eth, const struct flow_action *a, __u32 l3len,
				    bool is_ipv6)
{
	if (a->flags & FLOW_ENCAP) {
		int act = is_ipv6 ? encap6(ctx, a, l3len) : encap4(ctx, a, l3len);
		if (act != XDP_PASS)
			return act;
	} else {
		__builtin_memcpy(eth->h_dest, a->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, a->smac, ETH_ALEN);
	}
	/* A redirect even when the egress is the ingress interface: a veth
	 * wakes its peer for XDP_TX frames only when the peer runs an XDP
	 * program (veth_xdp_flush), while ndo_xdp_xmit always flushes. */
	return bpf_redirect(a->ifindex, 0);
}

/* flow_lookup returns the entry of the packet's flow, t being its tuple
 * (IPv4-mapped addresses for IPv4): in flows4 for IPv4, flows for IPv6. */
static __always_inline struct flow_action *flow_lookup(const struct tuple *t, bool is_ipv6)
{
	if (!is_ipv6) {
		struct flow_key4 key = {};
		__builtin_memcpy(key.saddr, &t->saddr[12], 4);
		__builtin_memcpy(key.daddr, &t->daddr[12], 4);
		key.sport = t->sport;
		key.dport = t->dport;
		key.proto = t->proto;
		return bpf_map_lookup_elem(&flows4, &key);
	}
	struct flow_key key = {};
	__builtin_memcpy(key.saddr, t->saddr, 16);
	__builtin_memcpy(key.daddr, t->daddr, 16);
	key.sport = t->sport;
	key.dport = t->dport;
	key.proto = t->proto;
	return bpf_map_lookup_elem(&flows, &key);
}

/*
 * finish_unfinished finishes the checksum of the l4len-byte segment at
 * l4off (field: its offset there, 6 for UDP, 16 for TCP) when it is
 * unfinished, that is when it holds only the folded pseudo-header sum
 * pseudo, as a sender with TX checksum offload leaves it (counted
 * fast_csum_finished). It returns 0 when there was nothing to finish, 1
 * when it finished it, -1 when it could not (csum_finish). Packet
 * pointers stay valid.
 */
static __always_inline int finish_unfinished(struct xdp_md *ctx, __u16 csum, __u64 pseudo, __u32 l4off, __u32 l4len,
					     __u32 field)
{
	if (csum != csum_fold(pseudo))
		return 0;
	if (csum_finish(ctx, l4off, l4len, field) < 0)
		return -1;
	count(fast_csum_finished);
	return 1;
}

/*
 * fast_forward forwards a packet of an established flow: t is its tuple as
 * classify parsed it. It returns the XDP action; FAST_NO when the packet is
 * not of a flow the workers know, or is a SYN (it is then untouched); or
 * FAST_STEER / FAST_STEER_REPLY when it is one of a known flow's packets
 * that go to the workers all the same: the entry is FLOW_STEER (its
 * traffic stays on the workers), the fast path is off, or the packet is
 * one the workers must see (FIN, RST, a fragment, TTL 1, too long, options
 * of a translated segment). Those bypass the steering meter (steer.c).
 *
 * The flow lookup happens whenever fast_cfg exists, enabled or not, for the
 * known-flow check: with the fast path off every TCP and UDP packet that
 * reaches it pays one hash lookup, in flows4 or flows.
 */
static __always_inline int fast_forward(struct xdp_md *ctx, const struct tuple *t, bool is_ipv6)
{
	__u32 zero = 0;
	struct fast_config *cfg = bpf_map_lookup_elem(&fast_cfg, &zero);

	if (!cfg)
		return FAST_NO;
	if (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP)
		return FAST_NO;

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return FAST_NO;
	__u32 frame_len = end - data;
	struct iphdr *ip = (void *)(eth + 1);
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u8 *l4;
	__u32 l3len;
	bool slow = false; /* a known flow's packet, but one for the workers */

	if (!is_ipv6) {
		if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > end)
			return FAST_NO; /* VLAN-tagged */
		if (ip->frag_off & bpf_htons(0x3fff))
			slow = true; /* a fragment */
		if (ip->ttl <= 1)
			slow = true; /* the workers drop and count it */
		l3len = bpf_ntohs(ip->tot_len);
		l4 = (__u8 *)ip + ip->ihl * 4;
	} else {
		if (eth->h_proto != bpf_htons(ETH_P_IPV6) || (void *)(ip6 + 1) > end)
			return FAST_NO;
		if (ip6->nexthdr != t->proto)
			return FAST_NO; /* extension headers */
		if (ip6->hop_limit <= 1)
			slow = true;
		l3len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		l4 = (__u8 *)(ip6 + 1);
	}
	bool udp = t->proto == IPPROTO_UDP;
	__u16 *csum;
	if (udp) {
		if ((void *)(l4 + 8) > end)
			return FAST_NO;
		csum = (__u16 *)(l4 + 6);
	} else {
		if ((void *)(l4 + 20) > end)
			return FAST_NO;
		if (l4[13] & TCP_FLAG_SYN)
			return FAST_NO; /* SYNs meet the SYN defence */
		if (l4[13] & (TCP_FLAG_FIN | TCP_FLAG_RST))
			slow = true; /* the workers track the state */
		csum = (__u16 *)(l4 + 16);
	}

	struct flow_action *a = flow_lookup(t, is_ipv6);
	if (!a || a->gen != cfg->gen)
		return FAST_NO;
	/* The coarse clock (CLOCK_MONOTONIC_COARSE, one tick behind at most)
	 * costs a fraction of bpf_ktime_get_ns's TSC read, and ticks are fine
	 * for timeouts of seconds. It may lag the worker's stamp (signed
	 * differences, so a lag reads as "just seen"). A steer-only entry is
	 * not stamped here (the workers see its packets), so its idle time is
	 * not checked either. */
	int known = (a->flags & FLOW_REPLY) ? FAST_STEER_REPLY : FAST_STEER;
	if ((a->flags & FLOW_STEER) || !cfg->enabled || slow)
		return known;
	__u64 now = bpf_ktime_get_coarse_ns();
	if ((__s64)(now - a->last_seen) > (__s64)a->idle_timeout)
		return FAST_NO; /* the workers decide whether it still lives */
	if (l3len > a->max_l3_len)
		return known; /* the workers answer "fragmentation needed" */

	/* An unfinished checksum (a sender with TX checksum offload) is
	 * finished before the incremental rewrites, in every mode: DR and
	 * TUN pass the segment on as it is. An IPv4 UDP checksum of 0 is
	 * none. */
	if (*csum != 0) {
		__u32 l4len;
		__u64 pseudo;
		if (!is_ipv6) {
			l4len = l3len - ip->ihl * 4;
			pseudo = pseudo_sum((__u16 *)&ip->saddr, (__u16 *)&ip->daddr, 2, t->proto, l4len);
		} else {
			l4len = l3len - sizeof(*ip6);
			pseudo = pseudo_sum((__u16 *)&ip6->saddr, (__u16 *)&ip6->daddr, 8, t->proto, l4len);
		}
		if (finish_unfinished(ctx, *csum, pseudo, (__u32)(l4 - (__u8 *)data), l4len, udp ? 6 : 16) < 0)
			return known; /* the workers finish it */
	}

	/* A translated segment with options (SACK blocks quote sequence
	 * numbers) goes to the workers, and so does a header shorter than 20
	 * bytes, which they drop; except the one option set nearly every
	 * segment of a Linux peer carries, timestamps alone as Linux lays
	 * them out (NOP, NOP, TS: a 32-byte header), which quote no sequence
	 * number. The checks and the translation share one branch, and the
	 * bounds are checked again in it, so that the verifier sees them on
	 * the TCP path alone; the translation's checksum difference joins the
	 * addresses' in rewrite_l4. */
	__u64 l4_d = 0;
	if (a->flags & FLOW_SEQ_ADJ) {
		if (udp || (void *)(l4 + 20) > end)
			return known;
		__u8 doff = l4[12] >> 4;
		if (doff != 5) {
			if (doff != 8 || (void *)(l4 + 32) > end ||
			    *(__u32 *)(l4 + 20) != bpf_htonl(TCP_OPT_NOP_NOP_TS))
				return known;
		}
		l4_d = seq_adjust(l4, a, 0);
	}

	/* From here on the packet is ours. */
	__u16 *ports = (__u16 *)l4;
	__u8 rewrite = a->flags & (FLOW_SET_SRC | FLOW_SET_DST | FLOW_SEQ_ADJ);
	if (!is_ipv6) {
		__u64 addr_d = 0;
		if (a->flags & FLOW_SET_SRC)
			addr_d = csum_delta_words(addr_d, (__u16 *)&ip->saddr, (const __u16 *)&a->saddr[12], 2);
		if (a->flags & FLOW_SET_DST)
			addr_d = csum_delta_words(addr_d, (__u16 *)&ip->daddr, (const __u16 *)&a->daddr[12], 2);
		ip4_dec_ttl(ip, addr_d);
		if (rewrite)
			rewrite_l4(ports, csum, udp, true, a, addr_d + l4_d);
		if (a->flags & FLOW_SET_SRC)
			__builtin_memcpy(&ip->saddr, &a->saddr[12], 4);
		if (a->flags & FLOW_SET_DST)
			__builtin_memcpy(&ip->daddr, &a->daddr[12], 4);
	} else {
		__u64 addr_d = 0;
		if (a->flags & FLOW_SET_SRC)
			addr_d = csum_delta_words(addr_d, (__u16 *)&ip6->saddr, (const __u16 *)a->saddr, 8);
		if (a->flags & FLOW_SET_DST)
			addr_d = csum_delta_words(addr_d, (__u16 *)&ip6->daddr, (const __u16 *)a->daddr, 8);
		ip6->hop_limit--;
		if (rewrite)
			rewrite_l4(ports, csum, udp, false, a, addr_d + l4_d);
		if (a->flags & FLOW_SET_SRC)
			__builtin_memcpy(&ip6->saddr, a->saddr, 16);
		if (a->flags & FLOW_SET_DST)
			__builtin_memcpy(&ip6->daddr, a->daddr, 16);
	}

	if ((__s64)(now - a->last_seen) > (__s64)FLOW_TOUCH_NS)
		a->last_seen = now;
	fast_count(a, frame_len);
	return flow_out(ctx, eth, a, l3len, is_ipv6);
}

#endif /* GOVS_FASTPATH_H */
