/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Completing an event that passed the filters and putting it on the ring buffer. */
#ifndef RSTTRACE_EMIT_BPF_H
#define RSTTRACE_EMIT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "filters.bpf.h"
#include "maps.bpf.h"
#include "owner.bpf.h"
#include "rsttrace/records.h"
#include "sock.bpf.h"
#include "storm.bpf.h"

static __always_inline void fill_context(struct rsttrace_tcp_event *e)
{
	e->header.type = RSTTRACE_RECORD_TCP_EVENT;
	e->header.size = sizeof(*e);
	e->ts_ns = bpf_ktime_get_ns();
	e->context_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->context_comm, sizeof(e->context_comm));
}

/*
 * emit(), called once an event passed the port filter: filter the netns, then
 * count it in its storm (emit_wanted() false) or complete and emit it (emit_kept()).
 * Counted as seen (`seen_stat`) with its outcome, in one lookup (maps.bpf.h:
 * count_two), and only in the selected netns: a --netns run's counters balance (emitted + folded +
 * aggregated = seen) whatever other namespaces do. Context and owner are
 * read only here, after the storm check: an aggregated event does not need them.
 */
static __always_inline bool emit_wanted(struct cpu_state *cpu, struct rsttrace_tcp_event *e, __u8 kind,
					__u32 seen_stat)
{
	e->kind = kind;
	if (!netns_selected(e->netns))
		return false;
	return !cpu || !count_in_storm(cpu, e, seen_stat);
}

/* The second half of emit(), for an event emit_wanted() kept: complete it and submit it. */
static __always_inline void emit_kept(struct cpu_state *cpu, struct rsttrace_tcp_event *e, const struct sock *sk,
				      __u32 seen_stat)
{
	bool lost;

	fill_sock_counters(e, sk);
	fill_context(e);
	fill_owner(e);
	/* No wakeup: a wakeup per event loses events on some kernels; userspace polls. */
	lost = bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP) != 0;
	if (cpu)
		count_two_in(cpu, seen_stat, lost ? RSTTRACE_STAT_LOST : RSTTRACE_STAT_EMITTED);
}

static __always_inline void emit(struct rsttrace_tcp_event *e, const struct sock *sk, __u8 kind, __u32 seen_stat)
{
	struct cpu_state *cpu = this_cpu_state();

	if (emit_wanted(cpu, e, kind, seen_stat))
		emit_kept(cpu, e, sk, seen_stat);
}

/*
 * emit(), with `sk`'s cookie made (sock.bpf.h: make_sock_cookie; `sk` a
 * tracepoint's own, trusted socket, or NULL) only for an event that is emitted:
 * a storm's aggregated events need none, and making one is a global counter's
 * atomic on a flood's every new socket.
 */
static __always_inline void emit_with_cookie(struct rsttrace_tcp_event *e, const struct sock *sk, __u8 kind,
					     __u32 seen_stat)
{
	struct cpu_state *cpu = this_cpu_state();

	if (!emit_wanted(cpu, e, kind, seen_stat))
		return;
	make_sock_cookie(e, sk);
	emit_kept(cpu, e, sk, seen_stat);
}

/* A reset leaving this host; `by_closer`: sent by the process closing `sk`, its owner;
 * `cookie`: `sk` is trusted (emit_with_cookie). */
static __always_inline void emit_reset_sent(struct rsttrace_tcp_event *e, const struct sock *sk, bool by_closer,
					    bool cookie)
{
	if (by_closer) {
		e->flags |= RSTTRACE_FLAG_BY_CLOSER;
		record_owner(sk, RSTTRACE_OWNER_CLOSE);
	}
	if (cookie)
		emit_with_cookie(e, sk, RSTTRACE_KIND_RESET_SENT, RSTTRACE_STAT_RESET_SENT);
	else
		emit(e, sk, RSTTRACE_KIND_RESET_SENT, RSTTRACE_STAT_RESET_SENT);
}

#endif /* RSTTRACE_EMIT_BPF_H */
