// RSS after start-up (issue 17: peak RSS in floods, measured from ready).
// Start-up touches code and constants that the trace loop never runs again:
// option parsing, the kernel's BTF, libbpf's and libelf's loading, the
// brokers' fork, the embedded BPF object (1.1 MB, twice). Those pages stay in
// the collector's RSS for the whole run unless they are dropped.
#pragma once

namespace rsttrace {

// Drops from this process's RSS the pages of every loaded object's read-only
// segments (code and constants; never a writable segment, RELRO included, and
// not the vDSO). They are clean file pages: what the trace loop runs again is
// faulted back in from the page cache (microseconds, once per page). Advice
// only: a failure leaves RSS as it was.
void release_startup_pages();

}  // namespace rsttrace
