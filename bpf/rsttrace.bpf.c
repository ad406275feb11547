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
 * kernel has kprobes and a start-up probe finds the tracepoint lacking it.
 *
 * This file holds the programs only, each headed by its hook as the kernel
 * declares it and the versions where that changed. What they share:
 *   maps.bpf.h         every map and global the skeleton exposes
 *   core_fixes.bpf.h   differences between kernels, with the commits
 *   kernel_read.bpf.h  READ_BTF (typed pointers) and READ_CORE (untyped)
 *   filters.bpf.h      watched ports, selected network namespace
 *   sock.bpf.h         a socket's identity, addresses and counters
 *   packet.bpf.h       a packet's addresses and device; resets' answered packets
 *   owner.bpf.h        which process owns a socket
 *   fd_table.bpf.h     fd -> struct file in the current task
 *   storm.bpf.h        storm aggregation
 *   emit.bpf.h         completing an event and submitting it
 *   wrappers.bpf.h     TCP wrappers evidence (opens of hosts.allow/deny)
 *   connections.bpf.h  notes of accepted server sockets and their end (sshd's history)
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "core_fixes.bpf.h"
#include "rsttrace/records.h"

#include "maps.bpf.h"
#include "filters.bpf.h"
#include "kernel_read.bpf.h"
#include "sock.bpf.h"
#include "packet.bpf.h"
#include "fd_table.bpf.h"
#include "storm.bpf.h"
#include "owner.bpf.h"
#include "emit.bpf.h"
#include "wrappers.bpf.h"
#include "connections.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * include/trace/events/tcp.h:
 *   TRACE_EVENT(tcp_send_reset,
 *	TP_PROTO(const struct sock *sk, const struct sk_buff *skb,
 *		 const enum sk_rst_reason reason), ...)
 * 4.15: TP_PROTO(const struct sock *sk, const struct sk_buff *skb), a
 *   DEFINE_EVENT of tcp_event_sk_skb; skb NULL for an active reset.
 * 6.10: fired by the passive reset paths without a full socket too (sk a
 *   request or timewait socket, or NULL), and `reason` added (core_fixes).
 */
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
	if (sk) {
		fill_sock_identity_btf(&e, sk);
		if (timewait_reset_reported(e.tcp_state, skb))
			return 0;
	}
	if (skb) {
		if (!fill_packet_addresses(&e, skb, true))
			return 0;
		if (!sk)
			fill_packet_device(&e, skb, false);
	} else if (!sk || !fill_sock_addresses_btf(&e, sk)) {
		return 0;
	}
	if (!event_watched(&e))
		return 0;
	/* A reset for a packet that matched no socket: the kernel frees that
	 * packet next, as a NO_SOCKET drop, on this CPU (see fold_answered_drop). */
	if (skb && !sk && netns_selected(e.netns))
		remember_answered_packet(skb);
	/* Without the reason, a reset with no packet is an active one
	 * (tcp_send_active_reset() passes skb NULL): a socket already in CLOSE
	 * marks the close/disconnect path, run by the closer (as the kprobe). */
	bool by_closer = (e.flags & RSTTRACE_FLAG_REASON) ? reset_sent_by_closer(e.reason)
							  : !skb && e.tcp_state == TCP_CLOSE;
	emit_reset_sent(&e, sk, sk && by_closer, true);
	return 0;
}

/*
 * net/ipv4/tcp_minisocks.c:
 *   enum tcp_tw_status tcp_timewait_state_process(struct inet_timewait_sock *tw,
 *		struct sk_buff *skb, const struct tcphdr *th, ...);
 * (later kernels add arguments after th; the return value is read with
 * bpf_get_func_ret() whatever they are). TCP_TW_RST: the caller (IPv4 and
 * IPv6 alike) answers the segment with a reset from the TIME_WAIT socket,
 * which tcp:tcp_send_reset does not show before 6.10 (packet.bpf.h:
 * remember_timewait_reset): a client's data after a server's close, once the
 * server's FIN was acknowledged (an orphan goes to TIME_WAIT at once with the
 * default tcp_fin_timeout), e.g. sshd's listener refusing a connection
 * (MaxStartups, PerSourcePenalties) before the client's banner arrived.
 * Loaded where fexit works (collect/bpf_session.cpp).
 */
