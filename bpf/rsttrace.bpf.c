// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel side of rsttrace: every TCP reset sent or received and every dropped
 * TCP packet on a watched port becomes one rsttrace_tcp_event on the ring
 * buffer, with the owner of the socket (the process that connected, accepted
 * or closed it), not just the task the hook happened to run in.
 *
 * Tracepoints (tp_btf and syscall tracepoints) carry everything on 6.10 and
 * later; kprobes and fentry are not available on every kernel rsttrace must
 * run on. The one kprobe below fills what older tracepoints lack, where the
 * kernel has kprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "core_fixes.bpf.h"
#include "rsttrace/records.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define HEADER_UNSET ((__u16)~0U)

/* Set by userspace before load. 0: every network namespace. */
const volatile __u32 filter_netns = 0;

/* watched_ports[p] != 0: port p is watched. Written by userspace after load. */
__u8 watched_ports[65536];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by userspace (--ring-buffer-size) */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RSTTRACE_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

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
 * Socket address -> the process that last connected, accepted or closed it.
 * LRU: bounded, and a socket freed without a final state change simply ages
 * out. Entries for reused addresses are reset when a new socket starts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/*
 * Storm aggregation (records.h): keys userspace put here are counted in
 * storm_counts[slot] instead of being emitted. storms_in_use (written by
 * userspace) skips the key lookup entirely while there is no storm.
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

/* Peers and ports of the storms (records.h); values unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSTTRACE_STORM_SLOTS);
	__type(key, struct rsttrace_storm_peer);
	__type(value, __u8);
} storm_peers SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &stat);

	if (value)
		*value += 1;
}

/*
 * The packet the last reported stack reset on this CPU answered (its skb
 * address), 0 when none is pending. The kernel sends the reset and frees the
 * packet in one softirq pass on one CPU, so a per-CPU slot suffices.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} answered_packet SEC(".maps");

static __always_inline void remember_answered_packet(const struct sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *slot = bpf_map_lookup_elem(&answered_packet, &zero);

	if (slot)
		*slot = (__u64)skb;
}

/*
 * True when this drop is the NO_SOCKET free of the packet a reported reset
 * just answered (core_fixes: drop_is_no_socket): one connection attempt is
 * then one event, not two. Counted as a drop seen and as folded.
 */
static __always_inline bool fold_answered_drop(const struct sk_buff *skb, __u32 reason)
{
	__u32 zero = 0;
	__u64 *slot = bpf_map_lookup_elem(&answered_packet, &zero);
	bool answered;

	if (!slot || !*slot)
		return false;
	/* Cleared by the next drop whatever it is: a slot left by a packet that was
	 * not dropped must never match a later packet at the same address. */
	answered = *slot == (__u64)skb;
	*slot = 0;
	if (!answered || !drop_is_no_socket(reason))
		return false;
	count(RSTTRACE_STAT_DROP);
	count(RSTTRACE_STAT_FOLDED);
	return true;
}

static __always_inline bool port_watched(__u16 port)
{
	/* The 6.1 verifier (seen under qemu) keeps no bounds for a register after a
	 * byte swap, so a bpf_ntohs() port indexing the array was rejected as
	 * unbounded; mask it where the compiler cannot drop the mask. */
	__u32 index = port;

	barrier_var(index);
	return watched_ports[index & 0xffff] != 0;
}

static __always_inline bool event_watched(const struct rsttrace_tcp_event *e)
{
	return port_watched(e->local_port) || port_watched(e->remote_port);
}

static __always_inline bool netns_selected(__u32 netns)
{
	return filter_netns == 0 || filter_netns == netns;
}

