/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The records the BPF programs put on the ring buffer, defined once for both
 * sides: bpf/ compiles this as C against vmlinux/<arch>/vmlinux.h, userspace/ as C++ against
 * <linux/types.h>. Fixed-width fields, explicit padding, sizes asserted below,
 * so a layout change breaks the build instead of silently misdecoding.
 */
#ifndef RSTTRACE_RECORDS_H
#define RSTTRACE_RECORDS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define RSTTRACE_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define RSTTRACE_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define RSTTRACE_COMM_LEN 16
#define RSTTRACE_ADDR_LEN 16

/* record_header.type */
enum rsttrace_record_type {
	RSTTRACE_RECORD_TCP_EVENT = 1,
	RSTTRACE_RECORD_WRAPPER_OPEN = 2,
};

/* tcp_event.kind: which kernel hook saw it */
enum rsttrace_event_kind {
	RSTTRACE_KIND_RESET_SENT = 1,     /* tcp:tcp_send_reset */
	RSTTRACE_KIND_RESET_RECEIVED = 2, /* tcp:tcp_receive_reset */
	RSTTRACE_KIND_DROP = 3,           /* skb:kfree_skb */
	/* Connection notes (no reset, no drop): a server socket of a watched local
	 * port was accepted, or reached CLOSE (then tcp_state holds the state it
	 * left: LAST_ACK = the client closed first, FIN_WAIT1/FIN_WAIT2/CLOSING = sshd
	 * did, others = a reset). The per-source history behind sshd's
	 * MaxStartups and PerSourcePenalties verdicts; never a line of their own. */
	RSTTRACE_KIND_ACCEPTED = 4,       /* syscalls:sys_exit_accept{,4} */
	RSTTRACE_KIND_CLOSED = 5,         /* sock:inet_sock_set_state to TCP_CLOSE */
};

/* tcp_event.owner_source: how the owner below was learnt */
enum rsttrace_owner_source {
	RSTTRACE_OWNER_NONE = 0,    /* socket never seen in process context */
	RSTTRACE_OWNER_CONNECT = 1, /* it called connect() */
	RSTTRACE_OWNER_ACCEPT = 2,  /* it accept()ed the socket */
	RSTTRACE_OWNER_CLOSE = 3,   /* it closed / shut down / aborted the socket */
	RSTTRACE_OWNER_LISTEN = 4,  /* it called listen() on it */
	RSTTRACE_OWNER_IO = 5,      /* it read or wrote it (e.g. a forked child) */
};

/* tcp_event.flags */
enum rsttrace_event_flags {
	RSTTRACE_FLAG_REASON = 1 << 0,   /* `reason` holds a kernel enum value */
	RSTTRACE_FLAG_SOCKET = 1 << 1,   /* a socket was involved (sk != NULL) */
	RSTTRACE_FLAG_FULLSOCK = 1 << 2, /* ... and it was a full socket */
	RSTTRACE_FLAG_PACKET = 1 << 3,   /* addresses and tcp_flags came from a packet */
	RSTTRACE_FLAG_INGRESS = 1 << 4,  /* the packet was received by this host */
	RSTTRACE_FLAG_ROUTED = 1 << 5,   /* the packet had a route (dst) when it was freed */
	RSTTRACE_FLAG_OWNER_EXITING = 1 << 6, /* the owner closed it while exiting (owner_exit_code) */
	RSTTRACE_FLAG_BY_CLOSER = 1 << 7,     /* an active reset sent by the process closing the socket */
	RSTTRACE_FLAG_KPROBE = 1 << 8,        /* seen by the tcp_send_active_reset kprobe (kernels before 6.10) */
	RSTTRACE_FLAG_NETFILTER = 1 << 9,     /* drops: mark, ct_*, in_ifname and route_type below were read */
	RSTTRACE_FLAG_LISTEN_OVERFLOW = 1 << 10, /* drops: seen by the fexit on tcp_check_req at a full accept
						  * queue (kernels without TCP_LISTEN_OVERFLOW); no reason */
};

/* tcp_event.ct_state: conntrack's view of a dropped packet (skb->_nfct) */
enum rsttrace_ct_state {
	RSTTRACE_CT_INVALID = 0,     /* no entry: what --ctstate INVALID matches */
	RSTTRACE_CT_NEW = 1,
	RSTTRACE_CT_ESTABLISHED = 2,
	RSTTRACE_CT_RELATED = 3,
	RSTTRACE_CT_UNTRACKED = 4,
	RSTTRACE_CT_UNKNOWN = 5,     /* this kernel's sk_buff has no _nfct */
};
#define RSTTRACE_CT_REPLY 0x80      /* or'ed into ct_state: the packet goes in the reply direction */

