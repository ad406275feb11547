/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Owner tracking: which process connected, listened on, accepted, used or
 * closed a socket (maps.bpf.h: sock_owners), so that an event names the
 * socket's owner, not just the task the hook happened to run in.
 *
 * inet_sock_set_state fires in process context for connect(), listen(),
 * close() and shutdown(); in softirq for handshakes and resets, where the
 * running task is unrelated, so only the former record an owner. accept()
 * (a syscall tracepoint: fd_table.bpf.h) and socket I/O by a forked child
 * (sock_send_length/sock_recv_length) complete the picture.
 */
#ifndef RSTTRACE_OWNER_BPF_H
#define RSTTRACE_OWNER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "core_fixes.bpf.h"
#include "fd_table.bpf.h"
#include "filters.bpf.h"
#include "maps.bpf.h"
#include "rsttrace/records.h"
#include "sock.bpf.h"
#include "storm.bpf.h"

#define PF_EXITING 0x00000004

/* The running process becomes `sk`'s owner, learnt from `source` (enum rsttrace_owner_source). */
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

/* A socket changed state (inet_sock_set_state) in a process: record or forget its owner. */
static __always_inline void record_state_change(const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;

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
}

/*
 * Whether handle_set_state has anything to do for this change: a connection
 * note for a CLOSE (only an accepted socket gets one, and no accepted socket
 * was ever in SYN_SENT or LISTEN), else record_state_change()'s cases.
 */
static __always_inline bool state_change_of_interest(int oldstate, int newstate)
{
	switch (newstate) {
	case TCP_CLOSE:
		return oldstate != TCP_SYN_SENT && oldstate != TCP_LISTEN && oldstate != TCP_CLOSE;
	case TCP_ESTABLISHED:
		return oldstate == TCP_SYN_RECV;
	case TCP_SYN_SENT:
	case TCP_LISTEN:
	case TCP_FIN_WAIT1:
	case TCP_LAST_ACK:
		return true;
	}
	return false;
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
	if (sk_protocol_btf(sk) != IPPROTO_TCP)
		return;
	owner = bpf_map_lookup_elem(&sock_owners, &key);
	if (owner && owner->pid == bpf_get_current_pid_tgid() >> 32)
		return;
	record_owner(sk, RSTTRACE_OWNER_IO);
}

/* The socket the current task just accepted (an untyped pointer): record the
 * acceptor; the socket recorded, or NULL. */
static __always_inline struct sock *record_accepted_sock(struct sock *sk)
{
	/* skc_dport and skc_num share one word (skc_portpair): one read for both. */
	struct {
		__be16 dport;
		__u16 num;
	} ports;
	__u16 family;

	if (!sk || bpf_core_read(&ports, sizeof(ports), &sk->__sk_common.skc_portpair))
		return 0;
	/* Unwatched ports (nearly every accept on a busy host) leave here. */
	if (!port_watched(ports.num) && !port_watched(bpf_ntohs(ports.dport)))
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) || sk_protocol_core(sk) != IPPROTO_TCP)
		return 0;
	record_owner(sk, RSTTRACE_OWNER_ACCEPT);
	return sk;
}

/* accept() returns a new fd: follow it to its socket and record the acceptor;
 * the socket recorded, or NULL. */
static __always_inline struct sock *record_accepted(long fd)
{
	struct file *file;
	struct socket *sock;

	if (fd < 0 || !(file = current_file(fd)))
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	return record_accepted_sock(sock ? BPF_CORE_READ(sock, sk) : 0);
}

#endif /* RSTTRACE_OWNER_BPF_H */
