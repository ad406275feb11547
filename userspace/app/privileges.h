#pragma once

#include <functional>
#include <string>

namespace rsttrace {

// Throws Error unless this process may load and attach tracing programs:
// root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN) in its effective set.
void require_bpf_privileges();

// Who the collector becomes after attach when --user is not given: the
// dedicated system user `rsttrace` (dist/sysusers.d), else `nobody`; "" when
// this process is not uid 0 (already unprivileged: only its capabilities go).
// Throws Error if neither user exists.
std::string default_collector_user();

struct DroppedPrivileges {
  std::string user;           // empty: still uid 0, without capabilities
  bool kept_cap_bpf = false;  // the kernel checks CAP_BPF on every bpf() call
};

// After attach, for this (single-threaded) process: the bounding and ambient
// sets emptied, every capability dropped (CAP_BPF kept only if maps_readable()
// fails without it), no_new_privs set, and with `user` the uid and gids
// switched to that user's. Throws Error; the process is then unusable.
DroppedPrivileges drop_privileges(const std::string& user, const std::function<bool()>& maps_readable);

// "CapEff 0000000000000000, CapPrm ..., CapBnd ..., NoNewPrivs 1, Uid 65534": for logs.
std::string privilege_summary();

}  // namespace rsttrace
