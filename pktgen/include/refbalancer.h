// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Configuration of the reference balancer (refbalancer.c): the virtual
 * service it balances, its real servers and where it sends their packets.
 */
#ifndef PKTGEN_REFBALANCER_H
#define PKTGEN_REFBALANCER_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define REFBALANCER_MAX_REALS 8

struct refbalancer_config {
	__be32 vip;           /* the virtual address, network order */
	__be16 vport;         /* the virtual port, network order */
	__u16 num_reals;      /* 1..REFBALANCER_MAX_REALS; 0: pass everything */
	__u32 egress_ifindex; /* where rewritten frames are redirected */
	__u8 egress_mac[6];   /* the egress interface's MAC: the new source MAC */
	__u8 pad[2];
};

struct refbalancer_real {
	__be32 addr;  /* network order */
	__be16 port;  /* network order */
	__u8 mac[6];  /* next hop toward the real server: the new destination MAC */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct refbalancer_config);
} refbalancer_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, REFBALANCER_MAX_REALS);
	__type(key, __u32);
	__type(value, struct refbalancer_real);
} refbalancer_reals SEC(".maps");

#endif /* PKTGEN_REFBALANCER_H */
