// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Configuration and counters of the sink program (sink.c), which stands in
 * for a real server's receive path in tests and benchmarks.
 */
#ifndef PKTGEN_SINK_H
#define PKTGEN_SINK_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../../bpf/include/percpu_counters.h"

struct sink_config {
	__u32 pass; /* non-zero: count matched packets and pass them on; zero: drop them */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_config);
} sink_settings SEC(".maps");

/* Each packet increments exactly one counter. */
enum counter_id {
	sunk_udp,    /* UDP over IPv4 or IPv6 */
	sunk_tunnel, /* IPv4 or IPv6 in IPv4 or IPv6 (LVS-TUN, not decapsulated) */
	passed,      /* anything else (ARP, ND, TCP, ...): passed to the kernel */
	counter_max,
};

PERCPU_COUNTERS(sink_counters, counter_id)

#endif /* PKTGEN_SINK_H */
