// Prometheus text exposition of rsttrace's counters. Pure: the trace loop
// fills a MetricsSnapshot, render_prometheus() turns it into the page that
// --metrics serves (text format 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "attribute/attribution.h"
#include "collect/kernel_stats.h"  // ProgramStats

namespace rsttrace {

// Reports counted by the labels operators slice on.
struct EventLabels {
  Verdict verdict = Verdict::Unknown;  // ordered as its name (attribute/verdict.h): the page's order
  std::string kind;       // "reset" | "drop"
  std::string direction;  // "sent" | "received" | "dropped"
  uint16_t port = 0;      // the local (watched) port
  auto operator<=>(const EventLabels&) const = default;
};

class EventCounters {
 public:
  EventCounters() = default;
  EventCounters(const EventCounters& other) : counts_(other.counts_), total_(other.total_) {}
  EventCounters& operator=(const EventCounters& other) {
    counts_ = other.counts_;
    total_ = other.total_;
    last_ = nullptr;
    return *this;
  }
  void add(const Attribution& report) { add(report, report.event.local.port, 1); }
  void add(const Attribution& report, uint16_t port, uint64_t count);
  const std::map<EventLabels, uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }

 private:
  std::map<EventLabels, uint64_t> counts_;  // bounded: verdicts x kinds x watched ports
  uint64_t total_ = 0;
  // The entry the last report counted in: a storm repeats the same labels.
  std::pair<const EventLabels, uint64_t>* last_ = nullptr;
};

struct MetricsSnapshot {
  std::map<EventLabels, uint64_t> events;
  uint64_t packets = 0;         // kernel events folded into reports
  uint64_t absorbed = 0;        // kernel events folded into another connection's report
  uint64_t ignored = 0;         // ordinary teardown, not reported
  uint64_t lost = 0;            // ring buffer full
  uint64_t malformed = 0;       // records that failed to decode
  uint64_t failed_writes = 0;   // capture file lines that could not be written
  uint64_t rotations = 0;       // capture file rotations
  uint64_t kernel_emitted = 0;  // records the BPF programs submitted
  uint64_t kernel_folded = 0;   // events the BPF programs folded into one already submitted
  uint64_t kernel_failed_reads = 0;  // reads of the kernel's counters that failed (they kept their last value)
  std::map<EventLabels, uint64_t> storm_events;  // events counted in storms, labelled like events
  std::map<EventLabels, uint64_t> storm_connections;  // the connections they stand for (a loopback twin's: none)
  uint64_t kernel_aggregated = 0;  // events the BPF programs counted in a storm slot
  uint64_t storms_active = 0;
  uint64_t open_connections = 0;     // groups waiting for a verdict
  uint64_t evicted_connections = 0;  // groups judged early because the table was full
  double events_per_second = 0;      // reports per second over the last publish interval
  double cpu_seconds = 0;            // this process, user + system
  uint64_t resident_bytes = 0;
  double start_time_seconds = 0;     // unix time
  bool program_stats = false;        // BPF_ENABLE_STATS on: programs below are meaningful
  std::vector<ProgramStats> programs;
  // metrics/peers.h: at most 10 series each.
  std::vector<std::pair<std::string, uint64_t>> top_remotes, top_prefixes;
  uint64_t new_refused_wrappers = 0, new_refused_firewall = 0;
};

std::string render_prometheus(const MetricsSnapshot& snapshot);

// This process's CPU time and resident memory, from /proc/self/stat.
struct ProcessUsage {
  double cpu_seconds = 0;
  uint64_t resident_bytes = 0;
};
ProcessUsage read_process_usage();

}  // namespace rsttrace
