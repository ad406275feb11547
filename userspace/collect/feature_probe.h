// Probes what the running kernel lets rsttrace attach, by loading and
// attaching one program of the real object at a time (nothing stays attached).
#pragma once

#include <string>

#include "error.h"

struct btf;

namespace rsttrace {

// Loads `program` (a program name in bpf/rsttrace.bpf.c) alone and attaches
// it, with the argument counts of the running kernel's tracepoints (kernel_types).
// A Failure says why it cannot load or attach.
Result<void> probe_program(const std::string& program, const btf* kernel_types);

}  // namespace rsttrace
