// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * steer: the director's XDP program. It sends to the workers' AF_XDP sockets
 * the packets the load balancer owns (traffic to a virtual service, replies
 * from real servers of NAT services, ICMP errors about either) and passes
 * everything else to the kernel untouched. It never drops what it does not
 * understand: such a frame is the kernel's to judge, and so is a frame
 * unicast to another host's MAC (foreign_mac_frame). The only frames it
 * answers or drops itself are TCP SYNs to services under the SYN defence
 * (synproxy.h), packets of flows the workers do not know yet over their
 * RX queue's steering meter (steer_admit), and what it would steer to a
 * slot without a socket.
 *
 * No socket in the slot is the gap between two director processes (the
 * program stays attached through a pinned link while none runs, or until
 * the next one swaps it): the packet is dropped (redirect_failed), since
 * the kernel, which knows nothing of the virtual services or of the
 * connections the next process adopts, would answer it with a reset. The
 * client retransmits into the next process. A SYN to a service that may be
 * proxied (VIP_SYNPROXY_CAPABLE) is answered with a SYN cookie meanwhile, as
 * under syn_proxy: on: the cookie key is pinned, so the next process
 * validates the client's ACK and opens the connection.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"
#include "icmp.h"
#include "maps.h"
#include "counters.h"
#include "fastpath.h"
#include "synproxy.h"
#include "bucket.h"
#include "frag.h"

enum verdict {
	VERDICT_VIP,
	VERDICT_REPLY,
	VERDICT_ICMP,
	VERDICT_PASS,
	VERDICT_MALFORMED,
	VERDICT_FRAGMENT,
	VERDICT_FAST, /* forwarded by the fast path: the action is in *fast */
	VERDICT_KNOWN_VIP,   /* a known flow's request for the workers (fast_forward: FAST_STEER) */
	VERDICT_KNOWN_REPLY, /* a known flow's reply for the workers (FAST_STEER_REPLY) */
};

/* endpoint_lookup looks up (addr, port, proto) in map, then (addr, 0,
 * proto), the key of a service or real server that takes every port, and
 * returns the value found or NULL. */
static __always_inline void *endpoint_lookup(void *map, const __u8 addr[16], __be16 port, __u8 proto)
{
	struct endpoint_key key = {};
	void *value;

	__builtin_memcpy(key.addr, addr, 16);
	key.port = port;
	key.proto = proto;
	value = bpf_map_lookup_elem(map, &key);
	if (value || port == 0)
		return value;
	key.port = 0;
	return bpf_map_lookup_elem(map, &key);
}

static __always_inline bool endpoint_in(void *map, const __u8 addr[16], __be16 port, __u8 proto)
{
	return endpoint_lookup(map, addr, port, proto) != NULL;
}

/* is_own reports whether addr is one of the director's own addresses. */
static __always_inline bool is_own(const __u8 addr[16])
{
	struct addr_key key = {};

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&own_addrs, &key) != NULL;
}

static __always_inline enum verdict verdict_of(int status)
{
	switch (status) {
	case PARSE_MALFORMED:
		return VERDICT_MALFORMED;
	case PARSE_FRAGMENT:
		return VERDICT_FRAGMENT;
	default:
		return VERDICT_PASS;
	}
}

/*
 * classify_icmp_error decides on the packet embedded in an ICMP error. The
 * director sent it either as a reply to a client (its source is a virtual
 * service) or as a request to a real server (its destination is a real
 * server); in both cases the worker owning that connection must see it.
 */
static __always_inline enum verdict classify_icmp_error(int status, struct tuple *inner)
{
	if (status == PARSE_FRAGMENT)
		return VERDICT_PASS; /* no ports to match on */
	if (status != PARSE_OK)
		return verdict_of(status);
	if (endpoint_in(&vips, inner->saddr, inner->sport, inner->proto) ||
	    mark_lookup(inner->saddr, inner->sport, inner->proto))
		return VERDICT_ICMP;
	if (endpoint_in(&reals, inner->daddr, inner->dport, inner->proto) && !is_own(inner->saddr))
		return VERDICT_ICMP;
	return VERDICT_PASS;
}