SEC("?fexit/tcp_timewait_state_process")
int BPF_PROG(handle_timewait_fexit, struct inet_timewait_sock *tw, struct sk_buff *skb)
{
	const struct sock *sk = (const struct sock *)tw;
	struct rsttrace_tcp_event e = {};
	__u64 status = 0;

	if (tracepoint_sees_timewait || bpf_get_func_ret(ctx, &status) || status != TCP_TW_RST)
		return 0;
	fill_sock_identity_btf(&e, sk);
	if (!fill_packet_addresses(&e, skb, true) || !event_watched(&e))
		return 0;
	remember_timewait_reset(skb);
	emit_reset_sent(&e, sk, false, false);
	return 0;
}

/*
 * net/ipv4/tcp_minisocks.c:
 *   struct sock *tcp_check_req(struct sock *sk, struct sk_buff *skb,
 *		struct request_sock *req, bool fastopen, bool *req_stolen);
 * (6.15 added `enum skb_drop_reason *drop_reason`; only sk and skb are read,
 * the return value with bpf_get_func_ret().) Called by tcp_v4_rcv() and
 * tcp_v6_rcv() alike for a segment of a pending connection, with `sk` its
 * listener. Hooked here, not on tcp_v4_syn_recv_sock() (where the queue
 * test is): measured on Debian's 6.1, an fexit there does not attach
 * (ENOTSUPP, bpftrace's kretfunc neither); here it does.
 *
 * A full accept queue: the handshake's completing segment makes
 * syn_recv_sock() fail at sk_acceptq_is_full() (sk_ack_backlog >
 * sk_max_ack_backlog, LISTENOVERFLOWS), which counts tcp_listendrop() on the
 * listener's sk_drops, and tcp_check_req() returns NULL; the caller frees the
 * segment with no reason and no socket before 6.15 (core_fixes:
 * kernel_names_listen_overflow). So: NULL, the listener's sk_drops grew
 * during the call (only that failure counts it there; the entry program
 * notes it) and its queue is full. Reported as 6.15's kfree_skb reports the
 * drop (the listener, its queue and backlog), with
 * RSTTRACE_FLAG_LISTEN_OVERFLOW for the missing reason; the reasonless free
 * that follows is folded (packet.bpf.h). A SYN-cookie ACK at a full queue
 * (cookie_v4_check(), not this function) is not seen. Loaded where fexit
 * works (collect/bpf_session.cpp), not where the reason exists.
 */
static __always_inline __u32 listener_drops(const struct sock *sk)
{
	return bpf_core_field_exists(sk->sk_drops) ? (__u32)READ_CORE(sk, sk_drops.counter) : 0;
}

SEC("?fentry/tcp_check_req")
int BPF_PROG(handle_listen_overflow_entry, struct sock *sk)
{
	__u32 zero = 0;
	__u32 *drops = bpf_map_lookup_elem(&listen_drops_before, &zero);

	if (drops)
		*drops = listener_drops(sk);
	return 0;
}

