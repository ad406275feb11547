/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a packet (struct sk_buff): addresses and ports from its own IPv4/IPv6
 * and TCP headers, its device's namespace, and the packet a reported reset
 * answered (to fold its NO_SOCKET drop into the reset).
 */
#ifndef RSTTRACE_PACKET_BPF_H
#define RSTTRACE_PACKET_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "core_fixes.bpf.h"
#include "maps.bpf.h"
#include "rsttrace/records.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define HEADER_UNSET ((__u16)~0U)

/*
 * Addresses and ports from the packet's own IPv4/IPv6 and TCP headers.
 * `ingress`: the packet arrived here, so its destination is the local end.
 * Returns false for anything that is not TCP (or is a non-first fragment).
 */
static __always_inline bool fill_packet_addresses(struct rsttrace_tcp_event *e,
						  const struct sk_buff *skb, bool ingress)
{
	/* skb is typed in every caller (tp_btf); the packet bytes are not. */
	unsigned char *head = skb->head;
	__u16 network = skb->network_header;
	__u8 *local = e->local_addr, *remote = e->remote_addr;
	/* One read for both headers in the common case (IPv4 without options,
	 * IPv6 without extension headers): the headers are in the skb's linear
	 * head, which always has room past them (tailroom, skb_shared_info). */
	union {
		__u8 bytes[sizeof(struct ipv6hdr) + 14];
		struct iphdr ip;
		struct ipv6hdr ip6;
	} h;
	__u8 *tcp;
	__u8 tcp_after_options[14];

	if (network == HEADER_UNSET || bpf_probe_read_kernel(&h, sizeof(h), head + network))
		return false;
	if (h.bytes[0] >> 4 == 4) {
		__u8 header_len = (h.bytes[0] & 0x0f) * 4;

		if (h.ip.protocol != IPPROTO_TCP || (h.ip.frag_off & bpf_htons(0x1fff)) || header_len < 20)
			return false;
		e->family = 4;
		__builtin_memcpy(ingress ? local : remote, &h.ip.daddr, 4);
		__builtin_memcpy(ingress ? remote : local, &h.ip.saddr, 4);
		if (header_len == 20) {
			tcp = &h.bytes[20];
		} else {
			if (bpf_probe_read_kernel(tcp_after_options, sizeof(tcp_after_options),
						  head + network + header_len))
				return false;
			tcp = tcp_after_options;
		}
	} else if (h.bytes[0] >> 4 == 6) {
		if (h.ip6.nexthdr != IPPROTO_TCP) /* extension headers: not followed */
			return false;
		e->family = 6;
		__builtin_memcpy(ingress ? local : remote, &h.ip6.daddr, 16);
		__builtin_memcpy(ingress ? remote : local, &h.ip6.saddr, 16);
		tcp = &h.bytes[sizeof(struct ipv6hdr)];
	} else {
		return false;
	}
	__u16 source = (__u16)tcp[0] << 8 | tcp[1];
	__u16 dest = (__u16)tcp[2] << 8 | tcp[3];
	e->local_port = ingress ? dest : source;
	e->remote_port = ingress ? source : dest;
	e->tcp_flags = tcp[13];
	e->tcp_seq = (__u32)tcp[4] << 24 | (__u32)tcp[5] << 16 | (__u32)tcp[6] << 8 | tcp[7];
	e->flags |= RSTTRACE_FLAG_PACKET | (ingress ? RSTTRACE_FLAG_INGRESS : 0);
	return true;
}

/*
 * The namespace (and, for drops, the index) of the packet's device, else of
 * its route's device; false if it has neither.
 */
static __always_inline bool fill_packet_device(struct rsttrace_tcp_event *e, const struct sk_buff *skb,
					       bool with_ifindex)
{
	const struct net_device *dev = skb->dev;
	unsigned long refdst;

	if (dev) {
		if (with_ifindex)
			e->ifindex = dev->ifindex;
		e->netns = dev->nd_net.net->ns.inum;
		return true;
	}
	refdst = skb->_skb_refdst & ~1UL; /* low bit: SKB_DST_NOREF */
	if (!refdst)
		return false;
	/* An untyped pointer: read through the helper (bpf_core_cast needs 6.2+). */
	dev = BPF_CORE_READ((struct dst_entry *)refdst, dev);
	if (!dev)
		return false;
	if (with_ifindex)
		e->ifindex = BPF_CORE_READ(dev, ifindex);
	e->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return true;
}

/*
 * What netfilter's matches read from a dropped packet, as it carried it when
 * freed, which is where the dropping rule gave its verdict: the mark, the
 * device it came in on, its conntrack entry (state, direction, status and
 * the original destination, before DNAT) and the type of its IPv4 route
 * (addrtype, fib ... type). Userspace walks the rulesets with these facts.
 */
