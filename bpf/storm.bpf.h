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

/* Two hashes of a class_peer key (24 bytes: six words): the table index and the fingerprint. */
static __always_inline void hash_class_peer(const struct rsttrace_class_peer *peer, __u32 *index, __u32 *fingerprint)
{
	const __u32 *word = (const __u32 *)peer;
	__u32 a = 0x9e3779b9, b = 0x85ebca6b ^ class_generation;
	int i;

	for (i = 0; i < (int)(sizeof(*peer) / sizeof(__u32)); i++) {
		a = (a ^ word[i]) * 0x01000193;
		b = (b ^ word[i]) * 0xc2b2ae35;
		b ^= b >> 15;
	}
	a ^= a >> 16;
	*index = a & (RSTTRACE_CLASS_SIGHTINGS - 1);
	*fingerprint = b | 1; /* never 0: empty */
}

/*
 * True when `peer` was seen before: its fingerprint is in its table entry. Else
 * it is remembered there, over whichever key had the entry (that key's next
 * event is a first sighting again: its count can only come out lower by one;
 * higher only if another key had both its index and its 31-bit fingerprint).
 * Racing CPUs store whole words: at worst a sighting is lost.
 */
static __always_inline bool seen_before(__u32 index, __u32 fingerprint)
{
	__u32 *entry = bpf_map_lookup_elem(&class_first_sightings, &index);

	if (!entry)
		return false;
	if (*entry == fingerprint)
		return true;
	*entry = fingerprint;
	return false;
}

/*
 * `weight` more (1, or 2^shift for a sampled event) for `peer` in an LRU map of a class storm's
 * peers or prefixes, from its second (sampled) event.
 * `marked`: the map is class_peers, whose keys are marked in class_peers_marks before they are
 * put in (maps.bpf.h): a key whose mark is clear is not there, and needs no lookup (in a flood
 * from many addresses nearly every one; measured ~60 ns an event).
 */
