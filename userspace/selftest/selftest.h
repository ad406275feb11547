#pragma once

#include "cli/options.h"

namespace rsttrace {

// `rsttrace selftest`: runs the scenario lab (selftest/scenarios.cpp) and
// prints a pass/fail table, or one JSON result per scenario. Exit code 0 only
// when every scenario passed.
int run_selftest(const SelftestOptions& options);

}  // namespace rsttrace
