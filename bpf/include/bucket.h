// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The token bucket of the SYN budget (synproxy.h) and of the steering
 * meter (steer.c).
 */
#ifndef GOVS_BUCKET_H
#define GOVS_BUCKET_H

#include <stdbool.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define BUCKET_NSEC_PER_SEC 1000000000ULL

/*
 * bucket_take takes one token from the bucket (*credit, *last) that fills
 * at rate tokens per second (rate > 0) up to burst, and reports whether
 * there was one. Credit is kept in token-nanoseconds: it grows by rate per
 * nanosecond up to burst * 1e9 and a token costs 1e9, so no division runs
 * per packet; a gap long enough to fill the bucket fills it without the
 * product that could overflow.
 */
static __always_inline bool bucket_take(__u64 *credit, __u64 *last, __u64 rate, __u64 burst)
{
	__u64 max = burst * BUCKET_NSEC_PER_SEC;
	__u64 now = bpf_ktime_get_ns();
	__u64 dt = now - *last;
	__u64 c = *credit;

	*last = now;
	if (dt >= max / rate) {
		c = max;
	} else {
		c += dt * rate;
		if (c > max)
			c = max;
	}
	if (c < BUCKET_NSEC_PER_SEC) {
		*credit = c;
		return false;
	}
	*credit = c - BUCKET_NSEC_PER_SEC;
	return true;
}

#endif /* GOVS_BUCKET_H */
