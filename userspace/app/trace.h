#pragma once

#include "cli/options.h"

namespace rsttrace {

// Attaches, prints events until a signal or --duration, detaches, prints a
// summary. Returns the exit code; throws Error for setup failures.
int run_trace(const TraceOptions& options);

}  // namespace rsttrace