SEC("?fexit/tcp_check_req")
int BPF_PROG(handle_listen_overflow_fexit, struct sock *sk, struct sk_buff *skb)
{
	struct rsttrace_tcp_event e = {};
	__u32 zero = 0;
	__u32 *drops = bpf_map_lookup_elem(&listen_drops_before, &zero);
	__u64 child = 1;

	if (kernel_names_listen_overflow() || !drops || bpf_get_func_ret(ctx, &child) || child)
		return 0;
	if (READ_BTF(sk, __sk_common.skc_state) != TCP_LISTEN || listener_drops(sk) == *drops)
		return 0;
	if (READ_BTF(sk, sk_ack_backlog) <= READ_BTF(sk, sk_max_ack_backlog))
		return 0;
	if (!fill_packet_addresses(&e, skb, true) || !event_watched(&e))
		return 0;
	fill_sock_identity_btf(&e, sk);
	e.flags |= RSTTRACE_FLAG_LISTEN_OVERFLOW;
	if (skb->_skb_refdst)
		e.flags |= RSTTRACE_FLAG_ROUTED;
	fill_packet_device(&e, skb, true);
	remember_listen_overflow(skb);
	emit(&e, sk, RSTTRACE_KIND_DROP, RSTTRACE_STAT_DROP);
	return 0;
}

/*
 * Whether tcp:tcp_send_reset reports active resets on this kernel, asked at
 * start by userspace (collect/active_reset_probe.cpp): it loads this program
 * alone, sets active_reset_probe_port to the port its own client socket is
 * connected to and aborts that socket (SO_LINGER 0). The remote port, not
 * the local one: tcp_set_state(TCP_CLOSE) releases an autobound local port
 * (inet_num 0) before the reset is sent. Only tcp_send_active_reset()
 * passes a NULL skb, so a call with skb NULL on that port proves the
 * tracepoint covers active resets and the kprobe below would duplicate them.
 * Measured: Debian's 6.1 calls it (skb NULL, state CLOSE), 6.10+ with the
 * reason. Never attached by a trace ("?": not loaded unless asked).
 */
__u16 active_reset_probe_port;
__u32 active_reset_probe_seen;

SEC("?tp_btf/tcp_send_reset")
int BPF_PROG(probe_active_reset_tracepoint)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	const struct sk_buff *skb = (const struct sk_buff *)ctx[1];

	if (skb || !sk || !active_reset_probe_port)
		return 0;
	if (bpf_ntohs(sk->__sk_common.skc_dport) == active_reset_probe_port)
		__sync_fetch_and_add(&active_reset_probe_seen, 1);
	return 0;
}

/*
 * net/ipv4/tcp_output.c:
 *   void tcp_send_active_reset(struct sock *sk, gfp_t priority,
 *				enum sk_rst_reason reason);
 * Before 6.10: (struct sock *sk, gfp_t priority). Only sk is read.
 *
 * Active resets: close() with unread data, a zero linger, disconnect,
 * keepalive and memory aborts. Userspace loads this kprobe only where kprobes
 * exist and its start-up probe (probe_active_reset_tracepoint above) finds
 * that tcp:tcp_send_reset does not report active resets: loaded beside a
 * tracepoint that does, one close() abort would give two reset-sent events
 * (measured on Debian's 6.1 before the probe existed: --raw reset_sent 2).
 * The close and disconnect paths set TCP_CLOSE before sending, in the closing
 * process; the timer paths send from the old state.
 */
SEC("kprobe/tcp_send_active_reset")
int BPF_KPROBE(handle_active_reset, struct sock *sk)
{
	struct rsttrace_tcp_event e = {};

	if (!sk || !fill_watched_socket_core(&e, sk))
		return 0;
	e.flags |= RSTTRACE_FLAG_KPROBE;
	emit_reset_sent(&e, sk, e.tcp_state == TCP_CLOSE, false);
	return 0;
}

/* Never attached by a trace: `rsttrace check` loads it alone to tell whether
 * this kernel runs fentry programs ("?": not loaded unless asked). The
 * function is tcp_send_active_reset(), as above. */
SEC("?fentry/tcp_send_active_reset")
int BPF_PROG(probe_fentry)
{
	return 0;
}

