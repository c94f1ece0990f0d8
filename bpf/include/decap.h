// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Maps and counters of the decap program (decap.c). Separate from maps.h
 * and counters.h, which belong to the director's steering program: a real
 * server loads only this one.
 */
#ifndef GOVS_DECAP_H
#define GOVS_DECAP_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "percpu_counters.h"

/* Virtual addresses served by this real server, IPv4-mapped for IPv4. The
 * value is unused (0). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u8[16]);
	__type(value, __u32);
} decap_vips SEC(".maps");

/* Each packet increments exactly one counter. */
enum counter_id {
	decapsulated,  /* outer header stripped */
	not_ours,      /* not a tunnel packet to one of decap_vips: passed as is */
	malformed,     /* truncated or inconsistent: passed as is */
	fragmented,    /* outer header fragmented: passed as is, the kernel reassembles */
	adjust_failed, /* bpf_xdp_adjust_head refused: passed as is */
	counter_max,
};

PERCPU_COUNTERS(decap_counters, counter_id)

#endif /* GOVS_DECAP_H */
