#pragma once

#include "error.h"

namespace rsttrace {

// Syscall tracepoints are attached by id, read from tracefs. Where tracefs
// is not mounted (no systemd, minimal images), mount it in a mount namespace
// of rsttrace's own, so the host's mount table is never changed. A Failure
// says why syscall tracepoints are unavailable (the run goes on without them).
Result<void> ensure_tracefs();

}  // namespace rsttrace
