// The run's counts and its closing `"type": "summary"` line (docs/events.md),
// built from plain values: unit-tested without root or a kernel.
//
// rsttrace's counters, which is which (each has one owner):
//  - KernelStats (collect/kernel_stats.h): what the BPF programs counted in
//    the kernel (seen, emitted, lost, folded, aggregated); read from the stats map.
//  - RunCounts (here): what the collector made of the records that arrived
//    (reports, the packets folded into them, by direction).
//  - Tally (output/tally.h): reports by verdict and by remote address, for
//    the people reading: the summary, the periodic log line.
//  - EventCounters (metrics/exposition.h): reports by Prometheus labels
//    (verdict, kind, direction, port), only with --metrics.
//  - MetricsSnapshot (metrics/exposition.h): no counter of its own, a copy of
//    all of the above taken once a second for the --metrics page.
//  - ProgramStats (collect/kernel_stats.h): each BPF program's runs and run
//    time (--bpf-stats).
// RunTally below owns the RunCounts and the two Tallies (since the start and
// since the last periodic line); the summary line reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attribute/attribution.h"
#include "collect/kernel_stats.h"
#include "output/tally.h"

namespace rsttrace {

struct RunCounts {
  uint64_t reports = 0;
  uint64_t packets = 0;  // kernel events folded into the reports
  uint64_t reset_sent = 0;
  uint64_t reset_received = 0;
  uint64_t drop = 0;
};

// Every report and storm line of the run, counted once.
class RunTally {
 public:
  void add(const Attribution& report);
  void add_storm(const Attribution& verdict, const std::string& peer_addr, uint64_t count, uint64_t connections);
  void add_storm_peer(const std::string& peer_addr, uint64_t connections) {
    interval_.add_storm_peer(peer_addr, connections);
    run_.add_storm_peer(peer_addr, connections);
  }
  const RunCounts& counts() const { return counts_; }
  const Tally& run() const { return run_; }            // since the start
  const Tally& interval() const { return interval_; }  // since clear_interval()
  void clear_interval() { interval_.clear(); }

 private:
  RunCounts counts_;
  Tally run_;
  Tally interval_;
};

struct CaptureCounts {
  uint64_t failed_writes = 0;
  uint64_t rotations = 0;
};

// Everything the summary line says, gathered at exit.
struct SummaryFacts {
  uint64_t unix_ns = 0;  // when: the line's ts
  double duration_s = 0;
  RunCounts counts;
  uint64_t absorbed = 0;  // the attributor's
  uint64_t ignored = 0;
  uint64_t malformed = 0;  // records that did not decode
  uint64_t storms = 0;     // storms started
  uint64_t provenance_timed_out = 0;
  uint64_t provenance_skipped = 0;
  KernelStats kernel;
  std::optional<std::vector<ProgramStats>> programs;  // with --bpf-stats
  std::optional<CaptureCounts> capture;               // with --output
  std::string host;                                   // the lines' "host" (Formatter::host)
};

// The summary as one JSON line (no newline), keys in the documented order.
std::string summary_line(const SummaryFacts& facts, const Tally& run);

}  // namespace rsttrace
