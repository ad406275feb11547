/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Storm aggregation (records.h: rsttrace_storm_key_of; maps.bpf.h: storm_*):
 * while userspace aggregates a storm, its events are counted per slot instead
 * of emitted, and its connect()s record no owner.
 */
#ifndef RSTTRACE_STORM_BPF_H
#define RSTTRACE_STORM_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "filters.bpf.h"
#include "maps.bpf.h"
#include "rsttrace/records.h"
#include "sock.bpf.h"

/* True when the event belongs to a storm userspace asked to aggregate: counted there. */
static __always_inline bool count_in_storm(const struct rsttrace_tcp_event *e)
{
	struct rsttrace_storm_key key = {};
	struct rsttrace_storm_slot *slot;
	__u64 *counter;
	__u32 index;

	if (!storms_in_use || !rsttrace_storm_key_of(e, port_watched(e->local_port), &key))
		return false;
	slot = bpf_map_lookup_elem(&storm_keys, &key);
	if (!slot || !slot->active)
		return false;
	index = slot->index;
	counter = bpf_map_lookup_elem(&storm_counts, &index);
	if (!counter)
		return false;
	*counter += 1;
	count(RSTTRACE_STAT_AGGREGATED);
	return true;
}

/* A connect() from a storm's peer to its port (the local end of a loopback storm). */
static __always_inline bool connect_in_storm(const struct sock *sk)
{
	struct rsttrace_storm_peer peer = {};
	__u16 family;

	if (!storms_in_use)
		return false;
	family = sk->__sk_common.skc_family;
	if (family == AF_INET) {
		peer.family = 4;
		__builtin_memcpy(peer.addr, &sk->__sk_common.skc_rcv_saddr, 4);
	} else if (family == AF_INET6) {
		peer.family = 6;
		__builtin_memcpy(peer.addr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
	} else {
		return false;
	}
	peer.netns = sock_netns_btf(sk);
	peer.port = bpf_ntohs(sk->__sk_common.skc_dport);
	return bpf_map_lookup_elem(&storm_peers, &peer) != 0;
}

#endif /* RSTTRACE_STORM_BPF_H */
