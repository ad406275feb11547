#pragma once

namespace rsttrace {

// `rsttrace check`: what the running kernel offers (tracepoints and their
// arguments, reason enums, kprobes, fentry, tracefs), which fallbacks rsttrace
// uses here, and a real load and attach of every program. Exit 0 when tracing
// works (possibly with limitations, which it names), 1 when it cannot.
int run_check();

}  // namespace rsttrace
