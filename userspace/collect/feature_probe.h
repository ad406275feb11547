// Probes what the running kernel lets rsttrace attach, by loading and
// attaching one program of the real object at a time (nothing stays attached).
#pragma once

#include <string>
#include <vector>

#include "error.h"

struct btf;

namespace rsttrace {

struct TracepointShapes;

// Loads `program` (a program name in bpf/rsttrace.bpf.c) alone and attaches
// it, with the argument counts of the running kernel's tracepoints (kernel_types).
// A Failure says why it cannot load or attach.
Result<void> probe_program(const std::string& program, const btf* kernel_types);
// The same for several programs loaded together (kernel_types may be null
// when none of them reads a tracepoint's arguments).
Result<void> probe_programs(const std::vector<std::string>& programs, const btf* kernel_types);

// accept() and wrapper-file opens are seen on kernel functions (fexit on
// inet_csk_accept and do_filp_open) where the kernel runs them: no cost to
// other syscalls. The programs, and the probe that tells whether they work.
inline const std::vector<std::string> kFunctionHookPrograms = {"handle_accept_fexit", "handle_open_fexit"};
inline Result<void> probe_function_hooks() { return probe_programs(kFunctionHookPrograms, nullptr); }
// TIME_WAIT resets, which tcp:tcp_send_reset shows only from 6.10: fexit on
// tcp_timewait_state_process, where the kernel runs it (a kernel without that
// function in its BTF only loses these resets).
inline Result<void> probe_timewait_hook() { return probe_program("handle_timewait_fexit", nullptr); }
// A full accept queue's drop, which kfree_skb names (TCP_LISTEN_OVERFLOW) only
// from 6.15: fentry and fexit on tcp_check_req, where the kernel runs them
// (bpf/rsttrace.bpf.c). Not wanted where the reason exists.
inline const std::vector<std::string> kListenOverflowPrograms = {"handle_listen_overflow_entry",
                                                                 "handle_listen_overflow_fexit"};
inline Result<void> probe_listen_overflow_hooks() { return probe_programs(kListenOverflowPrograms, nullptr); }

// Whether tcp:tcp_send_reset reports active resets (close() with SO_LINGER 0,
// disconnect, unread data) on this kernel: true or false with `how` it was
// learnt, or a Failure saying why the probe could not tell. It aborts one
// loopback connection of its own, in a throwaway network namespace (in the
// current one when it cannot make one), with probe_active_reset_tracepoint attached.
struct ActiveResetCoverage {
  bool tracepoint = false;
  std::string how;
};
Result<ActiveResetCoverage> probe_active_reset_coverage(const TracepointShapes& shapes);

}  // namespace rsttrace
