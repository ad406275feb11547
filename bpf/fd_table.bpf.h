/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The current task's fd table: from the fd a syscall returned to its struct
 * file (accept() -> the accepted socket, owner.bpf.h).
 */
#ifndef RSTTRACE_FD_TABLE_BPF_H
#define RSTTRACE_FD_TABLE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "core_fixes.bpf.h"

/* The file behind `fd` in the current process, 0 if none. */
static __always_inline struct file *current_file(long fd)
{
	struct file **fds = 0;
	struct file *file = 0;

	/* The fd table: plain loads where the task is typed (core_fixes), four
	 * helper reads before. The array's slots are read with the helper either
	 * way: a pointer to pointers carries no type. */
	if (have_current_task_btf()) {
		struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;

		if (!fdt || fd >= fdt->max_fds)
			return 0;
		fds = fdt->fd;
	} else {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);

		if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
			return 0;
		fds = BPF_CORE_READ(fdt, fd);
	}
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

#endif /* RSTTRACE_FD_TABLE_BPF_H */