static __always_inline bool is_full_sock_state(__u8 state)
{
	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/*
 * Kernel structures are read two ways. Programs on BTF tracepoints (tp_btf)
 * get typed pointers: plain loads, which the verifier makes fault-safe, cost
 * about a nanosecond each. The kprobe and the syscall tracepoints have untyped
 * pointers and need a bpf_probe_read_kernel() call per field (BPF_CORE_READ),
 * 15-20 ns each, which in a reset storm was most of an event's cost. `typed`
 * is a constant at every call site, so each program keeps one of the two.
 * Fields past struct sock (inet_sock, tcp_sock) are always read with the
 * helper: the verifier checks typed loads against struct sock's size.
 */
#define READ_FIELD(typed, ptr, field) ((typed) ? (ptr)->field : BPF_CORE_READ(ptr, field))
#define READ_BYTES(typed, dst, size, src)                  \
	do {                                               \
		if (typed)                                 \
			__builtin_memcpy(dst, src, size);  \
		else                                       \
			bpf_core_read(dst, size, src);     \
	} while (0)

/* Either end of the socket (a BTF pointer) is on a watched port. */
static __always_inline bool sock_port_watched(const struct sock *sk)
{
	return port_watched(sk->__sk_common.skc_num) || port_watched(bpf_ntohs(sk->__sk_common.skc_dport));
}

static __always_inline __u32 sock_netns(const struct sock *sk, bool typed)
{
	if (typed)
		return sk->__sk_common.skc_net.net->ns.inum;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

#define PF_EXITING 0x00000004

static __always_inline void record_owner(const struct sock *sk, __u8 source)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock_owner owner = {}, *previous;
	__u64 key = (__u64)sk;

	/* connect() and listen() start a socket's story: nothing to carry over. */
	if (source != RSTTRACE_OWNER_CONNECT && source != RSTTRACE_OWNER_LISTEN) {
		previous = bpf_map_lookup_elem(&sock_owners, &key);
		if (previous) {
			owner.accept_pid = previous->accept_pid;
			owner.accept_ts_ns = previous->accept_ts_ns;
		}
	}
	owner.ts_ns = bpf_ktime_get_ns();
	owner.pid = bpf_get_current_pid_tgid() >> 32;
	owner.source = source;
	bpf_get_current_comm(owner.comm, sizeof(owner.comm));
	if (source == RSTTRACE_OWNER_ACCEPT) {
		owner.accept_pid = owner.pid;
		owner.accept_ts_ns = owner.ts_ns;
	}
	/* A close from exit(): the process ended (or was killed) holding the socket. */
	if (source == RSTTRACE_OWNER_CLOSE && (BPF_CORE_READ(task, flags) & PF_EXITING)) {
		owner.exiting = 1;
		owner.exit_code = BPF_CORE_READ(task, exit_code);
	}
	bpf_map_update_elem(&sock_owners, &key, &owner, BPF_ANY);
}

static __always_inline void fill_owner(struct rsttrace_tcp_event *e)
{
	struct sock_owner *owner;

	if (!e->sock_id)
		return;
	owner = bpf_map_lookup_elem(&sock_owners, &e->sock_id);
	if (!owner)
		return;
	e->owner_pid = owner->pid;
	e->owner_source = owner->source;
	e->owner_ts_ns = owner->ts_ns;
	e->acceptor_pid = owner->accept_pid;
	e->acceptor_ts_ns = owner->accept_ts_ns;
	if (owner->exiting) {
		e->flags |= RSTTRACE_FLAG_OWNER_EXITING;
		e->owner_exit_code = owner->exit_code;
	}
	__builtin_memcpy(e->owner_comm, owner->comm, sizeof(e->owner_comm));
}

/*
 * Socket identity, state and namespace. Only sock_common is valid for request
 * and timewait sockets: FLAG_FULLSOCK marks the others.
 */
static __always_inline void fill_sock_identity(struct rsttrace_tcp_event *e, const struct sock *sk, bool typed)
{
	e->sock_id = (__u64)sk;
	e->flags |= RSTTRACE_FLAG_SOCKET;
	e->tcp_state = READ_FIELD(typed, sk, __sk_common.skc_state);
	e->netns = sock_netns(sk, typed);
	if (is_full_sock_state(e->tcp_state))
		e->flags |= RSTTRACE_FLAG_FULLSOCK;
}

/* tcp_sock's byte counters (past struct sock: read through the helper), for full sockets. */
static __always_inline void fill_sock_counters(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	if (!sk || !(e->flags & RSTTRACE_FLAG_FULLSOCK))
		return;
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->unread_bytes = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);
}

