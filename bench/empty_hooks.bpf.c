// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of any observer on rsttrace's hooks: a program that does nothing
 * on each of rsttrace's attach points, under the same name. The bench runs it
 * as a configuration of its own, so the tracepoints' own cost (dispatch, and
 * the syscall slow path that syscall tracepoints put every process on) is
 * measured apart from rsttrace's work. rsttrace_empty_hooks checks at start
 * that each program's section is the one rsttrace's program of that name has.
 * Each hook's kernel prototype heads its program in bpf/rsttrace.bpf.c.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(handle_send_reset) { return 0; }

SEC("kprobe/tcp_send_active_reset")
int BPF_KPROBE(handle_active_reset) { return 0; }

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_receive_reset) { return 0; }

SEC("tp_btf/kfree_skb")
int BPF_PROG(handle_kfree_skb) { return 0; }

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state) { return 0; }

SEC("tp_btf/sock_send_length")
int BPF_PROG(handle_send_length) { return 0; }

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_recv_length) { return 0; }

SEC("tp/syscalls/sys_exit_accept4")
int handle_accept4_exit(void *ctx) { return 0; }

SEC("tp/syscalls/sys_exit_accept")
int handle_accept_exit(void *ctx) { return 0; }

SEC("tp/syscalls/sys_enter_openat")
int handle_openat_enter(void *ctx) { return 0; }

SEC("tp/syscalls/sys_exit_openat")
int handle_openat_exit(void *ctx) { return 0; }

/* Where the kernel has fentry/fexit (Debian's 6.1): rsttrace's optional hooks
 * ("?": loaded only when rsttrace_empty_hooks is asked for them). */
SEC("?fexit/tcp_timewait_state_process")
int BPF_PROG(handle_timewait_fexit) { return 0; }

SEC("?fentry/tcp_check_req")
int BPF_PROG(handle_listen_overflow_entry) { return 0; }

SEC("?fexit/tcp_check_req")
int BPF_PROG(handle_listen_overflow_fexit) { return 0; }

SEC("?fexit/inet_csk_accept")
int BPF_PROG(handle_accept_fexit) { return 0; }

SEC("?fexit/do_filp_open")
int BPF_PROG(handle_open_fexit) { return 0; }
