// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ICMP and ICMPv6 error messages. An error carries the IP header and the
 * first 8 bytes of the transport header of the packet that caused it; those
 * tell which connection the error is about, so it can follow that
 * connection to the worker that owns it.
 */
#ifndef GOVS_ICMP_H
#define GOVS_ICMP_H

#include <linux/types.h>
#include <linux/icmpv6.h>
#include "parse.h"

/* linux/icmp.h drags in libc socket headers, so ICMPv4 is spelled out here. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* unused, pointer or next-hop MTU in error messages */
};

static __always_inline bool icmp4_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

static __always_inline bool icmp6_is_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

/*
 * parse_icmp4_error reads an ICMP header at the cursor. For an error message
 * it sets *is_error and stores the embedded packet's addresses, protocol and
 * ports in inner. A non-first fragment embedded gives PARSE_FRAGMENT.
 */
static __always_inline int parse_icmp4_error(struct cursor *c, struct tuple *inner, bool *is_error)
{
	struct icmp4_hdr *icmp = c->pos;

	*is_error = false;
	if ((void *)(icmp + 1) > c->end)
		return PARSE_MALFORMED;
	if (!icmp4_is_error(icmp->type))
		return PARSE_OK;
	*is_error = true;
	c->pos = icmp + 1;
	int status = parse_ipv4(c, inner, true);
	if (status != PARSE_OK)
		return status;
	return parse_ports(c, inner, true);
}

/* parse_icmp6_error is parse_icmp4_error for ICMPv6. */
static __always_inline int parse_icmp6_error(struct cursor *c, struct tuple *inner, bool *is_error)
{
	struct icmp6hdr *icmp6 = c->pos;

	*is_error = false;
	if ((void *)(icmp6 + 1) > c->end)
		return PARSE_MALFORMED;
	if (!icmp6_is_error(icmp6->icmp6_type))
		return PARSE_OK;
	*is_error = true;
	c->pos = icmp6 + 1;
	int status = parse_ipv6(c, inner, true);
	if (status != PARSE_OK)
		return status;
	return parse_ports(c, inner, true);
}

#endif /* GOVS_ICMP_H */
