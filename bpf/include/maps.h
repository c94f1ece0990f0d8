// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The maps the steering program reads and the Go control plane
 * (bpf/steering.go) writes. Key and value layouts are shared with Go through
 * bpf2go -type; change them here only.
 */
#ifndef GOVS_MAPS_H
#define GOVS_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* One slot per (interface, RX queue) pair: base slot + queue index. */
#define XSK_SLOTS 256

/*
 * An address, port and protocol. IPv4 addresses are IPv4-mapped
 * (::ffff:a.b.c.d); the port is in network byte order and 0 for a service
 * that takes every port of its protocol.
 */
struct endpoint_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 pad; /* always 0: hash keys compare every byte */
};

struct endpoint_value {
	__u32 service_id;
	__u32 flags; /* VIP_SYNPROXY_* (vips only) */
};

/* Virtual services: traffic to these endpoints goes to the workers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_value);
} vips SEC(".maps");

/*
 * Firewall-mark services (ipvsadm -f). A mark is defined by what it
 * matches (the YAML's match: prefixes, port ranges, protocols), since XDP
 * runs before netfilter sets marks. The trie is keyed by destination prefix
 * (IPv4 as ::ffff:a.b.c.d/96+n); its value lists the (protocol, port range,
 * service) entries of every mark whose prefixes cover that prefix, so that
 * the longest match alone answers (the control plane copies the ranges of
 * an enclosing prefix into the more specific ones, bpf/marks.go). Marks
 * never overlap (the configuration refuses it), so at most one entry
 * matches. Plain services (vips) are looked up first.
 */
#define MARK_RANGES 16

struct mark_key {
	__u32 prefixlen; /* of the 128-bit address */
	__u8 addr[16];
};

struct mark_range {
	__u16 lo; /* first port, host byte order */
	__u16 hi; /* last port, inclusive */
	__u8 proto;
	__u8 pad[3];
	struct endpoint_value ev; /* the fwmark service's id and SYN flags */
};

struct mark_value {
	__u32 n; /* entries used in r */
	__u32 pad;
	struct mark_range r[MARK_RANGES];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mark_key);
	__type(value, struct mark_value);
} marks SEC(".maps");

/* mark_prefix_lookup returns the marks trie's entry for the longest prefix
 * holding addr, or NULL. */
static __always_inline struct mark_value *mark_prefix_lookup(const __u8 addr[16])
{
	struct mark_key key = {.prefixlen = 128};

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&marks, &key);
}

/* mark_lookup returns the service entry of the firewall mark that a packet
 * to addr:port (network byte order) of protocol proto carries, or NULL. */
static __always_inline struct endpoint_value *mark_lookup(const __u8 addr[16], __be16 port, __u8 proto)
{
	struct mark_value *v = mark_prefix_lookup(addr);
	__u16 p = bpf_ntohs(port);

	if (!v)
		return NULL;
	for (int i = 0; i < MARK_RANGES; i++) {
		if (i >= v->n)
			break;
		struct mark_range *r = &v->r[i];
		if (r->proto == proto && p >= r->lo && p <= r->hi)
			return &r->ev;
	}
	return NULL;
}

/*
 * Real servers of NAT and full-NAT services: traffic from these endpoints is
 * a reply the workers must translate back. The value is unused (0).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct endpoint_key);
	__type(value, __u32);
} reals SEC(".maps");

/*
 * The director's own addresses (full-NAT local addresses excepted): a packet
 * from a real server to one of them is the director's own traffic (a health
 * check, an ssh session), not a reply to translate, and goes to the kernel.
 */
struct addr_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct addr_key);
	__type(value, __u32);
} own_addrs SEC(".maps");

/* iface_info.flags */
#define IFACE_ACCEPT_FOREIGN_MAC 0x1 /* classify frames to any destination MAC (MAC-VLAN, VRRP virtual MACs) */

/* A served interface: its first xsks slot, its own MAC (the control plane
 * rewrites it when the address changes) and IFACE_* flags. */
