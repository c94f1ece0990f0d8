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
	__u32 flags;
};

/* Virtual services: traffic to these endpoints goes to the workers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_value);
} vips SEC(".maps");

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

/* Interfaces the director serves: ifindex -> first xsks slot of its queues. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} ifaces SEC(".maps");

/* The AF_XDP sockets of the workers, one per (interface, RX queue). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

#endif /* GOVS_MAPS_H */
