// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Packet parsing for the XDP programs: Ethernet with up to two VLAN tags,
 * IPv4 (options included), IPv6 with a bounded walk over extension headers,
 * and the port pair of TCP, UDP and SCTP.
 *
 * Every helper works on a cursor that only moves forward and checks each
 * access against data_end before it reads, so the verifier can prove every
 * load safe and a truncated frame is reported, never read past.
 */
#ifndef GOVS_PARSE_H
#define GOVS_PARSE_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* 802.1ad (QinQ) puts an S-tag before the C-tag; more is not seen in practice. */
#define VLAN_MAX_DEPTH 2

/*
 * Extension headers walked before giving up on finding the transport header.
 * Real traffic rarely carries more than two; the bound keeps the verifier's
 * work, and ours, small. The packet embedded in an ICMPv6 error is one the
 * director sent, which carries at most a fragment header, so a shorter walk
 * does there (each walk multiplies the paths the verifier explores).
 */
#define IPV6_EXT_MAX 6
#define IPV6_EMBEDDED_EXT_MAX 2

/* The fragment-offset bits of iphdr.frag_off (the kernel's IP_OFFSET is not in uapi). */
#define IPV4_FRAG_OFFSET_MASK 0x1fff
/* The fragment-offset bits of the IPv6 fragment header's frag_off field. */
#define IPV6_FRAG_OFFSET_MASK 0xfff8

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* The kernel's struct frag_hdr lives outside uapi. */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

enum parse_status {
	PARSE_OK = 0,
	/* Truncated or inconsistent: the frame is not what its headers claim. */
	PARSE_MALFORMED,
	/* A non-first fragment: it carries no transport header. */
	PARSE_FRAGMENT,
	/* Well formed, but nothing the caller handles (e.g. too many IPv6 extension headers). */
	PARSE_UNSUPPORTED,
};

struct cursor {
	void *pos;
	void *end;
};

/*
 * The addresses, protocol and ports of one IP packet. IPv4 addresses are held
 * IPv4-mapped (::ffff:a.b.c.d) so both families share one map key layout.
 * Ports stay in network byte order, as the maps hold them.
 */
struct tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 frag;       /* TUPLE_FRAG_*: whether the packet is a fragment (not set for embedded ones) */
	__be32 frag_id;  /* a fragment's identification (IPv4: its 16 bits), when frag is set */
};

/* tuple.frag */
#define TUPLE_FRAG_NONE 0
#define TUPLE_FRAG_FIRST 1 /* offset 0, more fragments: it has the transport header */
#define TUPLE_FRAG_LATER 2 /* a non-first fragment (PARSE_FRAGMENT) */

/* parse_eth skips the Ethernet header and up to VLAN_MAX_DEPTH tags and
 * stores the ethertype of what follows. */
static __always_inline int parse_eth(struct cursor *c, __be16 *ethertype)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return PARSE_MALFORMED;
	__be16 proto = eth->h_proto;
	c->pos = eth + 1;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vlan = c->pos;
		if ((void *)(vlan + 1) > c->end)
			return PARSE_MALFORMED;
		proto = vlan->encap_proto;
		c->pos = vlan + 1;
	}
	*ethertype = proto;
	return PARSE_OK;
}

static __always_inline void map_ipv4(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr, 4);
}

/*
 * parse_ipv4 reads an IPv4 header and leaves the cursor on the transport
 * header. An embedded header (the copy inside an ICMP error) is truncated by
 * design, so its total length is not checked against the frame.
 */
static __always_inline int parse_ipv4(struct cursor *c, struct tuple *t, bool embedded)
{
	struct iphdr *iph = c->pos;

	if ((void *)(iph + 1) > c->end)
		return PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	__u32 hdr_len = iph->ihl * 4;
	if (c->pos + hdr_len > c->end)
		return PARSE_MALFORMED;
	if (!embedded) {
		__u32 total_len = bpf_ntohs(iph->tot_len);
		if (total_len < hdr_len || c->pos + total_len > c->end)
			return PARSE_MALFORMED;
	}
	map_ipv4(t->saddr, iph->saddr);
	map_ipv4(t->daddr, iph->daddr);
	t->proto = iph->protocol;
	if (!embedded && (iph->frag_off & bpf_htons(0x2000 | IPV4_FRAG_OFFSET_MASK))) {
		t->frag = (iph->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)) ? TUPLE_FRAG_LATER : TUPLE_FRAG_FIRST;
		t->frag_id = iph->id;
	}
	if (iph->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK))
		return PARSE_FRAGMENT;
	c->pos += hdr_len;
	return PARSE_OK;
}

