#pragma once

#include <string>

namespace rsttrace {

// Syscall tracepoints are attached by id, read from tracefs. Where tracefs
// is not mounted (no systemd, minimal images), mount it in a mount namespace
// of rsttrace's own, so the host's mount table is never changed. Returns an
// empty string on success, else why syscall tracepoints are unavailable.
std::string ensure_tracefs();

}  // namespace rsttrace