/* index into struct rsttrace_counters, which begins each CPU's value of the BPF map cpu_state */
enum rsttrace_stat {
	RSTTRACE_STAT_EMITTED = 0,     /* tcp events written to the ring buffer */
	RSTTRACE_STAT_LOST = 1,        /* records that did not fit in the ring buffer */
	RSTTRACE_STAT_RESET_SENT = 2,  /* resets seen on watched ports, before the netns filter */
	RSTTRACE_STAT_RESET_RECEIVED = 3,
	RSTTRACE_STAT_DROP = 4,
	RSTTRACE_STAT_EVIDENCE = 5,    /* evidence records (wrapper opens, connection notes) written */
	RSTTRACE_STAT_FOLDED = 6,      /* events not emitted: they repeat one just emitted (also counted above) */
	RSTTRACE_STAT_AGGREGATED = 7,  /* events not emitted: counted in a storm slot instead (also counted above) */
	RSTTRACE_STAT_COUNT = 8,
};

/*
 * Every counter of a CPU, at the start of its entry of cpu_state
 * (bpf/maps.bpf.h), so that a program counting two (an event seen and
 * emitted, or seen and aggregated) updates one entry it has looked up once
 * (a helper call before 6.10, which first inlines per-CPU array lookups),
 * and userspace reads all of them in one call.
 */
struct rsttrace_counters {
	__u64 count[RSTTRACE_STAT_COUNT];
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_counters) == 64, "counters layout");
RSTTRACE_STATIC_ASSERT((RSTTRACE_STAT_COUNT & (RSTTRACE_STAT_COUNT - 1)) == 0, "a power of two: BPF masks the index");

struct rsttrace_record_header {
	__u16 type; /* enum rsttrace_record_type */
	__u16 size; /* sizeof the whole record */
	__u32 reserved;
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_record_header) == 8, "record_header layout");

struct rsttrace_tcp_event {
	struct rsttrace_record_header header;
	__u64 ts_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 sock_id;        /* kernel address of the socket, 0 if none: correlation only */
	__u64 owner_ts_ns;    /* when the owner was recorded (CLOCK_MONOTONIC), 0 if none */
	__u64 bytes_received; /* tcp_sock.bytes_received (full sockets) */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked (full sockets) */
	__u64 location;       /* kfree_skb: kernel address that freed the packet */
	__u64 acceptor_ts_ns; /* when acceptor_pid accepted it, 0 if not seen */
	__u32 netns;          /* network namespace inode */
	__u32 reason;         /* sk_rst_reason / skb_drop_reason value, see FLAG_REASON */
	__u32 owner_pid;      /* tgid of the owning process, 0 if unknown */
	__u32 context_pid;    /* tgid of the task the hook ran in (0: idle / softirq on idle) */
	__u32 unread_bytes;   /* rcv_nxt - copied_seq (full sockets): data the owner never read */
	__u32 ifindex;        /* device of the packet (drops), 0 if none */
	__u32 acceptor_pid;   /* tgid that accept()ed the socket, 0 if not seen */
	__u32 owner_exit_code; /* task->exit_code of an exiting owner (FLAG_OWNER_EXITING) */
	__u8 local_addr[RSTTRACE_ADDR_LEN];  /* network order; IPv4 in the first 4 bytes */
	__u8 remote_addr[RSTTRACE_ADDR_LEN];
	char owner_comm[RSTTRACE_COMM_LEN];
	char context_comm[RSTTRACE_COMM_LEN];
	__u16 local_port;  /* host order */
	__u16 remote_port; /* host order */
	__u8 family;       /* 4 or 6 */
	__u8 kind;         /* enum rsttrace_event_kind */
	__u8 tcp_state;    /* kernel TCP state value, 0 if no socket */
	__u8 tcp_flags;    /* TCP header flags byte of the packet (FLAG_PACKET) */
	__u8 owner_source; /* enum rsttrace_owner_source */
	__u8 pad;
	__u16 flags;       /* enum rsttrace_event_flags (FLAG_KPROBE needs 9 bits) */
	__u32 tcp_seq;     /* sequence number of the packet (FLAG_PACKET), host order */
	/* Issue 15, appended: */
	__u64 sock_cookie;    /* the socket's cookie (bpf_get_socket_cookie): never reused, unlike sock_id; 0 if none */
	__u32 listen_backlog; /* a listener's sk_max_ack_backlog (listen()'s backlog, capped by somaxconn), else 0 */
	__u32 accept_queue;   /* a listener's sk_ack_backlog: connections waiting for accept(), else 0 */
	/* Drops, FLAG_NETFILTER: what netfilter's matches read, as the packet carried it when freed. */
	__u32 mark;                /* skb->mark */
	__u32 ct_status;           /* nf_conn.status (IPS_* bits), 0 without an entry */
	__u8 ct_orig_daddr[RSTTRACE_ADDR_LEN]; /* the entry's original destination: before DNAT */
	char in_ifname[RSTTRACE_COMM_LEN];     /* the device the packet came in on (IFNAMSIZ) */
	__u16 ct_orig_dport;       /* host order */
	__u8 ct_state;             /* enum rsttrace_ct_state | RSTTRACE_CT_REPLY */
	__u8 route_type;           /* RTN_* of its IPv4 route (rtable.rt_type), 0 when none */
	__u8 pad_end[4];
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_tcp_event) == 240, "tcp_event layout");

