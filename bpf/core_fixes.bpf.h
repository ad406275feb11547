/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Differences between kernels, in one place. Every entry names the kernel
 * change it covers and resolves it with CO-RE (field/enum existence, bitfield
 * relocations) or a read-only switch that userspace sets from the running
 * kernel's BTF before load. Never LINUX_VERSION_CODE: one object loads on all.
 */
#ifndef RSTTRACE_CORE_FIXES_BPF_H
#define RSTTRACE_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * Number of arguments of the tracepoints whose prototype grew; set by
 * userspace (collect/kernel_features) from the btf_trace_<name> typedefs.
 * The verifier prunes the branches that read arguments the kernel lacks.
 *
 * tcp_send_reset: (sk, skb) until 6.10; 6.10 added `enum sk_rst_reason
 *   reason` (the "rstreason" series) and made tcp_send_active_reset() fire it.
 * kfree_skb: (skb, location) until 5.17; 5.17 added `reason` with
 *   kfree_skb_reason(); 6.11 added `rx_sk`, the receiving socket.
 */
const volatile __u8 tcp_send_reset_args = 3;
const volatile __u8 kfree_skb_args = 4;

/*
 * sk_protocol was an 8-bit bitfield until 5.6, a u16 of its own since
 * 5.6 ("sock: Make sk_protocol a 16-bit value", for MPTCP). The bitfield
 * relocation reads both layouts.
 */
static __always_inline __u16 sk_protocol_of(const struct sock *sk, bool typed)
{
	if (typed) /* a BTF pointer (tp_btf): a plain load */
		return BPF_CORE_READ_BITFIELD(sk, sk_protocol);
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
}

/*
 * Reset reasons that tcp_close()/tcp_disconnect() pass to
 * tcp_send_active_reset(): those resets run in the closing process, so the
 * running task is the socket's owner. `enum sk_rst_reason` exists from 6.10;
 * before it, active resets do not reach the tracepoint at all.
 */
static __always_inline bool reset_sent_by_closer(__u32 reason)
{
	if (bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE) &&
	    reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE))
		return true;
	if (bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_STATE) &&
	    reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_STATE))
		return true;
	if (bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_DISCONNECT_WITH_DATA) &&
	    reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_DISCONNECT_WITH_DATA))
		return true;
	return false;
}

/*
 * A received RST is freed with SKB_DROP_REASON_TCP_RESET after tcp_reset()
 * (named reasons for TCP drops arrived in 5.19-6.0); tcp:tcp_receive_reset
 * already reports it, so the drop is a duplicate.
 */
static __always_inline bool drop_is_consumed_reset(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_TCP_RESET) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_TCP_RESET);
}

/*
 * A packet that matched no socket is answered with a reset, then freed with
 * SKB_DROP_REASON_NO_SOCKET (5.19+ names it; tcp:tcp_send_reset fires for it
 * from 6.10 on, with SK_RST_REASON_NO_SOCKET). The reset says it all, so that
 * drop is folded (counted, not emitted). Before 6.10 no reset is reported
 * for it and the drop is the evidence: nothing is folded there.
 */
static __always_inline bool drop_is_no_socket(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET);
}

/*
 * bpf_get_current_task_btf() (5.11, "bpf: Add bpf_get_current_task_btf()
 * helper") returns a typed task, whose fields are plain loads; before it,
 * each field of the task is a bpf_probe_read_kernel() call.
 */
static __always_inline bool have_current_task_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

#endif /* RSTTRACE_CORE_FIXES_BPF_H */