static __always_inline bool fill_sock_addresses(struct rsttrace_tcp_event *e, const struct sock *sk, bool typed)
{
	__u16 family = READ_FIELD(typed, sk, __sk_common.skc_family);

	if (family == AF_INET) {
		e->family = 4;
		READ_BYTES(typed, e->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		READ_BYTES(typed, e->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		e->family = 6;
		READ_BYTES(typed, e->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		READ_BYTES(typed, e->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return false;
	}
	e->local_port = READ_FIELD(typed, sk, __sk_common.skc_num);
	e->remote_port = bpf_ntohs(READ_FIELD(typed, sk, __sk_common.skc_dport));
	/* An unhashed (closed) socket reads skc_num 0; inet_sport keeps the port. */
	if (!e->local_port && is_full_sock_state(e->tcp_state))
		e->local_port = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	return true;
}

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

/* An event about socket `sk` alone (no packet): false unless it is TCP on a watched port. */
static __always_inline bool fill_watched_socket(struct rsttrace_tcp_event *e, const struct sock *sk, bool typed)
{
	fill_sock_identity(e, sk, typed);
	return fill_sock_addresses(e, sk, typed) && event_watched(e);
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

static __always_inline void fill_context(struct rsttrace_tcp_event *e)
{
	e->header.type = RSTTRACE_RECORD_TCP_EVENT;
	e->header.size = sizeof(*e);
	e->ts_ns = bpf_ktime_get_ns();
	e->context_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->context_comm, sizeof(e->context_comm));
}

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

/*
 * Called once an event passed the port filter: count it, filter the netns,
 * then count it in its storm or complete and emit it. Context and owner are
 * read only here, after the storm check: an aggregated event does not need them.
 */
static __always_inline void emit(struct rsttrace_tcp_event *e, const struct sock *sk, __u8 kind, __u32 seen_stat)
{
	e->kind = kind;
	count(seen_stat);
	if (!netns_selected(e->netns) || count_in_storm(e))
		return;
	fill_sock_counters(e, sk);
	fill_context(e);
	fill_owner(e);
	/* No wakeup: a wakeup per event loses events on some kernels; userspace polls. */
	if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
		count(RSTTRACE_STAT_LOST);
	else
		count(RSTTRACE_STAT_EMITTED);
}

/* A reset leaving this host; `by_closer`: sent by the process closing `sk`, its owner. */
static __always_inline void emit_reset_sent(struct rsttrace_tcp_event *e, const struct sock *sk, bool by_closer)
{
	if (by_closer) {
		e->flags |= RSTTRACE_FLAG_BY_CLOSER;
		record_owner(sk, RSTTRACE_OWNER_CLOSE);
	}
	emit(e, sk, RSTTRACE_KIND_RESET_SENT, RSTTRACE_STAT_RESET_SENT);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(handle_send_reset)
{
	/* Read by index: the argument list depends on the kernel (core_fixes). */
	const struct sock *sk = (const struct sock *)ctx[0];
	const struct sk_buff *skb = (const struct sk_buff *)ctx[1];
	struct rsttrace_tcp_event e = {};

	if (tcp_send_reset_args >= 3) {
		e.reason = (__u32)ctx[2];
		e.flags |= RSTTRACE_FLAG_REASON;
	}
	/* With a packet (stack reset: sk may be NULL, a listener, a request or
	 * timewait socket) the packet that provoked the reset is the truth for
	 * addresses; an active reset has only the socket. */
	if (sk)
		fill_sock_identity(&e, sk, true);
	if (skb) {
		if (!fill_packet_addresses(&e, skb, true))
			return 0;
		if (!sk)
			fill_packet_device(&e, skb, false);
	} else if (!sk || !fill_sock_addresses(&e, sk, true)) {
		return 0;
	}
	if (!event_watched(&e))
		return 0;
	/* A reset for a packet that matched no socket: the kernel frees that
	 * packet next, as a NO_SOCKET drop, on this CPU (see fold_answered_drop). */
	if (skb && !sk)
		remember_answered_packet(skb);
	emit_reset_sent(&e, sk, sk && (e.flags & RSTTRACE_FLAG_REASON) && reset_sent_by_closer(e.reason));
	return 0;
}

/*
 * Before 6.10, tcp_send_active_reset() (close() with unread data, a zero
 * linger, disconnect, keepalive and memory aborts) does not reach
 * tcp:tcp_send_reset. Where kprobes exist, this fills the gap; userspace
 * loads it only when the tracepoint lacks the reason argument, so one reset is
 * never reported twice. The close and disconnect paths set TCP_CLOSE before
 * sending, in the closing process; the timer paths send from the old state.
 */
SEC("kprobe/tcp_send_active_reset")
int BPF_KPROBE(handle_active_reset, struct sock *sk)
{
	struct rsttrace_tcp_event e = {};

	if (!sk || !fill_watched_socket(&e, sk, false))
		return 0;
	e.flags |= RSTTRACE_FLAG_KPROBE;
	emit_reset_sent(&e, sk, e.tcp_state == TCP_CLOSE);
	return 0;
}

/* Never attached by a trace: `rsttrace check` loads it alone to tell whether
 * this kernel runs fentry programs ("?": not loaded unless asked). */
SEC("?fentry/tcp_send_active_reset")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_receive_reset, struct sock *sk)
{
	struct rsttrace_tcp_event e = {};

	if (!fill_watched_socket(&e, sk, true))
		return 0;
	emit(&e, sk, RSTTRACE_KIND_RESET_RECEIVED, RSTTRACE_STAT_RESET_RECEIVED);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(handle_kfree_skb)
{
	const struct sk_buff *skb = (const struct sk_buff *)ctx[0];
	__u16 protocol = skb->protocol;
	struct rsttrace_tcp_event e = {};
	const struct sock *sk = 0;

	/* Every dropped packet of the host comes here: leave early. */
	if (protocol != bpf_htons(ETH_P_IP) && protocol != bpf_htons(ETH_P_IPV6))
		return 0;
	if (kfree_skb_args >= 3 && fold_answered_drop(skb, (__u32)ctx[2]))
		return 0;
	if (!fill_packet_addresses(&e, skb, skb->skb_iif != 0) || !event_watched(&e))
		return 0;
	if (kfree_skb_args >= 3) {
		e.reason = (__u32)ctx[2];
		e.flags |= RSTTRACE_FLAG_REASON;
		if (drop_is_consumed_reset(e.reason))
			return 0;
	}
	e.location = ctx[1];
	if (kfree_skb_args >= 4)
		sk = (const struct sock *)ctx[3];
	if (!sk)
		sk = skb->sk;
	if (sk)
		fill_sock_identity(&e, sk, true);
	if (skb->_skb_refdst)
		e.flags |= RSTTRACE_FLAG_ROUTED;
	fill_packet_device(&e, skb, true);
	emit(&e, sk, RSTTRACE_KIND_DROP, RSTTRACE_STAT_DROP);
	return 0;
}

/*
 * Owner tracking. inet_sock_set_state fires in process context for connect(),
 * listen(), close() and shutdown(); in softirq for handshakes and resets, where
 * the running task is unrelated, so only the former record an owner.
 */
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
	peer.netns = sock_netns(sk, true);
	peer.port = bpf_ntohs(sk->__sk_common.skc_dport);
	return bpf_map_lookup_elem(&storm_peers, &peer) != 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;

	if (sk_protocol_of(sk, true) != IPPROTO_TCP)
		return 0;
	/* connect() enters SYN_SENT before it picks the local port. */
	if (!sock_port_watched(sk))
		return 0;
	switch (newstate) {
	case TCP_SYN_SENT:
		if (!connect_in_storm(sk))
			record_owner(sk, RSTTRACE_OWNER_CONNECT);
		break;
	case TCP_LISTEN:
		record_owner(sk, RSTTRACE_OWNER_LISTEN);
		break;
	case TCP_ESTABLISHED:
		/* A new passive socket: forget whatever had this address before. */
		if (oldstate == TCP_SYN_RECV)
			bpf_map_delete_elem(&sock_owners, &key);
		break;
	case TCP_FIN_WAIT1:
	case TCP_LAST_ACK:
		record_owner(sk, RSTTRACE_OWNER_CLOSE);
		break;
	}
	return 0;
}

/*
 * A forked child (sshd's per-connection process) never calls accept(): it
 * becomes the owner when it reads or writes the socket. Only a change of
 * process updates the map, so the steady state is one lookup per call.
 */
static __always_inline void record_io(const struct sock *sk)
{
	struct sock_owner *owner;
	__u64 key = (__u64)sk;
	__u16 family;

	if (!sk)
		return;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return;
	if (!sock_port_watched(sk))
		return;
	if (sk_protocol_of(sk, true) != IPPROTO_TCP)
		return;
	owner = bpf_map_lookup_elem(&sock_owners, &key);
	if (owner && owner->pid == bpf_get_current_pid_tgid() >> 32)
		return;
	record_owner(sk, RSTTRACE_OWNER_IO);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(handle_send_length, struct sock *sk)
{
	record_io(sk);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_recv_length, struct sock *sk)
{
	record_io(sk);
	return 0;
}

/* The file behind `fd` in the current process, 0 if none. */
static __always_inline struct file *current_file(long fd)
{
	struct file **fds = 0;
	struct file *file = 0;

	/* The fd table: plain loads where the task is typed (core_fixes), four
	 * helper reads before. The array's slots are read with the helper either
	 * way: a pointer to pointers carries no type. */
	if (have_current_task_btf()) {
		struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;

		if (!fdt || fd >= fdt->max_fds)
			return 0;
		fds = fdt->fd;
	} else {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);

		if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
			return 0;
		fds = BPF_CORE_READ(fdt, fd);
	}
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

/* accept() returns a new fd: follow it to its socket and record the acceptor. */
static __always_inline void record_accepted(long fd)
{
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	/* skc_dport and skc_num share one word (skc_portpair): one read for both. */
	struct {
		__be16 dport;
		__u16 num;
	} ports;
	__u16 family;

	if (fd < 0 || !(file = current_file(fd)))
		return;
	sock = BPF_CORE_READ(file, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : 0;
	if (!sk || bpf_core_read(&ports, sizeof(ports), &sk->__sk_common.skc_portpair))
		return;
	/* Unwatched ports (nearly every accept on a busy host) leave here. */
	if (!port_watched(ports.num) && !port_watched(bpf_ntohs(ports.dport)))
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) || sk_protocol_of(sk, false) != IPPROTO_TCP)
		return;
	record_owner(sk, RSTTRACE_OWNER_ACCEPT);
}

SEC("tp/syscalls/sys_exit_accept4")
int handle_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	record_accepted(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_exit_accept")
int handle_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	record_accepted(ctx->ret);
	return 0;
}

/*
 * TCP wrappers evidence: libwrap (sshd, tcpd) opens /etc/hosts.allow and
 * /etc/hosts.deny for every connection it judges. Userspace joins these opens
 * to the process that later closes the connection.
 */
static __always_inline __u8 wrapper_file(const char *name)
{
	/* Not static: clang 14 gives function-local statics a BTF offset in
	 * .rodata that the kernel rejects, and the object's BTF (line info in
	 * verifier logs) was then dropped on every kernel. */
	const char allow[] = "/etc/hosts.allow";
	const char deny[] = "/etc/hosts.deny";
	bool is_allow = true, is_deny = true;

	for (int i = 0; i < sizeof(allow); i++) {
		if (name[i] != allow[i])
			is_allow = false;
		if (i < sizeof(deny) && name[i] != deny[i])
			is_deny = false;
	}
	return is_allow ? RSTTRACE_HOSTS_ALLOW : is_deny ? RSTTRACE_HOSTS_DENY : 0;
}

/*
 * An open of a wrappers file is recorded at sys_enter_openat (the path is a
 * user pointer, readable only there) and submitted at sys_exit_openat only if
 * it succeeded: a failed open(O_WRONLY) of hosts.deny by an unprivileged
 * process must not make it "the writer", and a failed read-open means libwrap
 * read nothing from that file, so it is no evidence of a check either.
 * Keyed by pid_tgid (one syscall at a time per thread); LRU so that an entry
 * whose exit never ran (a thread killed in between) ages out instead of
 * filling the map.
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

SEC("tp/syscalls/sys_enter_openat")
int handle_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rsttrace_wrapper_open e = {};
	char name[20] = {};

	if (bpf_probe_read_user_str(name, sizeof(name), (const char *)ctx->args[1]) < 16 ||
	    name[0] != '/' || name[5] != 'h')
		return 0;
	e.file = wrapper_file(name);
	if (!e.file)
		return 0;
	e.header.type = RSTTRACE_RECORD_WRAPPER_OPEN;
	e.header.size = sizeof(e);
	e.ts_ns = bpf_ktime_get_ns();
	e.pid = pid_tgid >> 32;
	e.open_flags = (__u32)ctx->args[2];
	e.mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	/* Who opened it, as the initial user namespace sees it: cred->uid is a
	 * kuid (global), and a user namespace other than the initial one means
	 * everything this process says (names, files) is that user's own word. */
	e.uid = BPF_CORE_READ(task, cred, uid.val);
	e.user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	e.parent_pid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e.parent_thread, task, real_parent, comm);
	BPF_CORE_READ_STR_INTO(&e.parent_comm, task, real_parent, group_leader, comm);
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (bpf_map_update_elem(&pending_wrapper_opens, &pid_tgid, &e, BPF_ANY) == 0)
		__sync_fetch_and_add(&wrapper_opens_pending, 1);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int handle_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct rsttrace_wrapper_open *e;
	__u64 pid_tgid;

	if (!wrapper_opens_pending)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	e = bpf_map_lookup_elem(&pending_wrapper_opens, &pid_tgid);
	if (!e)
		return 0;
	if (ctx->ret >= 0) {
		if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
			count(RSTTRACE_STAT_LOST);
		else
			count(RSTTRACE_STAT_EVIDENCE);
	}
	if (bpf_map_delete_elem(&pending_wrapper_opens, &pid_tgid) == 0)
		__sync_fetch_and_sub(&wrapper_opens_pending, 1);
	return 0;
}
