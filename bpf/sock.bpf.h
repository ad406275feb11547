/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a struct sock: its ports, namespace, identity, addresses and
 * tcp_sock counters. Functions suffixed _btf take a typed (tp_btf) socket,
 * _core an untyped one (kernel_read.bpf.h).
 */
#ifndef RSTTRACE_SOCK_BPF_H
#define RSTTRACE_SOCK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "core_fixes.bpf.h"
#include "filters.bpf.h"
#include "kernel_read.bpf.h"
#include "rsttrace/records.h"

#define AF_INET 2
#define AF_INET6 10

static __always_inline bool is_full_sock_state(__u8 state)
{
	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/* Either end of the socket (a BTF pointer) is on a watched port. */
static __always_inline bool sock_port_watched(const struct sock *sk)
{
	return port_watched(sk->__sk_common.skc_num) || port_watched(bpf_ntohs(sk->__sk_common.skc_dport));
}

static __always_inline __u32 sock_netns_btf(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline __u32 sock_netns_core(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* A socket's cookie as it stands (0 until something asked for one): any pointer. */
static __always_inline __u64 sock_cookie_btf(const struct sock *sk)
{
	return READ_BTF(sk, __sk_common.skc_cookie.counter);
}

static __always_inline __u64 sock_cookie_core(const struct sock *sk)
{
	return READ_CORE(sk, __sk_common.skc_cookie.counter);
}

/* The cookie, made if the socket has none yet (core_fixes.bpf.h): only for a
 * trusted pointer, a tracepoint's own argument (the verifier refuses the
 * RCU pointer skb->sk). */
static __always_inline void make_sock_cookie(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	if (sk && have_tracing_socket_cookie())
		e->sock_cookie = bpf_get_socket_cookie((void *)sk);
}

/* fill_sock_identity_btf(), fill_sock_addresses_btf(), fill_watched_socket_btf() */
#define SOCK_FN(name) name##_btf
#define SOCK_READ(ptr, field) READ_BTF(ptr, field)
#define SOCK_READ_BYTES(dst, size, src) READ_BTF_BYTES(dst, size, src)
#include "sock_fields.bpf.h"
#undef SOCK_FN
#undef SOCK_READ
#undef SOCK_READ_BYTES

/* fill_sock_identity_core(), fill_sock_addresses_core(), fill_watched_socket_core() */
#define SOCK_FN(name) name##_core
#define SOCK_READ(ptr, field) READ_CORE(ptr, field)
#define SOCK_READ_BYTES(dst, size, src) READ_CORE_BYTES(dst, size, src)
#include "sock_fields.bpf.h"
#undef SOCK_FN
#undef SOCK_READ
#undef SOCK_READ_BYTES

/* tcp_sock's byte counters (past struct sock: READ_CORE), for full sockets. */
static __always_inline void fill_sock_counters(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	if (!sk || !(e->flags & RSTTRACE_FLAG_FULLSOCK))
		return;
	/* A listener (a drop for a full accept queue): its backlog and queue. */
	if (e->tcp_state == TCP_LISTEN) {
		e->listen_backlog = READ_CORE(sk, sk_max_ack_backlog);
		e->accept_queue = READ_CORE(sk, sk_ack_backlog);
		return;
	}
	e->bytes_received = READ_CORE(tp, bytes_received);
	e->bytes_acked = READ_CORE(tp, bytes_acked);
	e->unread_bytes = READ_CORE(tp, rcv_nxt) - READ_CORE(tp, copied_seq);
}

#endif /* RSTTRACE_SOCK_BPF_H */