/* classify decides on a packet. A packet of an established flow is
 * forwarded by the fast path right after parsing, before the service
 * lookups it does not need (an entry exists only for steered traffic):
 * VERDICT_FAST, with the XDP action in *fast; a known flow's packet that
 * the workers must see is VERDICT_KNOWN_VIP or VERDICT_KNOWN_REPLY. For VERDICT_VIP, *vip is the
 * service's entry (a plain service's, else a firewall mark's) and *l4off
 * the offset of the transport header. */
static __always_inline enum verdict classify(struct xdp_md *ctx, struct cursor *c, struct tuple *t, int *fast,
					     struct endpoint_value **vip, __u32 *l4off)
{
	__be16 ethertype;
	bool is_ipv6;
	int status;

	if (parse_eth(c, &ethertype) != PARSE_OK)
		return VERDICT_MALFORMED;
	if (ethertype == bpf_htons(ETH_P_IP)) {
		is_ipv6 = false;
		status = parse_ipv4(c, t, false);
	} else if (ethertype == bpf_htons(ETH_P_IPV6)) {
		is_ipv6 = true;
		status = parse_ipv6(c, t, false);
	} else {
		return VERDICT_PASS;
	}
	if (status != PARSE_OK)
		return verdict_of(status);

	if (!is_ipv6 && t->proto == IPPROTO_ICMP) {
		struct tuple inner = {};
		bool is_error;
		status = parse_icmp4_error(c, &inner, &is_error);
		if (status == PARSE_OK && !is_error)
			return VERDICT_PASS;
		return classify_icmp_error(status, &inner);
	}
	if (is_ipv6 && t->proto == IPPROTO_ICMPV6) {
		struct tuple inner = {};
		bool is_error;
		status = parse_icmp6_error(c, &inner, &is_error);
		if (status == PARSE_OK && !is_error)
			return VERDICT_PASS;
		return classify_icmp_error(status, &inner);
	}

	status = parse_ports(c, t, false);
	if (status != PARSE_OK)
		return verdict_of(status);
	/* The transport header's offset, taken here: past fast_forward the
	 * verifier no longer trusts packet pointers taken before it (it may
	 * have rewritten the frame), and the barrier keeps clang from moving
	 * the subtraction there. */
	__u32 off = c->pos - (void *)(long)ctx->data;
	asm volatile("" : "+r"(off));
	*fast = fast_forward(ctx, t, is_ipv6);
	if (*fast == FAST_STEER)
		return VERDICT_KNOWN_VIP;
	if (*fast == FAST_STEER_REPLY)
		return VERDICT_KNOWN_REPLY;
	if (*fast != FAST_NO)
		return VERDICT_FAST;
	*vip = endpoint_lookup(&vips, t->daddr, t->dport, t->proto);
	if (!*vip)
		*vip = mark_lookup(t->daddr, t->dport, t->proto); /* fwmark services */
	if (*vip) {
		*l4off = off;
		return VERDICT_VIP;
	}
	if (endpoint_in(&reals, t->saddr, t->sport, t->proto) && !is_own(t->daddr))
		return VERDICT_REPLY;
	return VERDICT_PASS;
}

/*
 * steer_admit passes a packet about to be steered from xsks slot slot
 * through that slot's token bucket (steer_limits, steer_buckets) and
 * reports whether it is within the rate (bucket.h); rate 0 admits
 * everything.
 */
static __always_inline bool steer_admit(__u32 slot)
{
	struct steer_bucket *b = bpf_map_lookup_elem(&steer_buckets, &slot);
	if (!b)
		return true;
	struct steer_limit *l = bpf_map_lookup_elem(&steer_limits, &slot);
	if (!l || l->rate == 0) {
		b->admitted++;
		return true;
	}

	if (!bucket_take(&b->credit, &b->last, l->rate, l->burst)) {
		b->dropped++;
		return false;
	}
	b->admitted++;
	return true;
}

