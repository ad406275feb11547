/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Connection notes: every accepted server socket of a watched local port, and
 * its end, whether or not a reset follows. Userspace keeps a bounded history
 * per source from them: how many connections a listener had open when it
 * refused one (MaxStartups), and how a source's earlier connections ended
 * (PerSourcePenalties, LoginGraceTime). Two records per connection, on the
 * watched ports only.
 */
#ifndef RSTTRACE_CONNECTIONS_BPF_H
#define RSTTRACE_CONNECTIONS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "filters.bpf.h"
#include "maps.bpf.h"
#include "owner.bpf.h"
#include "rsttrace/records.h"
#include "sock.bpf.h"

/* kind: RSTTRACE_KIND_ACCEPTED or _CLOSED; state: the state a closed socket left. */
static __always_inline void emit_connection_note(const struct sock *sk, __u8 kind, __u8 state)
{
	struct rsttrace_tcp_event e = {};

	fill_sock_identity_core(&e, sk);
	if (!fill_sock_addresses_core(&e, sk) || !port_watched(e.local_port) || !netns_selected(e.netns))
		return;
	e.kind = kind;
	if (kind == RSTTRACE_KIND_CLOSED)
		e.tcp_state = state;
	e.header.type = RSTTRACE_RECORD_TCP_EVENT;
	e.header.size = sizeof(e);
	e.ts_ns = bpf_ktime_get_ns();
	fill_sock_counters(&e, sk);
	fill_owner(&e);
	/* Only sockets whose accept() was seen: the server side of a connection. */
	if (!e.acceptor_pid)
		return;
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP))
		count(RSTTRACE_STAT_LOST);
	else
		count(RSTTRACE_STAT_EVIDENCE);
}

#endif /* RSTTRACE_CONNECTIONS_BPF_H */
