// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Internet checksums for the XDP programs: incremental updates (RFC 1624,
 * HC' = ~(~HC + ~m + m')) of the IPv4 header and transport checksums after a
 * rewrite, and a full sum for the small headers the programs build.
 *
 * The one's-complement sum does not depend on byte order as long as every
 * word and the checksum field are read the same way, so the helpers work on
 * 16-bit words exactly as they lie in the packet, without byte swapping.
 */
#ifndef GOVS_CSUM_H
#define GOVS_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* csum_fold folds a 64-bit running sum into 16 bits. */
static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* csum_delta16 adds to sum the difference of replacing word old by new. */
static __always_inline __u64 csum_delta16(__u64 sum, __u16 old, __u16 new)
{
	return sum + (__u16)~old + new;
}

/*
 * csum_delta_words adds the difference of replacing n 16-bit words at old
 * (read from the packet, so one word at a time) by those at new.
 */
static __always_inline __u64 csum_delta_words(__u64 sum, const __u16 *old, const __u16 *new, int n)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= n)
			break;
		sum = csum_delta16(sum, old[i], new[i]);
	}
	return sum;
}

/* csum_apply returns checksum csum updated by an unfolded difference sum. */
static __always_inline __u16 csum_apply(__u16 csum, __u64 delta)
{
	return ~csum_fold((__u64)(__u16)~csum + delta);
}

/* csum_ipv4_header returns the checksum of a 20-byte IPv4 header whose
 * checksum field is zero. */
static __always_inline __u16 csum_ipv4_header(const __u16 *hdr)
{
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += hdr[i];
	return ~csum_fold(sum);
}

#endif /* GOVS_CSUM_H */