/*
 * foreign_mac_frame reports whether a frame is unicast to another host's
 * MAC: an interface in promiscuous mode (a bridge port, a sniffer, a
 * promiscuous virtual switch port) hands those up too, and a backup
 * director must not forward its master's traffic. The kernel drops them
 * (PACKET_OTHERHOST) or bridges them; so they go there untouched.
 * Broadcast and multicast (the group bit) are the host's as well. An
 * interface flagged IFACE_ACCEPT_FOREIGN_MAC skips the check; a frame too
 * short for an Ethernet header is left to classify (malformed).
 */
static __always_inline bool foreign_mac_frame(const struct cursor *c, const struct iface_info *ifc)
{
	const struct ethhdr *eth = c->pos;

	if (ifc->flags & IFACE_ACCEPT_FOREIGN_MAC)
		return false;
	if ((void *)(eth + 1) > c->end)
		return false;
	if (eth->h_dest[0] & 1)
		return false;
	const __u8 *d = eth->h_dest, *m = ifc->mac;
	return ((d[0] ^ m[0]) | (d[1] ^ m[1]) | (d[2] ^ m[2]) | (d[3] ^ m[3]) | (d[4] ^ m[4]) | (d[5] ^ m[5])) != 0;
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	__u32 ifindex = ctx->ingress_ifindex;
	struct iface_info *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);

	if (!ifc) {
		count(unknown_iface);
		return XDP_PASS;
	}
	if (foreign_mac_frame(&c, ifc)) {
		count(foreign_mac);
		return XDP_PASS;
	}

	struct tuple t = {};
	struct endpoint_value *vip = NULL;
	__u32 l4off = 0;
	int fast = FAST_NO;
	enum counter_id id;
	bool metered = true; /* a new flow's packet: it meets the steering meter */

	__u32 slot = ifc->base + ctx->rx_queue_index;

	switch (classify(ctx, &c, &t, &fast, &vip, &l4off)) {
	case VERDICT_FAST:
		count(fast == XDP_ABORTED ? fast_aborted : fast_forwarded);
		return fast;
	case VERDICT_KNOWN_VIP:
		id = steered_vip;
		metered = false;
		break;
	case VERDICT_KNOWN_REPLY:
		id = steered_reply;
		metered = false;
		break;
	case VERDICT_VIP:
		if (t.proto == IPPROTO_TCP && vip) {
			__u32 flags = vip->flags;
			/* No socket to take the SYN (no director process runs):
			 * answer it with a cookie, which the next one validates,
			 * rather than drop it below. Looked up only for services
			 * that may be proxied, so that others pay nothing. */
			if ((flags & VIP_SYNPROXY_CAPABLE) && !bpf_map_lookup_elem(&xsks, &slot))
				flags |= VIP_SYNPROXY_ON;
			/* A SYN answered with a cookie or dropped is counted there. */
			int act = syn_guard(ctx, l4off, &t, vip->service_id, flags);
			if (act == SYN_ADMITTED)
				metered = false;
			else if (act != SYN_STEER)
				return act;
		}
		id = steered_vip;
		break;
	case VERDICT_REPLY:
		id = steered_reply;
		break;
	case VERDICT_ICMP:
		id = steered_icmp;
		metered = false;
		break;
	case VERDICT_MALFORMED:
		count(malformed);
		return XDP_PASS;
	case VERDICT_FRAGMENT:
		/* A later fragment: ours by address alone (frag.h). */
		if (frag_ours(&t)) {
			id = steered_frag;
			break;
		}
		count(frag_passed);
		return XDP_PASS;
	default:
		frag_note_passed(&t); /* its later fragments follow it (frag.h) */
		count(passed);
		return XDP_PASS;
	}

	if (metered && !steer_admit(slot)) {
		count(steer_metered);
		return XDP_DROP;
	}
	count(id);
	/* Without a socket in the slot the helper returns its flags' action,
	 * XDP_DROP: see the gap at the top. */
	long action = bpf_redirect_map(&xsks, slot, XDP_DROP);
	if (action != XDP_REDIRECT)
		count(redirect_failed);
	return action;
}

char _license[] SEC("license") = "Dual BSD/GPL";