/* wrapper_open.file */
enum rsttrace_wrapper_file {
	RSTTRACE_HOSTS_ALLOW = 1,
	RSTTRACE_HOSTS_DENY = 2,
};

/*
 * A process opened /etc/hosts.allow or /etc/hosts.deny (TCP wrappers), and
 * the open succeeded: the record is written at sys_exit_openat, only for a
 * return value >= 0. A failed open is no evidence of anything (issue 13: a
 * refused open(O_WRONLY) must never make a process "the writer").
 */
struct rsttrace_wrapper_open {
	struct rsttrace_record_header header;
	__u64 ts_ns;
	__u32 pid;        /* tgid */
	__u32 open_flags; /* openat() flags: O_WRONLY/O_RDWR mean a writer */
	__u32 mnt_ns;     /* mount namespace inode: which copy of the file */
	__u32 parent_pid; /* tgid of its parent: a shell's parent is the real writer (fail2ban) */
	__u32 uid;        /* the opener's real uid as the initial user namespace sees it (kuid) */
	__u32 user_ns;    /* inode of the opener's user namespace: not the initial one = its own word */
	__u8 file;        /* enum rsttrace_wrapper_file */
	__u8 pad[3];
	char comm[RSTTRACE_COMM_LEN];
	char parent_comm[RSTTRACE_COMM_LEN];   /* the parent process (its thread-group leader) */
	char parent_thread[RSTTRACE_COMM_LEN]; /* the parent thread that started it (fail2ban: f2b/a.<jail>) */
	__u8 pad_end[4];
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_wrapper_open) == 96, "wrapper_open layout");

/*
 * Storms. Above a rate (rsttrace --storm-threshold), userspace hands the BPF
 * side the key of a class of events that need no per-connection correlation
 * (a reset for no socket, a drop, a refused connect); the programs then count
 * matching events in a per-CPU slot instead of writing each to the ring
 * buffer, and userspace reports the counts once a second. The key is computed
 * by the function below on both sides, so the two can never disagree.
 */
#define RSTTRACE_STORM_SLOTS 64

struct rsttrace_storm_key {
	__u8 peer_addr[RSTTRACE_ADDR_LEN]; /* the end that is not on the watched port (the client) */
	__u32 netns;
	__u32 reason;      /* as in the event, 0 without FLAG_REASON */
	__u16 port;        /* the watched port */
	__u16 flags;       /* the event's flags, owner and closer bits cleared */
	__u8 family;
	__u8 kind;
	__u8 tcp_state;
	__u8 tcp_flags;
	__u8 watched_local; /* 1: the watched port is this host's end (a server) */
	__u8 peerless;      /* 1: a class storm's key (rsttrace_storm_class_of()): peer_addr is only its scope */
	__u8 pad[2];
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_storm_key) == 36, "storm_key layout");

/*
 * A storm's peer and port (storm_peers, bpf/storm.bpf.h): while one is listed, a connect() from
 * that address to that port gets no owner record. A loopback class storm lists its scope
 * address (rsttrace_storm_class_of): connects from any loopback address to its port. Its connection would only
 * be counted in the storm, which names no process, and the record (an LRU
 * hash update) was the largest cost of a refused connection.
 */
