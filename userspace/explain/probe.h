// What `rsttrace explain` reads of the system, as root, in its own one-shot
// process: the namespace's route back to the client and rp_filter (after
// setns into it), its listening sockets (/proc/self/net/tcp{,6}) and who
// holds them (/proc/*/fd), the rulesets (provenance/firewall.h, the same
// readers and walker as live attribution), the listener's hosts files inside
// its root (openat2 RESOLVE_IN_ROOT, privsep/safe_access.h) and fail2ban's
// bans at its fixed, checked socket. Everything read is untrusted: the
// judgement (explain/walk.h) escapes it.
#pragma once

#include <cstdint>

#include "explain/sockets.h"
#include "explain/walk.h"
#include "privsep/system_access.h"

namespace rsttrace::explain {

// Enters network namespace `netns` (0: stays in its own) and reads the facts
// for a SYN from `client` to `port`. Throws Error only when the namespace
// cannot be found or entered; a read that fails is a fact ("not read: why").
Facts read_facts(const ClientAddress& client, uint16_t port, uint32_t netns, SystemAccess& access);

}  // namespace rsttrace::explain