/*
 * parse_ipv6 reads an IPv6 header, walks at most IPV6_EXT_MAX extension
 * headers and leaves the cursor on the transport header, whose protocol it
 * stores in t->proto. The walk stops at the first header that is not an
 * extension header (ESP and "no next header" included: they end the chain).
 */
static __always_inline int parse_ipv6(struct cursor *c, struct tuple *t, bool embedded)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	if (!embedded) {
		/* A zero payload length means a jumbogram; XDP never sees one
		 * that large, and the walk below still bounds every read. */
		__u32 payload_len = bpf_ntohs(ip6->payload_len);
		if ((void *)(ip6 + 1) + payload_len > c->end)
			return PARSE_MALFORMED;
	}
	__builtin_memcpy(t->saddr, &ip6->saddr, 16);
	__builtin_memcpy(t->daddr, &ip6->daddr, 16);
	__u8 nexthdr = ip6->nexthdr;
	c->pos = ip6 + 1;

	int max_ext = embedded ? IPV6_EMBEDDED_EXT_MAX : IPV6_EXT_MAX;

#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (i >= max_ext)
			break;
		__u32 len;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH: {
			struct ipv6_opt_hdr *opt = c->pos;
			if ((void *)(opt + 1) > c->end)
				return PARSE_MALFORMED;
			/* AH counts 4-byte units minus 2, the others 8-byte units minus 1. */
			if (nexthdr == IPPROTO_AH)
				len = ((__u32)opt->hdrlen + 2) * 4;
			else
				len = ((__u32)opt->hdrlen + 1) * 8;
			nexthdr = opt->nexthdr;
			break;
		}
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr *frag = c->pos;
			if ((void *)(frag + 1) > c->end)
				return PARSE_MALFORMED;
			nexthdr = frag->nexthdr;
			if (!embedded && (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK | 1))) {
				t->frag = (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK)) ? TUPLE_FRAG_LATER
											: TUPLE_FRAG_FIRST;
				t->frag_id = frag->identification;
			}
			if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK)) {
				t->proto = nexthdr;
				return PARSE_FRAGMENT;
			}
			len = sizeof(*frag);
			break;
		}
		default:
			t->proto = nexthdr;
			return PARSE_OK;
		}
		if (c->pos + len > c->end)
			return PARSE_MALFORMED;
		c->pos += len;
	}

	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return PARSE_UNSUPPORTED;
	}
	t->proto = nexthdr;
	return PARSE_OK;
}

/*
 * parse_ports reads the port pair of TCP, UDP and SCTP (the first four bytes
 * of each header); other protocols get ports 0. A packet on the wire must
 * hold the full fixed header (the worker parses it next); an embedded one is
 * only guaranteed its first 8 bytes.
 */
static __always_inline int parse_ports(struct cursor *c, struct tuple *t, bool embedded)
{
	if (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP && t->proto != IPPROTO_SCTP) {
		t->sport = 0;
		t->dport = 0;
		return PARSE_OK;
	}
	/* Constant-size checks only: the verifier derives the readable range
	 * of a packet pointer from the constant it is compared at. */
	__be16 *ports = c->pos;
	if (c->pos + 8 > c->end)
		return PARSE_MALFORMED;
	t->sport = ports[0];
	t->dport = ports[1];
	if (embedded)
		return PARSE_OK;

	if (t->proto == IPPROTO_SCTP && c->pos + 12 > c->end)
		return PARSE_MALFORMED;
	if (t->proto == IPPROTO_TCP) {
		__u8 *bytes = c->pos;
		if (c->pos + 20 > c->end)
			return PARSE_MALFORMED;
		/* The data offset (high nibble of byte 12) covers the options. */
		__u32 hdr_len = (bytes[12] >> 4) * 4;
		if (hdr_len < 20 || c->pos + hdr_len > c->end)
			return PARSE_MALFORMED;
	}
	return PARSE_OK;
}

#endif /* GOVS_PARSE_H */
