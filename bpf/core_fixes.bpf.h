/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Differences between kernels, in one place. Every entry names the kernel
 * change it covers (commit id and subject, as libbpf-tools does; "commit not
 * verified" where the id could not be confirmed) and resolves it with CO-RE
 * (field/enum existence, bitfield relocations) or a read-only switch that
 * userspace sets from the running kernel's BTF before load. Never
 * LINUX_VERSION_CODE: one object loads on all.
 */
#ifndef RSTTRACE_CORE_FIXES_BPF_H
#define RSTTRACE_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "rsttrace/records.h"

/*
 * Number of arguments of the tracepoints whose prototype grew. Userspace
 * counts them in the btf_trace_<name> typedefs of the running kernel
 * (collect/kernel_btf: TracepointShapes) and sets them here before load
 * (collect/bpf_session.cpp). The verifier prunes the branches that read
 * arguments the kernel lacks.
 *
 * tcp_send_reset: (sk, skb) until 6.10, where
 *   b533fb9cf4f7 ("rstreason: make it work in trace world") added
 *   `const enum sk_rst_reason reason`.
 * kfree_skb: (skb, location) until 5.17, where
 *   c504e5c2f964 ("net: skb: introduce kfree_skb_reason()") added
 *   `enum skb_drop_reason reason`; 6.11 added `struct sock *rx_sk`, the
 *   receiving socket (may be NULL), with
 *   c53795d48ee8 ("net: add rx_sk to trace_kfree_skb").
 */
const volatile __u8 tcp_send_reset_args = 3;
const volatile __u8 kfree_skb_args = 4;

/*
 * sk_protocol was an 8-bit bitfield until 5.6 and is a u16 of its own since
 * bf9765145b85 ("sock: Make sk_protocol a 16-bit value"), for MPTCP. The
 * bitfield relocation reads both layouts: as a plain load where the socket
 * is a BTF pointer (tp_btf), through bpf_probe_read_kernel() where it is not.
 */
static __always_inline __u16 sk_protocol_btf(const struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD(sk, sk_protocol);
}

static __always_inline __u16 sk_protocol_core(const struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
}

/*
 * Reset reasons that tcp_close()/tcp_disconnect() pass to
 * tcp_send_active_reset(): those resets run in the closing process, so the
 * running task is the socket's owner. `enum sk_rst_reason` exists from 6.10:
 * 5cb2cb3cb20c ("net: introduce rstreason to detect why the RST is sent")
 * added it, 5691276b39da ("rstreason: prepare for active reset") gave
 * tcp_send_active_reset() its reason argument, and b533fb9cf4f7 passes it to
 * the tracepoint. Before that no reason reaches the tracepoint.
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
 * A received RST freed with SKB_DROP_REASON_TCP_RESET: tcp:tcp_receive_reset
 * already reports the reset, so the drop is a duplicate. The reason exists
 * from 5.19, da40b613f89c ("tcp: add drop reason support to
 * tcp_validate_incoming()").
 */
static __always_inline bool drop_is_consumed_reset(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_TCP_RESET) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_TCP_RESET);
}

/*
 * A packet that matched no socket is answered with a reset, then freed with
 * SKB_DROP_REASON_NO_SOCKET (5.17, 85125597419a ("net: skb: use
 * kfree_skb_reason() in tcp_v4_rcv()")). tcp:tcp_send_reset fires for that
 * reset from 6.10 on, with SK_RST_REASON_NO_SOCKET: 19822a980e19 ("trace:
 * tcp: fully support trace_tcp_send_reset") made the passive reset paths
 * call it without a full socket. The reset says it all, so that drop is
 * folded (counted, not emitted). Before 6.10 no reset is reported for it
 * and the drop is the evidence: nothing is folded there.
 */
static __always_inline bool drop_is_no_socket(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET);
}

/*
 * A full accept queue's drop of the segment that completes a handshake is
 * named SKB_DROP_REASON_TCP_LISTEN_OVERFLOW by tcp_check_req() from 6.15,
 * "tcp: add four drop reasons to tcp_check_req()" (Eric Dumazet, March 2025;
 * commit not verified). Before, it is freed with NOT_SPECIFIED and no socket,
 * and handle_listen_overflow_fexit reports it instead: where the reason
 * exists, the fexit stops at once (kfree_skb reports the drop, once).
 */