/*
 * include/trace/events/tcp.h:
 *   DEFINE_EVENT(tcp_event_sk, tcp_receive_reset,
 *	TP_PROTO(struct sock *sk), ...)
 * Unchanged since 4.15.
 */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_receive_reset, struct sock *sk)
{
	struct rsttrace_tcp_event e = {};

	/* A loopback flood's client end: its storm known from the socket alone. */
	if (count_loopback_twin(sk))
		return 0;
	if (!fill_watched_socket_btf(&e, sk))
		return 0;
	emit_with_cookie(&e, sk, RSTTRACE_KIND_RESET_RECEIVED, RSTTRACE_STAT_RESET_RECEIVED);
	return 0;
}

/*
 * include/trace/events/skb.h:
 *   TRACE_EVENT(kfree_skb,
 *	TP_PROTO(struct sk_buff *skb, void *location,
 *		 enum skb_drop_reason reason, struct sock *rx_sk), ...)
 * Before 5.17: (skb, location); 5.17 added `reason`, 6.11 `rx_sk`, which may
 * be NULL (core_fixes).
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(handle_kfree_skb)
{
	const struct sk_buff *skb = (const struct sk_buff *)ctx[0];
	__u16 protocol = skb->protocol;
	struct rsttrace_tcp_event e = {};
	const struct sock *sk = 0;
	struct cpu_state *cpu;

	/* Every dropped packet of the host comes here: leave early. */
	if (protocol != bpf_htons(ETH_P_IP) && protocol != bpf_htons(ETH_P_IPV6))
		return 0;
	/* One lookup for the run: the packet slots, the storm lookup and the counters. */
	cpu = this_cpu_state();
	if (cpu) {
		if (kfree_skb_args >= 3 && fold_answered_drop(cpu, skb, (__u32)ctx[2]))
			return 0;
		if (listen_overflow_fexit && fold_listen_overflow_drop(cpu, skb))
			return 0;
	}
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
		fill_sock_identity_btf(&e, sk);
	if (skb->_skb_refdst)
		e.flags |= RSTTRACE_FLAG_ROUTED;
	fill_packet_device(&e, skb, true);
	/* The flag is in the storm key; the evidence is read only for an event emitted. */
	e.flags |= RSTTRACE_FLAG_NETFILTER;
	if (emit_wanted(cpu, &e, RSTTRACE_KIND_DROP, RSTTRACE_STAT_DROP)) {
		fill_netfilter_evidence(&e, skb);
		emit_kept(cpu, &e, sk, RSTTRACE_STAT_DROP);
	}
	return 0;
}

/*
 * include/trace/events/sock.h:
 *   TRACE_EVENT(inet_sock_set_state,
 *	TP_PROTO(const struct sock *sk, const int oldstate, const int newstate), ...)
 * Since 4.16, 563e0bb0dc74 ("net: tracepoint: replace tcp_set_state
 * tracepoint with inet_sock_set_state tracepoint"); fires for every
 * protocol, hence the check below.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, int oldstate, int newstate)
{
	/* Decided on the states first, before any read of the socket: a flood's
	 * connections run this twice (connect, then CLOSE from SYN_SENT). */
	if (!state_change_of_interest(oldstate, newstate))
		return 0;
	if (sk_protocol_btf(sk) != IPPROTO_TCP)
		return 0;
	/* inet_put_port() cleared skc_num before CLOSE is traced (the state is
	 * stored after the unhash): inet_sport keeps the local port. */
	if (newstate == TCP_CLOSE) {
		if (port_watched(bpf_ntohs(READ_CORE((const struct inet_sock *)sk, inet_sport))))
			emit_connection_note(sk, RSTTRACE_KIND_CLOSED, oldstate);
		return 0;
	}
	/* connect() enters SYN_SENT before it picks the local port. */
	if (!sock_port_watched(sk))
		return 0;
	record_state_change(sk, oldstate, newstate);
	return 0;
}

