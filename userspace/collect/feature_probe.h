// Probes what the running kernel lets rsttrace attach, by loading and
// attaching one program of the real object at a time (nothing stays attached).
#pragma once

#include <string>
#include <vector>

#include "error.h"

struct btf;

namespace rsttrace {

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

}  // namespace rsttrace
