// Probes what the running kernel lets rsttrace attach, by loading and
// attaching one program of the real object at a time (nothing stays attached).
#pragma once

#include <string>

struct btf;

namespace rsttrace {

struct ProbeResult {
  bool ok = false;
  std::string error;  // why not, when !ok
};

// Loads `program` (a program name in bpf/rsttrace.bpf.c) alone and attaches
// it, with the argument counts of the running kernel's tracepoints (kernel_types).
ProbeResult probe_program(const std::string& program, const btf* kernel_types);

}  // namespace rsttrace