static __always_inline void fill_netfilter_evidence(struct rsttrace_tcp_event *e, const struct sk_buff *skb)
{
	const struct net_device *dev = skb->dev;
	unsigned long refdst = skb->_skb_refdst & ~1UL; /* low bit: SKB_DST_NOREF */

	e->mark = skb->mark;
	if (dev && (e->flags & RSTTRACE_FLAG_INGRESS))
		bpf_probe_read_kernel(e->in_ifname, sizeof(e->in_ifname), dev->name);
	e->ct_state = conntrack_state_of(skb, e);
	if (refdst && e->family == 4) {
		/* struct rtable begins with its dst_entry; only an AF_INET dst is one. */
		const struct dst_entry *dst = (const struct dst_entry *)refdst;

		if (BPF_CORE_READ(dst, ops, family) == 2 /* AF_INET */)
			e->route_type = (__u8)BPF_CORE_READ((const struct rtable *)refdst, rt_type);
	}
}

/* Whether `skb` is the packet in `slot`. Cleared by the next drop whatever
 * it is: a slot left by a packet that was not dropped must never match a
 * later packet at the same address. */
static __always_inline bool take_packet(__u64 *slot, const struct sk_buff *skb)
{
	bool same;

	if (!*slot)
		return false;
	same = *slot == (__u64)skb;
	*slot = 0;
	return same;
}

/* The packet a reset answered (maps.bpf.h: packet_slots). */
static __always_inline void remember_answered_packet(const struct sk_buff *skb)
{
	struct cpu_state *cpu = this_cpu_state();

	if (cpu)
		cpu->slots.answered = (__u64)skb;
}

/*
 * TIME_WAIT resets (handle_timewait_fexit). Before 6.10 tcp_v4_send_reset()
 * and tcp_v6_send_reset() fire tcp:tcp_send_reset only for a full socket
 * (`if (sk && sk_fullsock(sk))`), so the reset a TIME_WAIT socket answers a
 * late segment with is unseen there; "trace: tcp: fully support
 * trace_tcp_send_reset" (6.10) fires it for every socket. Measured, not
 * assumed: the fexit reports them until the tracepoint shows a socket that is
 * not a full one, and the tracepoint skips the one packet the fexit has just
 * reported on this CPU (it runs next, in the same softirq pass).
 */
static __always_inline void remember_timewait_reset(const struct sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *slot = bpf_map_lookup_elem(&timewait_reset_packet, &zero);

	if (slot)
		*slot = (__u64)skb;
}

/* At tcp:tcp_send_reset with socket `state`: true when the fexit has reported this reset already. */
static __always_inline bool timewait_reset_reported(__u8 state, const struct sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *slot;

	if (state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV)
		return false;
	if (!tracepoint_sees_timewait)
		tracepoint_sees_timewait = 1;
	slot = bpf_map_lookup_elem(&timewait_reset_packet, &zero);
	if (!slot || !skb || *slot != (__u64)skb)
		return false;
	*slot = 0;
	return true;
}

/* The packet a full accept queue refused (handle_listen_overflow_fexit). */
static __always_inline void remember_listen_overflow(const struct sk_buff *skb)
{
	struct cpu_state *cpu = this_cpu_state();

	if (cpu)
		cpu->slots.listen_overflow = (__u64)skb;
}

/*
 * True when this drop is the free of the packet handle_listen_overflow_fexit
 * has just reported as the drop (reasonless before 6.15): one event, not two.
 * Counted as a drop seen and as folded.
 */
static __always_inline bool fold_listen_overflow_drop(struct cpu_state *cpu, const struct sk_buff *skb)
{
	if (!take_packet(&cpu->slots.listen_overflow, skb))
		return false;
	count_two_in(cpu, RSTTRACE_STAT_DROP, RSTTRACE_STAT_FOLDED);
	return true;
}

/*
 * True when this drop is the NO_SOCKET free of the packet a reported reset
 * just answered (core_fixes: drop_is_no_socket): one connection attempt is
 * then one event, not two. Counted as a drop seen and as folded.
 */
static __always_inline bool fold_answered_drop(struct cpu_state *cpu, const struct sk_buff *skb, __u32 reason)
{
	if (!take_packet(&cpu->slots.answered, skb) || !drop_is_no_socket(reason))
		return false;
	count_two_in(cpu, RSTTRACE_STAT_DROP, RSTTRACE_STAT_FOLDED);
	return true;
}

#endif /* RSTTRACE_PACKET_BPF_H */
