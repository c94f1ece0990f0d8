// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Internet checksum (RFC 1071) arithmetic for headers the generator has just
 * written. Sums are kept in 32 bits and folded at the end; every caller sums
 * a small, fixed number of 16-bit words, so no carry can be lost.
 */
#ifndef PKTGEN_CSUM_H
#define PKTGEN_CSUM_H

#include <linux/types.h>

/* csum_words adds n 16-bit words starting at p, in memory (network) order.
 * n is a compile-time constant at every call site, so the loop unrolls. */
static __always_inline __u32 csum_words(const void *p, const int n)
{
	const __u16 *w = p;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* csum_fold folds a 32-bit sum to 16 bits and complements it. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif /* PKTGEN_CSUM_H */
