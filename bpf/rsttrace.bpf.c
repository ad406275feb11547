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
	if (sk)
		fill_sock_identity_btf(&e, sk);
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
	if (skb && !sk)
		remember_answered_packet(skb);
	emit_reset_sent(&e, sk, sk && (e.flags & RSTTRACE_FLAG_REASON) && reset_sent_by_closer(e.reason));
	return 0;
}

/*
 * net/ipv4/tcp_output.c:
 *   void tcp_send_active_reset(struct sock *sk, gfp_t priority,
 *				enum sk_rst_reason reason);
 * Before 6.10: (struct sock *sk, gfp_t priority). Only sk is read.
 *
 * Active resets: close() with unread data, a zero linger, disconnect,
 * keepalive and memory aborts. Userspace loads this kprobe only when
 * tcp:tcp_send_reset lacks the reason argument (before 6.10), where kprobes
 * exist, to tell the closer's resets apart. The close and disconnect paths set
 * TCP_CLOSE before sending, in the closing process; the timer paths send from
 * the old state.
 *
 * Measured on Debian 12's 6.1 (tests/kernel-matrix/run-guest, 2026-11-30):
 * tcp:tcp_send_reset fires for an active reset there too (skb NULL, state
 * CLOSE), so with this kprobe loaded one close() abort gives two reset-sent
 * events (--raw: reset_sent 2). The premise that active resets skip the
 * tracepoint before 6.10 does not hold on 6.1.
 */
SEC("kprobe/tcp_send_active_reset")
int BPF_KPROBE(handle_active_reset, struct sock *sk)
{
	struct rsttrace_tcp_event e = {};

	if (!sk || !fill_watched_socket_core(&e, sk))
		return 0;
	e.flags |= RSTTRACE_FLAG_KPROBE;
	emit_reset_sent(&e, sk, e.tcp_state == TCP_CLOSE);
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

	if (!fill_watched_socket_btf(&e, sk))
		return 0;
	emit(&e, sk, RSTTRACE_KIND_RESET_RECEIVED, RSTTRACE_STAT_RESET_RECEIVED);
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
		fill_sock_identity_btf(&e, sk);
	if (skb->_skb_refdst)
		e.flags |= RSTTRACE_FLAG_ROUTED;
	fill_packet_device(&e, skb, true);
	fill_netfilter_evidence(&e, skb);
	emit(&e, sk, RSTTRACE_KIND_DROP, RSTTRACE_STAT_DROP);
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
	if (sk_protocol_btf(sk) != IPPROTO_TCP)
		return 0;
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