struct rsttrace_storm_peer {
	__u8 addr[RSTTRACE_ADDR_LEN];
	__u32 netns;
	__u16 port;
	__u8 family;
	__u8 pad;
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_storm_peer) == 24, "storm_peer layout");

/* storm_keys value: which slot of storm_counts counts the key, and whether it is counting. */
struct rsttrace_storm_slot {
	__u32 index;  /* < RSTTRACE_STORM_SLOTS */
	__u32 active; /* RSTTRACE_STORM_* bits; 0: the storm ended, events go to the ring buffer again */
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_storm_slot) == 8, "storm_slot layout");

/*
 * Fills `key` for event `e` and returns 1 when the event may be aggregated:
 * its verdict rests on the event alone (docs/attribution.md, "Storms"). Those
 * are resets sent and drops with no socket or a listener, and resets received
 * by a socket in SYN_SENT (kernel ABI values: TCP_SYN_SENT 2, TCP_LISTEN 10).
 * A connection's own socket carries evidence (owner, bytes) that only
 * correlation can weigh. `watched_local`: whether e->local_port is watched
 * (else e->remote_port is).
 */
static inline int rsttrace_storm_key_of(const struct rsttrace_tcp_event *e, int watched_local,
					struct rsttrace_storm_key *key)
{
	if (e->kind == RSTTRACE_KIND_RESET_RECEIVED) {
		if (e->tcp_state != 2)
			return 0;
	} else if (e->kind == RSTTRACE_KIND_RESET_SENT || e->kind == RSTTRACE_KIND_DROP) {
		if ((e->flags & RSTTRACE_FLAG_FULLSOCK) && e->tcp_state != 10)
			return 0;
	} else {
		return 0;
	}
	__builtin_memcpy(key->peer_addr, watched_local ? e->remote_addr : e->local_addr, RSTTRACE_ADDR_LEN);
	key->netns = e->netns;
	key->reason = (e->flags & RSTTRACE_FLAG_REASON) ? e->reason : 0;
	key->port = watched_local ? e->local_port : e->remote_port;
	key->flags = e->flags & (__u16)~(RSTTRACE_FLAG_OWNER_EXITING | RSTTRACE_FLAG_BY_CLOSER);
	key->family = e->family;
	key->kind = e->kind;
	key->tcp_state = (e->flags & RSTTRACE_FLAG_SOCKET) ? e->tcp_state : 0;
	key->tcp_flags = (e->flags & RSTTRACE_FLAG_PACKET) ? e->tcp_flags : 0;
	key->watched_local = watched_local ? 1 : 0;
	key->peerless = 0;
	key->pad[0] = key->pad[1] = 0;
	return 1;
}

/*
 * Class storms (issue 17): a flood from many peers, none above the threshold
 * alone. The class is the peer's key without the peer: its address becomes
 * its scope, loopback (127.0.0.0 for 127.0.0.0/8, ::1) or not (all zeros),
 * so that a loopback class keeps its received twin (the client ends are on
 * this host) and a remote one has none. Per peer and per prefix (/24, /64)
 * counts of a class storm go to bounded LRU maps keyed by the struct below.
 */
static inline void rsttrace_storm_class_of(struct rsttrace_storm_key *key)
{
	/* Word by word, not byte by byte: the kernel runs this on every event of a
	 * class storm (compiled for BPF, the byte loops were ~60 instructions). */
	__u8 loopback_v6_bytes[RSTTRACE_ADDR_LEN] = {0};
	__u32 addr[RSTTRACE_ADDR_LEN / 4], loopback_v6_words[RSTTRACE_ADDR_LEN / 4];
	__u8 scope; /* 127 for 127.0.0.0/8, else 0 */
	int loopback_v6;

	loopback_v6_bytes[RSTTRACE_ADDR_LEN - 1] = 1; /* ::1 */
	__builtin_memcpy(addr, key->peer_addr, sizeof(addr));
	__builtin_memcpy(loopback_v6_words, loopback_v6_bytes, sizeof(loopback_v6_words));
	loopback_v6 = key->family == 6 &&
		      ((addr[0] ^ loopback_v6_words[0]) | (addr[1] ^ loopback_v6_words[1]) |
		       (addr[2] ^ loopback_v6_words[2]) | (addr[3] ^ loopback_v6_words[3])) == 0;
	scope = key->family == 4 && key->peer_addr[0] == 127 ? 127 : 0;
	__builtin_memset(key->peer_addr, 0, RSTTRACE_ADDR_LEN);
	key->peer_addr[0] = scope;
	key->peer_addr[RSTTRACE_ADDR_LEN - 1] = loopback_v6 ? 1 : 0;
	key->peerless = 1;
}

