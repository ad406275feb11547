#pragma once

#include "cli/options.h"

namespace rsttrace {

// `rsttrace lab-client`: a raw TCP client for the scenario lab (garbage
// banners, connections held open, aborts), so the lab needs no netcat or
// python. Prints what happened to stderr the way ssh would.
int run_lab_client(const LabClientOptions& options);

}  // namespace rsttrace
