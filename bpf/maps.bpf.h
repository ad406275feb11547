/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every map and global of rsttrace.bpf.o, in one place: what userspace sets
 * before load (.rodata), writes after load (.bss) and reads (maps). The
 * skeleton names them after the variables here and, as they are all defined
 * before any program, lists them in this order.
 */
#ifndef RSTTRACE_MAPS_BPF_H
#define RSTTRACE_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "rsttrace/records.h"

/* Set by userspace before load. 0: every network namespace. */
const volatile __u32 filter_netns = 0;

/* watched_ports[p] != 0: port p is watched. Written by userspace after load. */
__u8 watched_ports[65536];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by userspace before load (--ring-buffer-kib) */
} events SEC(".maps");

struct sock_owner {
	__u64 ts_ns;
	__u64 accept_ts_ns;
	__u32 pid;
	__u32 accept_pid; /* kept when a child later closes it: listener vs child */
	__u32 exit_code;  /* the closer's exit_code when it closed while exiting */
	__u8 source;      /* enum rsttrace_owner_source */
	__u8 exiting;
	__u8 pad[2];
	char comm[RSTTRACE_COMM_LEN];
};

/*
 * Socket address -> the process that last connected, accepted or closed it
 * (owner.bpf.h). LRU: bounded, and a socket freed without a final state
 * change simply ages out. Entries for reused addresses are reset when a new
 * socket starts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/*
 * Storm aggregation (records.h, storm.bpf.h): keys userspace put here are
 * counted in storm_counts[slot] instead of being emitted. storms_in_use
 * (written by userspace) skips the key lookup entirely while there is no storm.
 */
__u32 storms_in_use;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSTTRACE_STORM_SLOTS);
	__type(key, struct rsttrace_storm_key);
	__type(value, struct rsttrace_storm_slot);
} storm_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RSTTRACE_STORM_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} storm_counts SEC(".maps");

/*
 * Each CPU's last storm_keys lookup (storm.bpf.h: find_storm_slot; in cpu_state), reused while
 * storm_keys_generation is the one it was made under: userspace bumps it after
 * every change of storm_keys. In a flood every event of a CPU looks up the same
 * key; the hash of its 36 bytes and the bucket walk were measured at ~100
 * instructions of a refused connection's ~1,100 in the drop's program (6.1 guest).
 * `seq` is odd while the entry is written: a program that interrupted another on
 * this CPU (a softirq's drop inside a task's reset) cannot hand it a torn entry.
 */
__u64 storm_keys_generation;

struct storm_lookup {
	__u32 seq;
	struct rsttrace_storm_key key;
	__u64 generation;
	struct rsttrace_storm_slot slot; /* active 0: no storm counts the key */
};

/* Peers and ports of the storms (records.h); values unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSTTRACE_STORM_SLOTS);
	__type(key, struct rsttrace_storm_peer);
	__type(value, __u8);
} storm_peers SEC(".maps");

/*
 * Class storms (records.h: rsttrace_storm_class_of): class_storms_in_use
 * (written by userspace) skips the second key lookup while there is none.
 * Their peers and /24 or /64 prefixes are counted here, bounded by LRU.
 */
__u32 class_storms_in_use;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSTTRACE_CLASS_PEERS);
	__type(key, struct rsttrace_class_peer);
	__type(value, __u64);
} class_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSTTRACE_CLASS_PREFIXES);
	__type(key, struct rsttrace_class_peer);
	__type(value, __u64);
} class_prefixes SEC(".maps");

/*
 * First sightings (storm.bpf.h: seen_before): a peer or prefix enters the maps
 * above at its second event, so a flood of addresses seen once each costs a
 * table store per event, not an LRU insert and eviction (measured: 600 of a
 * refused connection's 850 ns in tcp_send_reset). Each entry holds the
 * fingerprint of the last key whose hash chose it, mixed with
 * class_generation (userspace bumps it when a class storm starts, so a slot's
 * former storm never matches); 0 is empty. 1 MiB, touched only by the kernel:
 * its own array, not .bss, which libbpf maps into the collector whole (it was
 * 1 MiB of the collector's RSS; an array lookup is inlined, as cheap).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RSTTRACE_CLASS_SIGHTINGS);
	__type(key, __u32);
	__type(value, __u32);
} class_first_sightings SEC(".maps");

__u32 class_generation;

/*
 * Marks of the keys put in class_peers (storm.bpf.h: count_class_peer), one
 * byte per hash of a key: a key in the map has its mark set, so a clear mark
 * spares the lookup of a new address. Set by the kernel, never cleared while
 * a class storm counts peers; userspace clears them when one starts alone
 * (collect/bpf_session.cpp), when no key of a counting storm is in the map.
 */
