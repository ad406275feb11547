// The system's own state behind a report, read now: for a TCP wrappers
// refusal, the hosts.allow/hosts.deny line as the refused process's root has
// it and the fail2ban jail that wrote it; for a firewall drop, the rule in
// the namespace's rulesets. Slow (commands, files of other processes), so it
// runs on the provenance worker (provenance/worker.h), never in the trace loop.
#pragma once

#include "attribute/attribution.h"
#include "provenance/provenance.h"

namespace rsttrace {

// For a report marked needs_provenance; appends to its detail.
void add_system_provenance(Attribution& report, Provenance& provenance);

}  // namespace rsttrace