/* A flavor of the enum: older vmlinux headers (the checked-in arm64 one) lack the value;
 * libbpf matches it by its name without the ___ suffix, in the running kernel's BTF. */
enum skb_drop_reason___listen_overflow {
	SKB_DROP_REASON_TCP_LISTEN_OVERFLOW___listen_overflow = 1,
};

static __always_inline bool kernel_names_listen_overflow(void)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason___listen_overflow,
					  SKB_DROP_REASON_TCP_LISTEN_OVERFLOW___listen_overflow);
}

/*
 * bpf_get_current_task_btf() (5.11, 3ca1032ab7ab ("bpf: Implement
 * get_current_task_btf and RET_PTR_TO_BTF_ID")) returns a typed task, whose
 * fields are plain loads; before it, each field of the task is a
 * bpf_probe_read_kernel() call.
 */
static __always_inline bool have_current_task_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

/*
 * Socket cookies in tracing programs: c5dbb89fc2ac ("bpf: Expose
 * bpf_get_socket_cookie to tracing programs") (5.12) added
 * bpf_get_socket_ptr_cookie(), whose BPF_CALL typedef
 * btf_bpf_get_socket_ptr_cookie is in the kernel's BTF from then on. Issue
 * 15: sock_id (the socket's address) is reused at once by the slab, so a
 * client port reused after an abort looked like the same connection; the
 * cookie is unique per socket for the kernel's lifetime. Without the helper,
 * the socket's own skc_cookie (0 until something asked for it) is read.
 */
static __always_inline bool have_tracing_socket_cookie(void)
{
	return bpf_core_type_exists(btf_bpf_get_socket_ptr_cookie);
}

/*
 * Conntrack's entry for a packet: skb->_nfct, an nf_conn pointer with the
 * ip_conntrack_info in its low 3 bits (NFCT_INFOMASK), since
 * a9e419dc7be6 ("netfilter: merge ctinfo into nfct pointer storage area",
 * 4.11; commit not verified).
 * The field exists only with CONFIG_NF_CONNTRACK: without it the state is
 * RSTTRACE_CT_UNKNOWN. A packet with no entry reads as INVALID and one marked
 * untracked (ctinfo IP_CT_UNTRACKED, 7, no pointer) as UNTRACKED, as
 * xt_conntrack and nft's ct state read them, since cc41c84b7e7f ("netfilter:
 * kill the fake untracked conntrack objects", 4.15; commit not verified). The ip_conntrack_info values
 * are UAPI (linux/netfilter/nf_conntrack_common.h).
 */
static __always_inline __u8 conntrack_state_of(const struct sk_buff *skb, struct rsttrace_tcp_event *e)
{
	unsigned long nfct;
	const struct nf_conn *ct;
	__u8 ctinfo;

	if (!bpf_core_field_exists(skb->_nfct))
		return RSTTRACE_CT_UNKNOWN;
	nfct = BPF_CORE_READ(skb, _nfct);
	ctinfo = nfct & 7;
	ct = (const struct nf_conn *)(nfct & ~7UL);
	if (ctinfo == 7)
		return RSTTRACE_CT_UNTRACKED;
	if (!ct)
		return RSTTRACE_CT_INVALID;
	e->ct_status = (__u32)BPF_CORE_READ(ct, status);
	BPF_CORE_READ_INTO(&e->ct_orig_daddr, ct, tuplehash[0].tuple.dst.u3);
	e->ct_orig_dport = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[0].tuple.dst.u.all));
	switch (ctinfo) {
	case 0: return RSTTRACE_CT_ESTABLISHED;                     /* IP_CT_ESTABLISHED */
	case 1: return RSTTRACE_CT_RELATED;                         /* IP_CT_RELATED */
	case 2: return RSTTRACE_CT_NEW;                             /* IP_CT_NEW */
	case 3: return RSTTRACE_CT_ESTABLISHED | RSTTRACE_CT_REPLY; /* IP_CT_ESTABLISHED_REPLY */
	case 4: return RSTTRACE_CT_RELATED | RSTTRACE_CT_REPLY;     /* IP_CT_RELATED_REPLY */
	default: return RSTTRACE_CT_UNKNOWN;
	}
}

#endif /* RSTTRACE_CORE_FIXES_BPF_H */