/*
 * include/trace/events/sock.h:
 *   DEFINE_EVENT(sock_msg_length, sock_send_length,
 *	TP_PROTO(struct sock *sk, int ret, int flags), ...)
 *   DEFINE_EVENT(sock_msg_length, sock_recv_length,
 *	TP_PROTO(struct sock *sk, int ret, int flags), ...)
 * Since 6.3; not loaded where the kernel lacks them (6.1).
 */
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

/*
 * net/socket.c:
 *   SYSCALL_DEFINE4(accept4, int, fd, struct sockaddr __user *, upeer_sockaddr,
 *		     int __user *, upeer_addrlen, int, flags)
 *   SYSCALL_DEFINE3(accept, int, fd, struct sockaddr __user *, upeer_sockaddr,
 *		     int __user *, upeer_addrlen)
 * At sys_exit the context is struct trace_event_raw_sys_exit { ...; long id;
 * long ret; }: ret is the accepted fd, or -errno.
 */
SEC("tp/syscalls/sys_exit_accept4")
int handle_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct sock *sk = record_accepted(ctx->ret);

	if (sk)
		emit_connection_note(sk, RSTTRACE_KIND_ACCEPTED, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_accept")
int handle_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct sock *sk = record_accepted(ctx->ret);

	if (sk)
		emit_connection_note(sk, RSTTRACE_KIND_ACCEPTED, 0);
	return 0;
}

/*
 * fs/open.c:
 *   SYSCALL_DEFINE4(openat, int, dfd, const char __user *, filename,
 *		     int, flags, umode_t, mode)
 * At sys_enter the context is struct trace_event_raw_sys_enter { ...;
 * long id; unsigned long args[6]; }: args[1] the path, args[2] the flags.
 */
SEC("tp/syscalls/sys_enter_openat")
int handle_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	stash_wrapper_open(ctx);
	return 0;
}

/* The same openat at sys_exit: ctx->ret is the new fd, or -errno. */
SEC("tp/syscalls/sys_exit_openat")
int handle_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	submit_wrapper_open(ctx);
	return 0;
}

/*
 * Kernel-function hooks that replace the accept() and openat() syscall
 * tracepoints where fexit works (userspace probes it; `rsttrace check` and the
 * start-up line say which is in use): while any syscall tracepoint is
 * attached, every syscall of every process on the host takes the kernel's
 * slow path; these run only on accepts and on opens by path.
 *
 * net/ipv4/inet_connection_sock.c:
 *   struct sock *inet_csk_accept(struct sock *sk, struct proto_accept_arg *arg);
 * Before 6.10: (struct sock *sk, int flags, int *err, bool kern), 92ef0fd55a4f
 * ("net: change proto and proto_ops accept type"). The accepted socket is the
 * return value, read with bpf_get_func_ret() (5.17) whatever the arguments.
 * The accept() of TCP over IPv4 and IPv6 (inet_accept) calls it in the
 * accepting task.
 */
SEC("?fexit/inet_csk_accept")
int BPF_PROG(handle_accept_fexit)
{
	__u64 sk = 0;

	if (bpf_get_func_ret(ctx, &sk) == 0 && record_accepted_sock((struct sock *)sk))
		emit_connection_note((struct sock *)sk, RSTTRACE_KIND_ACCEPTED, 0);
	return 0;
}

/*
 * fs/namei.c:
 *   struct file *do_filp_open(int dfd, struct filename *pathname,
 *			       const struct open_flags *op);
 * Every open by path (open, openat, openat2, creat) passes here, in the
 * opening task; at fexit the result is known, so a failed open (an ERR_PTR)
 * is no evidence, as at sys_exit_openat (wrappers.bpf.h).
 */
SEC("?fexit/do_filp_open")
int BPF_PROG(handle_open_fexit, int dfd, struct filename *pathname, const struct open_flags *op)
{
	__u64 file = 0;

	if (bpf_get_func_ret(ctx, &file) || file >= (__u64)-4095) /* IS_ERR() */
		return 0;
	submit_opened_wrapper(pathname->name, op->open_flag);
	return 0;
}
