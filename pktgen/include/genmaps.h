// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The generator's configuration, its running state and its counters. The
 * layouts reach Go through bpf2go -type (generatorGenConfig, ...); change
 * them here only.
 */
#ifndef PKTGEN_GENMAPS_H
#define PKTGEN_GENMAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../../bpf/include/percpu_counters.h"

/* Destinations the generator cycles through. A power of two, so that the
 * index can be masked into bounds for the verifier. */
#define GEN_MAX_DSTS 64

/* A destination address (IPv4-mapped for IPv4) and port (network order). */
struct gen_dst {
	__u8 addr[16];
	__be16 port;
	__u8 pad[2];
};

/*
 * What to generate. Flow f (0 <= f < flows) is the tuple
 *   source address  src_addr + f % src_count  (added to the last 32 bits),
 *   source port     sport_min + (f / src_count) % sport_count,
 *   destination     dsts[f % dst_count],
 * and consecutive frames take consecutive flows, so destinations alternate
 * frame by frame and every flow recurs every `flows` frames.
 */
struct gen_config {
	__u8 src_addr[16]; /* first source address, IPv4-mapped for IPv4 */
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u16 frame_len;   /* the whole frame: Ethernet header to end of payload */
	__u8 family;       /* 4 or 6 */
	__u8 proto;        /* IPPROTO_UDP, or IPPROTO_TCP for SYNs */
	__u32 src_count;   /* consecutive source addresses, >= 1 */
	__u32 sport_min;
	__u32 sport_count; /* >= 1, sport_min + sport_count <= 65536 */
	__u32 flows;       /* >= 1 */
	__u32 dst_count;   /* 1..GEN_MAX_DSTS */
	__u32 limited;     /* non-zero: send at most gen_state.budget frames */
	/* Pacing: at most per_slice frames in every slice_ns nanoseconds; the
	 * rest are dropped and counted as paced. per_slice 0: no pacing. */
	__u64 slice_ns;
	__u64 per_slice;
	struct gen_dst dsts[GEN_MAX_DSTS];
};

/*
 * Where generation stands. One generating thread runs the program at a
 * time, so the state is a single shared value rather than per CPU: it stays
 * coherent when that thread migrates between CPUs, and the pacing slice
 * and the frame budget are global, as they must be.
 */
struct gen_state {
	__u64 seq;         /* frames sent so far: IPv4 id, TCP sequence number */
	__u64 budget;      /* frames left to send when the config is limited */
	__u64 slice_start; /* bpf_ktime_get_ns of the current pacing slice */
	__u64 slice_used;  /* frames sent in it */
	__u32 flow;        /* the next frame's flow, and its parts: */
	__u32 dst_idx;     /*   flow % dst_count */
	__u32 addr_idx;    /*   flow % src_count */
	__u32 port_idx;    /*   (flow / src_count) % sport_count */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} gen_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_progress SEC(".maps");

/* Each run of the program increments exactly one counter. */
enum counter_id {
	sent,         /* frame written and returned with XDP_TX */
	paced,        /* over the rate budget of the current slice: dropped */
	over_limit,   /* frame budget exhausted: dropped */
	bad_frame,    /* frame length differs from gen_config.frame_len: dropped */
	unconfigured, /* no configuration loaded (frame_len 0): dropped */
	counter_max,
};

PERCPU_COUNTERS(gen_counters, counter_id)

#endif /* PKTGEN_GENMAPS_H */