__u8 class_peers_marks[RSTTRACE_CLASS_PEER_MARKS];

/*
 * Loopback class storms' shortcuts (records.h: rsttrace_shortcut_of), by port
 * % RSTTRACE_SHORTCUTS, written by userspace (collect/storm_shortcuts.h): the
 * storms of received twins (with their slots), and the scopes in storm_peers
 * whose connects are spared (storm.bpf.h).
 */
__u64 loopback_twin_shortcuts[RSTTRACE_SHORTCUTS];
__u64 spared_connect_shortcuts[RSTTRACE_SHORTCUTS];

/*
 * Packets a hook has just reported on this CPU (skb addresses), 0 when none
 * is pending, for kfree_skb, which runs next on the same packet in the same
 * softirq pass on the same CPU (packet.bpf.h):
 * - answered: the packet the last reported stack reset answered;
 * - listen_overflow: the packet handle_listen_overflow_fexit reported;
 *   tcp_v4_rcv()/tcp_v6_rcv() free it with no reason before
 *   TCP_LISTEN_OVERFLOW (fold_listen_overflow_drop). Userspace sets
 *   listen_overflow_fexit when it loads the fexit, so kfree_skb looks at it only then.
 */
struct packet_slots {
	__u64 answered;
	__u64 listen_overflow;
};

/*
 * Each CPU's state, one entry of one map: its counters, its packet slots and
 * its last storm lookup. kfree_skb, which runs for every dropped packet of
 * the host, looks it up once per run instead of once for each (a helper call
 * on kernels before 6.10, which first inline per-CPU array lookups: ~20
 * instructions each on 6.1). The counters come first: userspace reads them
 * at offset 0 of each CPU's value (records.h: struct rsttrace_counters).
 */
struct cpu_state {
	struct rsttrace_counters counters;
	struct packet_slots slots;
	struct storm_lookup storm_lookup;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_state SEC(".maps");

static __always_inline struct cpu_state *this_cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_state, &zero);
}

/*
 * The packet whose TIME_WAIT reset handle_timewait_fexit just reported on
 * this CPU (its skb address), 0 when none: tcp:tcp_send_reset, where it fires
 * for timewait sockets too, runs next in the same softirq pass and must not
 * report it again (packet.bpf.h). And whether it does: set by the tracepoint
 * the first time it sees a socket that is not a full one.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} timewait_reset_packet SEC(".maps");

__u32 tracepoint_sees_timewait;

const volatile __u8 listen_overflow_fexit = 0;

/* The listener's sk_drops when tcp_check_req() began on this CPU (softirq: no nesting). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} listen_drops_before SEC(".maps");

/*
 * Opens of a TCP wrappers file between sys_enter_openat and sys_exit_openat
 * (wrappers.bpf.h). Keyed by pid_tgid (one syscall at a time per thread);
 * LRU so that an entry whose exit never ran (a thread killed in between)
 * ages out instead of filling the map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct rsttrace_wrapper_open);
} pending_wrapper_opens SEC(".maps");

/*
 * Entries put in pending_wrapper_opens and not yet taken out. sys_exit_openat
 * fires for every openat of every process: while this is 0 (nearly always)
 * it returns after one load, without a map lookup. An entry the LRU evicted
 * leaves it too high, which costs only lookups, never a missed record.
 */
__u64 wrapper_opens_pending;

/* One more in `cpu`'s counter `stat` and, unless it is RSTTRACE_STAT_COUNT, in `also`
 * (enum rsttrace_stat; constants in every caller). */
static __always_inline void count_two_in(struct cpu_state *cpu, __u32 stat, __u32 also)
{
	cpu->counters.count[stat & (RSTTRACE_STAT_COUNT - 1)] += 1;
	if (also < RSTTRACE_STAT_COUNT)
		cpu->counters.count[also] += 1;
}

/* count_two_in() this CPU's state. */
static __always_inline void count_two(__u32 stat, __u32 also)
{
	struct cpu_state *cpu = this_cpu_state();

	if (cpu)
		count_two_in(cpu, stat, also);
}

/* One more in this CPU's counter `stat` (enum rsttrace_stat). */
static __always_inline void count(__u32 stat)
{
	count_two(stat, RSTTRACE_STAT_COUNT);
}

#endif /* RSTTRACE_MAPS_BPF_H */
