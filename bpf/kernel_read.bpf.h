/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel structures are read two ways, and each caller names the one it means.
 *
 * READ_BTF: programs on BTF tracepoints (tp_btf) get typed pointers. Plain
 * loads, which the verifier makes fault-safe, cost about a nanosecond each.
 * The verifier checks them against the pointer's type, so fields past
 * struct sock (inet_sock, tcp_sock) are read with READ_CORE even there.
 *
 * READ_CORE: the kprobe and the syscall tracepoints have untyped pointers and
 * need a bpf_probe_read_kernel() call per field (BPF_CORE_READ), 15-20 ns
 * each, which in a reset storm was most of an event's cost.
 *
 * Both relocate field offsets against the running kernel (CO-RE).
 */
#ifndef RSTTRACE_KERNEL_READ_BPF_H
#define RSTTRACE_KERNEL_READ_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

#define READ_BTF(ptr, field) ((ptr)->field)
#define READ_CORE(ptr, field) BPF_CORE_READ(ptr, field)

/* `size` bytes at `src` (a field's address) into `dst`. */
#define READ_BTF_BYTES(dst, size, src) __builtin_memcpy(dst, src, size)
#define READ_CORE_BYTES(dst, size, src) bpf_core_read(dst, size, src)

#endif /* RSTTRACE_KERNEL_READ_BPF_H */
