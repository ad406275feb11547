#pragma once

#include "cli/options.h"

namespace rsttrace {

// `rsttrace report FILE...`: the incident story of capture files on stdout,
// and with --html a self-contained page. Malformed lines are reported on
// stderr with their line numbers and skipped; unreadable files are an Error.
int run_report(const ReportOptions& options);

}  // namespace rsttrace
