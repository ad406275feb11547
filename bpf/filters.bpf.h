/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What userspace asked to watch: ports (watched_ports) and a network namespace (filter_netns). */
#ifndef RSTTRACE_FILTERS_BPF_H
#define RSTTRACE_FILTERS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "rsttrace/records.h"

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

#endif /* RSTTRACE_FILTERS_BPF_H */