/* Whether `key`'s peer (or a class's scope) is loopback, 127.0.0.0/8 or ::1: its client ends are on this host. */
static inline int rsttrace_storm_key_loopback(const struct rsttrace_storm_key *key)
{
	int i;

	if (key->family == 4)
		return key->peer_addr[0] == 127;
	if (key->family != 6 || key->peer_addr[RSTTRACE_ADDR_LEN - 1] != 1)
		return 0;
	for (i = 0; i < RSTTRACE_ADDR_LEN - 1; i++)
		if (key->peer_addr[i])
			return 0;
	return 1;
}

/* class_peers / class_prefixes key: one peer (prefix_len 32 or 128) or one
 * prefix (24 or 64, the address masked) of the class storm counting in `slot`. */
struct rsttrace_class_peer {
	__u8 addr[RSTTRACE_ADDR_LEN];
	__u32 slot;
	__u8 family;
	__u8 prefix_len;
	__u8 pad[2];
};
RSTTRACE_STATIC_ASSERT(sizeof(struct rsttrace_class_peer) == 24, "class_peer layout");
/* Bounds of the LRU maps: more distinct peers than this and the least recent drop out
 * (their counts restart); the storm's own count (storm_counts) stays exact. A peer or
 * prefix enters them at its second event, remembered in a table of first sightings
 * (RSTTRACE_CLASS_SIGHTINGS entries, a power of two): one seen once is never listed. */
#define RSTTRACE_CLASS_PEERS 16384
#define RSTTRACE_CLASS_PREFIXES 4096
#define RSTTRACE_CLASS_SIGHTINGS (1 << 18)
#define RSTTRACE_CLASS_PEER_MARKS (1 << 14) /* bpf/maps.bpf.h: class_peers_marks; <= RSTTRACE_CLASS_SIGHTINGS */
/* rsttrace_storm_slot.active bits */
#define RSTTRACE_STORM_COUNTING 1
#define RSTTRACE_STORM_TRACK_PEERS 2 /* a class storm: count its peers and prefixes too */
/* A fast class storm's peers and prefixes are counted on 1 in 2^shift of its events
 * (at random), each adding 2^shift: estimates, while storm_counts stays exact. The
 * shift (0: every event) is bits 8-11 of `active`; userspace sets it from the storm's
 * rate (attribute/storm.h: peer_sample_shift). */
#define RSTTRACE_STORM_PEER_SHIFT_BIT 8
#define RSTTRACE_STORM_PEER_SHIFT_MAX 6
#define RSTTRACE_STORM_PEER_SHIFT(active) (((active) >> RSTTRACE_STORM_PEER_SHIFT_BIT) & 0xf)

/*
 * Loopback class storms' shortcuts (bpf/maps.bpf.h: loopback_shortcuts): a
 * loopback flood runs tcp_receive_reset and a connect() per connection whose
 * storm is known from (netns, port, family) alone, the scope being 127.0.0.0
 * or ::1. Userspace mirrors each such storm in a .bss word by port, so the
 * kernel decides with one load instead of building a key and hashing it. A
 * word is 0 (no such storm has this index), one storm packed as below, or
 * RSTTRACE_SHORTCUT_SEVERAL (more than one: the kernel takes the maps' way).
 * One 64-bit word: read and written whole, never torn.
 */
#define RSTTRACE_SHORTCUTS 64 /* a power of two */
#define RSTTRACE_SHORTCUT_SEVERAL (~(__u64)0) /* bits 6-13 of a packed word are 0: never one */
static inline __u64 rsttrace_shortcut_of(__u32 netns, __u16 port, __u8 family, __u32 slot)
{
	return (__u64)netns << 32 | (__u64)port << 16 | (family == 6 ? 1u << 15 : 0) | 1u << 14 |
	       (slot & (RSTTRACE_STORM_SLOTS - 1));
}
RSTTRACE_STATIC_ASSERT(RSTTRACE_STORM_SLOTS <= 64, "a storm slot fits a shortcut's 6 bits");

#endif /* RSTTRACE_RECORDS_H */