static __always_inline void count_class_peer(void *map, const struct rsttrace_class_peer *peer, bool marked,
					     __u64 weight)
{
	__u64 two = 2 * weight, *value;
	__u32 index, fingerprint, mark;

	hash_class_peer(peer, &index, &fingerprint);
	mark = index;
	/* The 6.1 verifier loses the bounds of the hash's mask (as port_watched's): mask where the compiler keeps it. */
	barrier_var(mark);
	mark &= RSTTRACE_CLASS_PEER_MARKS - 1;
	if (!marked || class_peers_marks[mark]) {
		value = bpf_map_lookup_elem(map, peer);
		if (value) {
			__sync_fetch_and_add(value, weight);
			return;
		}
	}
	if (!seen_before(index, fingerprint))
		return;
	/* Marked before it is in the map: a key in the map always finds its mark (a byte: no lost update). */
	if (marked)
		class_peers_marks[mark] = 1;
	/* This event and the first sighting. Another CPU may have added it meanwhile: then add to its entry. */
	if (bpf_map_update_elem(map, peer, &two, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(map, peer);
		if (value)
			__sync_fetch_and_add(value, weight);
	}
}

/* A class storm's event: its peer and its /24 (IPv4) or /64 (IPv6) prefix counted. */
static __always_inline void count_class_peers(const struct rsttrace_tcp_event *e, __u32 slot, int watched_local,
					      __u64 weight)
{
	struct rsttrace_class_peer peer = {};
	const __u8 *addr = watched_local ? e->remote_addr : e->local_addr;

	__builtin_memcpy(peer.addr, addr, RSTTRACE_ADDR_LEN);
	peer.slot = slot;
	peer.family = e->family;
	peer.prefix_len = e->family == 4 ? 32 : 128;
	count_class_peer(&class_peers, &peer, true, weight);
	if (e->family == 4) {
		peer.addr[3] = 0;
		peer.prefix_len = 24;
	} else {
		__builtin_memset(peer.addr + 8, 0, 8);
		peer.prefix_len = 64;
	}
	count_class_peer(&class_prefixes, &peer, false, weight);
}

static __always_inline bool same_storm_key(const struct rsttrace_storm_key *a, const struct rsttrace_storm_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 differ = 0;
	int i;

	for (i = 0; i < (int)(sizeof(*a) / sizeof(__u32)); i++)
		differ |= x[i] ^ y[i];
	return !differ;
}

/*
 * `key`'s storm slot, as storm_keys holds it (active 0: none), through this
 * CPU's last lookup (maps.bpf.h: cpu_state, storm_lookup). A stale answer is as
 * stale as a lookup made just before userspace's change: the generation is
 * bumped after it, so every program run that starts later sees the change.
 */
static __always_inline struct rsttrace_storm_slot find_storm_slot(struct cpu_state *cpu,
								 const struct rsttrace_storm_key *key)
{
	struct rsttrace_storm_slot found = {}, *slot;
	__u64 generation = *(volatile __u64 *)&storm_keys_generation;
	struct storm_lookup *last = &cpu->storm_lookup;
	__u32 seq;

	seq = *(volatile __u32 *)&last->seq;
	barrier();
	if (seq & 1) { /* this run interrupted one writing the entry: leave it to that one */
		slot = bpf_map_lookup_elem(&storm_keys, key);
		return slot ? *slot : found;
	}
	if (generation && last->generation == generation && same_storm_key(&last->key, key)) {
		found = last->slot;
		barrier();
		if (*(volatile __u32 *)&last->seq == seq)
			return found;
		found = (struct rsttrace_storm_slot){};
	}
	slot = bpf_map_lookup_elem(&storm_keys, key);
	if (slot)
		found = *slot;
	/* `generation` was read before the lookup: a change after it makes the entry stale at once. */
	*(volatile __u32 *)&last->seq = seq + 1;
	barrier();
	last->key = *key;
	last->generation = generation;
	last->slot = found;
	barrier();
	*(volatile __u32 *)&last->seq = seq + 2;
	return found;
}

/* Counts the event in the storm slot of `key`; false when no storm counts it. */
static __always_inline bool count_in_slot(struct cpu_state *cpu, const struct rsttrace_storm_key *key,
					  const struct rsttrace_tcp_event *e, int watched_local, __u32 seen_stat)
{
	struct rsttrace_storm_slot slot = find_storm_slot(cpu, key);
	__u64 *counter;
	__u32 index;

	if (!slot.active)
		return false;
	index = slot.index;
	counter = bpf_map_lookup_elem(&storm_counts, &index);
	if (!counter)
		return false;
	*counter += 1;
	count_two_in(cpu, seen_stat, RSTTRACE_STAT_AGGREGATED);
	if (slot.active & RSTTRACE_STORM_TRACK_PEERS) {
		/* A fast storm's peers on 1 in 2^shift events (records.h): the accounting was most
		 * of a refused connection's BPF time in a flood from many addresses (~250 ns). */
		__u32 shift = RSTTRACE_STORM_PEER_SHIFT(slot.active);

		if (shift > RSTTRACE_STORM_PEER_SHIFT_MAX)
			shift = RSTTRACE_STORM_PEER_SHIFT_MAX;
		if (!shift || !(bpf_get_prandom_u32() & ((1u << shift) - 1)))
			count_class_peers(e, index, watched_local, 1ull << shift);
	}
	return true;
}

/*
 * True when the event belongs to a storm userspace asked to aggregate: counted
 * there. A storm of its peer first, else one of its class (many peers).
 */
static __always_inline bool count_in_storm(struct cpu_state *cpu, const struct rsttrace_tcp_event *e,
					   __u32 seen_stat)
{
	struct rsttrace_storm_key key = {};
	int watched_local = port_watched(e->local_port);

	if (!storms_in_use || !rsttrace_storm_key_of(e, watched_local, &key))
		return false;
	/* While every storm is a class's (a flood from many peers), no peer's key can match. */
	if (storms_in_use != class_storms_in_use && count_in_slot(cpu, &key, e, watched_local, seen_stat))
		return true;
	if (!class_storms_in_use)
		return false;
	rsttrace_storm_class_of(&key);
	return count_in_slot(cpu, &key, e, watched_local, seen_stat);
}

/* Word `port` of a shortcut table (maps.bpf.h), read whole. */
static __always_inline __u64 shortcut_at(const __u64 *table, __u16 port)
{
	__u32 index = port;

	/* As port_watched: the 6.1 verifier keeps no bounds after a byte swap. */
	barrier_var(index);
	return *(const volatile __u64 *)&table[index & (RSTTRACE_SHORTCUTS - 1)];
}

/* 4 or 6 when the socket's local address is a loopback scope's (127.0.0.0/8, ::1;
 * records.h: rsttrace_storm_class_of), else 0. */
static __always_inline __u8 sock_loopback_family(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family == AF_INET)
		return (bpf_ntohl(sk->__sk_common.skc_rcv_saddr) >> 24) == 127 ? 4 : 0;
	if (family == AF_INET6) {
		const __u32 *word = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32;

		return (word[0] | word[1] | word[2]) == 0 && word[3] == bpf_htonl(1) ? 6 : 0;
	}
	return 0;
}

