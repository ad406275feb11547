/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TCP wrappers evidence: libwrap (sshd, tcpd) opens /etc/hosts.allow and
 * /etc/hosts.deny for every connection it judges. Userspace joins these opens
 * to the process that later closes the connection.
 */
#ifndef RSTTRACE_WRAPPERS_BPF_H
#define RSTTRACE_WRAPPERS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "rsttrace/records.h"

/* Which wrappers file `name` is (RSTTRACE_HOSTS_*), 0 if neither. */
static __always_inline __u8 wrapper_file(const char *name)
{
	/* Not static: clang 14 gives function-local statics a BTF offset in
	 * .rodata that the kernel rejects, and the object's BTF (line info in
	 * verifier logs) was then dropped on every kernel. */
	const char allow[] = "/etc/hosts.allow";
	const char deny[] = "/etc/hosts.deny";
	bool is_allow = true, is_deny = true;

	for (int i = 0; i < sizeof(allow); i++) {
		if (name[i] != allow[i])
			is_allow = false;
		if (i < sizeof(deny) && name[i] != deny[i])
			is_deny = false;
	}
	return is_allow ? RSTTRACE_HOSTS_ALLOW : is_deny ? RSTTRACE_HOSTS_DENY : 0;
}

/* The opener's facts (process, namespaces, credentials, parent) for the open of `file`. */
static __always_inline void fill_wrapper_open(struct rsttrace_wrapper_open *e, __u8 file, __u32 open_flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->file = file;
	e->header.type = RSTTRACE_RECORD_WRAPPER_OPEN;
	e->header.size = sizeof(*e);
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->open_flags = open_flags;
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	/* Who opened it, as the initial user namespace sees it: cred->uid is a
	 * kuid (global), and a user namespace other than the initial one means
	 * everything this process says (names, files) is that user's own word. */
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	e->parent_pid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->parent_thread, task, real_parent, comm);
	BPF_CORE_READ_STR_INTO(&e->parent_comm, task, real_parent, group_leader, comm);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/*
 * An open of a wrappers file is recorded at sys_enter_openat (the path is a
 * user pointer, readable only there) and submitted at sys_exit_openat only if
 * it succeeded: a failed open(O_WRONLY) of hosts.deny by an unprivileged
 * process must not make it "the writer", and a failed read-open means libwrap
 * read nothing from that file, so it is no evidence of a check either.
 * Between the two the open waits in pending_wrapper_opens (maps.bpf.h).
 * Where fexit works, submit_opened_wrapper() below does it in one step instead.
 *
 * sys_enter_openat: keep an open of a wrappers file until its exit.
 */
static __always_inline void stash_wrapper_open(const struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rsttrace_wrapper_open e = {};
	char name[20] = {};
	__u8 file;

	if (bpf_probe_read_user_str(name, sizeof(name), (const char *)ctx->args[1]) < 16 ||
	    name[0] != '/' || name[5] != 'h')
		return;
	file = wrapper_file(name);
	if (!file)
		return;
	fill_wrapper_open(&e, file, (__u32)ctx->args[2]);
	if (bpf_map_update_elem(&pending_wrapper_opens, &pid_tgid, &e, BPF_ANY) == 0)
		__sync_fetch_and_add(&wrapper_opens_pending, 1);
}

/* fexit of a successful open: `name` (a kernel string, the path as the caller gave it). */
static __always_inline void submit_opened_wrapper(const char *name_ptr, __u32 open_flags)
{
	struct rsttrace_wrapper_open e = {};
	const char prefix[] = "/etc/hos";  /* not static: see wrapper_file() */
	char name[20] = {};
	__u8 file;

	/* This runs for every open of the host (bench/unrelated_costs.py): one
	 * fixed-size read of 8 bytes turns nearly all away before the string read
	 * (in the 6.1 guest an open cost 416 instructions more with fexit than
	 * without, 3.7%). A shorter name has its NUL among them, which no prefix
	 * byte equals (the bytes past it are still in the name's allocation; a
	 * read that faults fails, and returns here too). */
	if (bpf_probe_read_kernel(name, 8, name_ptr))
		return;
	for (int i = 0; i < 8; i++)
		if (name[i] != prefix[i])
			return;
	if (bpf_probe_read_kernel_str(name, sizeof(name), name_ptr) < 16)
		return;
	file = wrapper_file(name);
	if (!file)
		return;
	fill_wrapper_open(&e, file, open_flags);
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP))
		count(RSTTRACE_STAT_LOST);
	else
		count(RSTTRACE_STAT_EVIDENCE);
}

/* sys_exit_openat: submit the kept open if it succeeded, and forget it. */
static __always_inline void submit_wrapper_open(const struct trace_event_raw_sys_exit *ctx)
{
	struct rsttrace_wrapper_open *e;
	__u64 pid_tgid;

	if (!wrapper_opens_pending)
		return;
	pid_tgid = bpf_get_current_pid_tgid();
	e = bpf_map_lookup_elem(&pending_wrapper_opens, &pid_tgid);
	if (!e)
		return;
	if (ctx->ret >= 0) {
		if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
			count(RSTTRACE_STAT_LOST);
		else
			count(RSTTRACE_STAT_EVIDENCE);
	}
	if (bpf_map_delete_elem(&pending_wrapper_opens, &pid_tgid) == 0)
		__sync_fetch_and_sub(&wrapper_opens_pending, 1);
}

#endif /* RSTTRACE_WRAPPERS_BPF_H */
