/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A socket's identity and addresses, written once for both ways of reading
 * the kernel (kernel_read.bpf.h). No include guard: sock.bpf.h includes this
 * twice, with SOCK_FN(name) naming the functions name_btf or name_core and
 * SOCK_READ / SOCK_READ_BYTES bound to READ_BTF or READ_CORE to match.
 */
#if !defined(SOCK_FN) || !defined(SOCK_READ) || !defined(SOCK_READ_BYTES)
#error "sock_fields.bpf.h is included by sock.bpf.h only"
#endif

/*
 * Socket identity, state and namespace. Only sock_common is valid for request
 * and timewait sockets: FLAG_FULLSOCK marks the others.
 */
static __always_inline void SOCK_FN(fill_sock_identity)(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	e->sock_id = (__u64)sk;
	e->sock_cookie = SOCK_FN(sock_cookie)(sk);
	e->flags |= RSTTRACE_FLAG_SOCKET;
	e->tcp_state = SOCK_READ(sk, __sk_common.skc_state);
	e->netns = SOCK_FN(sock_netns)(sk);
	if (is_full_sock_state(e->tcp_state))
		e->flags |= RSTTRACE_FLAG_FULLSOCK;
}

static __always_inline bool SOCK_FN(fill_sock_addresses)(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	__u16 family = SOCK_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		e->family = 4;
		SOCK_READ_BYTES(e->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		SOCK_READ_BYTES(e->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		e->family = 6;
		SOCK_READ_BYTES(e->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		SOCK_READ_BYTES(e->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return false;
	}
	e->local_port = SOCK_READ(sk, __sk_common.skc_num);
	e->remote_port = bpf_ntohs(SOCK_READ(sk, __sk_common.skc_dport));
	/* An unhashed (closed) socket reads skc_num 0; inet_sport keeps the port
	 * (past struct sock: READ_CORE either way). */
	if (!e->local_port && is_full_sock_state(e->tcp_state))
		e->local_port = bpf_ntohs(READ_CORE((const struct inet_sock *)sk, inet_sport));
	return true;
}

/* An event about socket `sk` alone (no packet): false unless it is TCP on a watched port. */
static __always_inline bool SOCK_FN(fill_watched_socket)(struct rsttrace_tcp_event *e, const struct sock *sk)
{
	SOCK_FN(fill_sock_identity)(e, sk);
	return SOCK_FN(fill_sock_addresses)(e, sk) && event_watched(e);
}