struct iface_info {
	__u32 base;
	__u8 mac[6];
	__u16 flags;
};

/* Interfaces the director serves: ifindex -> iface_info (slot base, MAC and flags). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct iface_info);
} ifaces SEC(".maps");

/* The AF_XDP sockets of the workers, one per (interface, RX queue). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/*
 * The SYN defence (synproxy.h). A SYN to a virtual service is counted per
 * service, then answered with a SYN cookie, admitted to the workers or
 * dropped, by the flags of its endpoint_value and a per-CPU token bucket.
 */

/* endpoint_value.flags */
#define VIP_SYNPROXY_CAPABLE 0x1 /* the service may answer SYNs with cookies (TCP, NAT/full-NAT) */
#define VIP_SYNPROXY_ON 0x2      /* answer every SYN with a cookie */

/* Service ids with a SYN counter in service_syns: ids below this. */
#define SYN_SERVICES 16384

/* The SipHash key of the cookies: the key's bytes 0-7 and 8-15 read as
 * little-endian words, as SipHash reads its key. */
struct syncookie_key {
	__u64 k0;
	__u64 k1;
};

/* The SYN defence's settings, written by the control plane. */
struct syn_config {
	__u64 rate;  /* SYNs per second and CPU admitted to the workers; 0 = unlimited */
	__u64 burst; /* the bucket's depth in SYNs (at most 2^30, so burst * 1e9 fits) */
	__u16 mss4;  /* MSS the SYN-ACK announces over IPv4; 0 = 1460 */
	__u16 mss6;  /* MSS the SYN-ACK announces over IPv6; 0 = 1440 */
	__u32 pad;
};

/* A CPU's token bucket. Credit is counted in SYN-nanoseconds per second, so
 * that refilling needs no division: a SYN costs 1e9, a nanosecond adds rate. */
struct syn_bucket {
	__u64 credit;
	__u64 last; /* bpf_ktime_get_ns of the last refill */
};

/* The cookie key (one entry): set once when the first director starts;
 * pinned (bpf/pin.go), so that the next process keeps it and validates
 * the cookies minted while none ran. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syncookie_key);
} syncookie_keys SEC(".maps");

/* SYN rate limit and SYN-ACK MSS (one entry); all zero = no limit, default MSS. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_config);
} syn_cfg SEC(".maps");

/* Each CPU's token bucket of SYNs admitted to the workers. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_bucket);
} syn_buckets SEC(".maps");

/* SYNs seen per service id, per CPU: the control plane derives SYN rates from them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYN_SERVICES);
	__type(key, __u32);
	__type(value, __u64);
} service_syns SEC(".maps");

/*
 * The steering meter (steer.c): every packet the program steers to an
 * AF_XDP socket that is not of a flow the workers know (flows4, flows),
 * not a SYN admitted by the SYN budget and not an ICMP error passes a token
 * bucket of its socket's slot (base + RX queue, as in xsks) first; over
 * the rate it is dropped (steer_metered), so that a worker that falls
 * behind is not buried under frames the kernel would copy and then drop on
 * a full RX ring. The control plane (dataplane/overload.go) sets each
 * slot's rate.
 */
struct steer_limit {
	__u64 rate;  /* packets per second admitted from this queue; 0 = unlimited */
	__u64 burst; /* the bucket's depth in packets (at most 2^30) */
};

/* A slot's bucket and its counters. One RX queue is served by one CPU at
 * a time, so the plain increments are exact but for queue migrations. */
struct steer_bucket {
	__u64 credit;   /* packet-nanoseconds per second, as syn_bucket */
	__u64 last;     /* bpf_ktime_get_ns of the last refill */
	__u64 admitted; /* metered packets let through (also while unlimited) */
	__u64 dropped;  /* metered packets dropped over the rate */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XSK_SLOTS);
	__type(key, __u32);
	__type(value, struct steer_limit);
} steer_limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XSK_SLOTS);
	__type(key, __u32);
	__type(value, struct steer_bucket);
} steer_buckets SEC(".maps");

#endif /* GOVS_MAPS_H */
