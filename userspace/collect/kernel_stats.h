// What the kernel side counts, as plain values (no libbpf): read by
// BpfSession, written by the summary (output/summary.h) and the metrics page.
#pragma once

#include <cstdint>
#include <string>

namespace rsttrace {

// Counters kept by the BPF programs, summed over CPUs (enum rsttrace_stat).
struct KernelStats {
  uint64_t emitted = 0;
  uint64_t lost = 0;
  uint64_t reset_sent = 0;
  uint64_t reset_received = 0;
  uint64_t drop = 0;
  uint64_t evidence = 0;    // wrapper-file opens
  uint64_t folded = 0;      // seen but not emitted: they repeat an emitted event (the answered SYN's drop)
  uint64_t aggregated = 0;  // seen but not emitted: counted in a storm slot
  // Reads of the stats map that failed since the start: the counters above
  // then keep their last value read, never 0 (a loss is never hidden).
  uint64_t failed_reads = 0;
};

// A program's cost as the kernel counts it (BPF_ENABLE_STATS).
struct ProgramStats {
  std::string name;
  uint64_t runs = 0;
  uint64_t run_time_ns = 0;
};

}  // namespace rsttrace
