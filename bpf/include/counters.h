// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-CPU packet counters of the steering program. The enum is exported to
 * Go with bpf2go -type, so Go indexes the map by the same names.
 */
#ifndef GOVS_COUNTERS_H
#define GOVS_COUNTERS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "percpu_counters.h"

/*
 * Each packet on a served interface increments exactly one of the counters
 * from steered_vip to frag_passed, fast_forwarded, fast_aborted,
 * syncookie_sent, syn_throttled, syn_spread, steer_metered, steered_frag and foreign_mac;
 * redirect_failed additionally counts the
 * steered packets whose slot had no socket (dropped: the gap between two
 * director processes, steer.c), and
 * fast_csum_finished the fast_forwarded, syn_spread (or fast_aborted)
 * packets whose unfinished transport checksum the program finished.
 * Lowercase names make readable Go identifiers (steerCounterIdSteeredVip).
 */
enum counter_id {
	steered_vip,     /* to a virtual service */
	steered_reply,   /* from a real server (NAT / full-NAT reply) */
	steered_icmp,    /* ICMP error about a steered connection */
	passed,          /* not ours: left to the kernel */
	malformed,       /* truncated or inconsistent: left to the kernel */
	frag_passed,     /* non-first fragment not the load balancer's (frag.h): left to the kernel */
	unknown_iface,   /* interface not in ifaces: left to the kernel */
	redirect_failed, /* steered, but no socket in the slot: dropped (steer.c) */
	fast_forwarded,  /* rewritten and sent by the XDP fast path (fastpath.h) */
	fast_aborted,    /* taken by the fast path, then a helper failed: dropped */
	syncookie_sent,  /* a SYN to a service answered with a SYN-ACK cookie (synproxy.h) */
	syn_throttled,   /* a SYN over the SYN rate limit to a service without cookies: dropped */
	steer_metered,   /* would be steered, over its queue's steer_limits rate: dropped */
	steered_frag,    /* a later fragment to a VIP or from a real server (frag.h) */
	fast_csum_finished, /* an unfinished TCP/UDP checksum finished by the fast path (fastpath.h) */
	foreign_mac,     /* unicast to another host's MAC (a promiscuous interface): left to the kernel */
	syn_spread,      /* a SYN over the SYN budget to a DR/TUN service, forwarded by its Maglev table (spread.h) */
	counter_max,
};

PERCPU_COUNTERS(counters, counter_id)

#endif /* GOVS_COUNTERS_H */
