// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The one declaration of a program's packet counters, shared by the
 * director's programs (steer.c, decap.c) and pktgen's (generator.c, sink.c,
 * which include it by its path from pktgen/include).
 *
 * PERCPU_COUNTERS(map, ids) declares map, a per-CPU array of __u64 indexed
 * by enum ids (which ends with counter_max), and count(id), which adds one
 * to a counter. Per-CPU, so that no two CPUs ever write the same cache
 * line; Go sums the CPUs' values when it reads them (bpf/percpu).
 *
 * count is not inlined so that clang keeps enum ids in BTF: bpf2go -type
 * exports it, and Go indexes the map by the same names.
 */
#ifndef GOVS_PERCPU_COUNTERS_H
#define GOVS_PERCPU_COUNTERS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PERCPU_COUNTERS(map, ids)                                     \
	struct {                                                      \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);              \
		__uint(max_entries, counter_max);                     \
		__type(key, __u32);                                   \
		__type(value, __u64);                                 \
	} map SEC(".maps");                                           \
                                                                      \
	static __noinline void count(enum ids id)                     \
	{                                                             \
		__u32 key = id;                                       \
		__u64 *value = bpf_map_lookup_elem(&map, &key);       \
                                                                      \
		if (value)                                            \
			*value += 1;                                  \
	}

#endif /* GOVS_PERCPU_COUNTERS_H */
