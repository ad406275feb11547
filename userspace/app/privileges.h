#pragma once

namespace rsttrace {

// Throws Error unless this process may load and attach tracing programs:
// root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN) in its effective set.
void require_bpf_privileges();

}  // namespace rsttrace
