// The listener's part of what `rsttrace explain` reads (explain/probe.h):
// its socket's accept queue and backlog from the kernel's sock_diag, in the
// network namespace the process is in, and its sshd's log for
// PerSourcePenalties: sshd's standard error when it is a file (sshd -e, -E),
// else /var/log/auth.log inside its root, the last 1 MiB of each, through
// SystemAccess (the broker's paths: privsep/system_access.h).
#pragma once

#include <cstdint>
#include <vector>

#include "error.h"
#include "explain/sockets.h"
#include "explain/walk.h"
#include "privsep/system_access.h"

namespace rsttrace::explain {

// Every TCP listener of one family (AF_INET or AF_INET6) of the current network namespace.
Result<std::vector<ListeningSocket>> read_diag_listeners(int family);

// `client`'s penalty in the log of `listener` (an sshd).
SshdLogFacts read_sshd_log(const ListenerProcess& listener, const ClientAddress& client, SystemAccess& access);

}  // namespace rsttrace::explain