/*
 * A received twin of a loopback class storm (a reset received in SYN_SENT by a
 * client on this host): true when counted in its storm, as emit() and
 * count_in_storm() would count it, decided from the socket alone through
 * loopback_twin_shortcuts. False: the event takes the ordinary way.
 */
static __always_inline bool count_loopback_twin(const struct sock *sk)
{
	__u16 port, local_port;
	__u64 shortcut, *counter;
	__u32 slot;
	__u8 family;

	/* A peer's storm would come first (count_in_storm): only while every storm is a class's. */
	if (!class_storms_in_use || storms_in_use != class_storms_in_use)
		return false;
	if (sk->__sk_common.skc_state != TCP_SYN_SENT)
		return false;
	port = bpf_ntohs(sk->__sk_common.skc_dport);
	shortcut = shortcut_at(loopback_twin_shortcuts, port);
	if (!shortcut || shortcut == RSTTRACE_SHORTCUT_SEVERAL)
		return false;
	/* The key rsttrace_storm_key_of() makes: the watched port the remote end's only. */
	local_port = sk->__sk_common.skc_num;
	family = sock_loopback_family(sk);
	if (!family || !local_port || port_watched(local_port) || !port_watched(port))
		return false;
	slot = shortcut & (RSTTRACE_STORM_SLOTS - 1);
	if (shortcut != rsttrace_shortcut_of(sock_netns_btf(sk), port, family, slot))
		return false;
	counter = bpf_map_lookup_elem(&storm_counts, &slot);
	if (!counter)
		return false;
	*counter += 1;
	count_two(RSTTRACE_STAT_RESET_RECEIVED, RSTTRACE_STAT_AGGREGATED);
	return true;
}

/*
 * A connect() from a storm's peer to its port (the local end of a loopback
 * storm), or from within a class storm's scope to its port (storm_peers holds
 * the class's scope address: records.h, rsttrace_storm_class_of).
 */
static __always_inline bool connect_in_storm(const struct sock *sk)
{
	struct rsttrace_storm_peer peer = {};
	struct rsttrace_storm_key scope = {};
	__u16 family;

	if (!storms_in_use)
		return false;
	/* Only class storms: storm_peers holds loopback scopes only, each mirrored in spared_connect_shortcuts. */
	if (storms_in_use == class_storms_in_use) {
		__u16 port = bpf_ntohs(sk->__sk_common.skc_dport);
		__u8 loopback = sock_loopback_family(sk);
		__u64 shortcut;

		if (!loopback)
			return false;
		shortcut = shortcut_at(spared_connect_shortcuts, port);
		if (!shortcut)
			return false;
		if (shortcut == rsttrace_shortcut_of(sock_netns_btf(sk), port, loopback, 0))
			return true;
		/* Several storms share the word, or another's holds it: the map decides. */
	}
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
	if (storms_in_use != class_storms_in_use && bpf_map_lookup_elem(&storm_peers, &peer))
		return true;
	if (!class_storms_in_use)
		return false;
	scope.family = peer.family;
	__builtin_memcpy(scope.peer_addr, peer.addr, RSTTRACE_ADDR_LEN);
	rsttrace_storm_class_of(&scope);
	__builtin_memcpy(peer.addr, scope.peer_addr, RSTTRACE_ADDR_LEN);
	return bpf_map_lookup_elem(&storm_peers, &peer) != 0;
}

#endif /* RSTTRACE_STORM_BPF_H */
