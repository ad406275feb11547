#include "output/summary.h"

#include <nlohmann/json.hpp>

#include "output/format.h"

namespace rsttrace {

void RunTally::add(const Attribution& report) {
  interval_.add(report);
  run_.add(report);
  ++counts_.reports;
  counts_.packets += report.packets;
  switch (report.event.kind) {
    case EventKind::ResetSent: ++counts_.reset_sent; break;
    case EventKind::ResetReceived: ++counts_.reset_received; break;
    case EventKind::Drop: ++counts_.drop; break;
  }
}

void RunTally::add_storm(const Attribution& verdict, const std::string& peer_addr, uint64_t count,
                         uint64_t connections) {
  interval_.add_storm(verdict, peer_addr, count, connections);
  run_.add_storm(verdict, peer_addr, count, connections);
}

std::string summary_line(const SummaryFacts& facts, const Tally& run) {
  const KernelStats& kernel = facts.kernel;
  nlohmann::ordered_json summary = {
      {"type", "summary"},
      {"ts", format_rfc3339_micro(facts.unix_ns)},
      {"host", facts.host},
      {"duration_s", facts.duration_s},
      {"events", facts.counts.reports},
      {"packets", facts.counts.packets},
      {"absorbed", facts.absorbed},
      {"ignored", facts.ignored},
      {"reset_sent", facts.counts.reset_sent},
      {"reset_received", facts.counts.reset_received},
      {"drop", facts.counts.drop},
      {"lost", kernel.lost},
      {"malformed", facts.malformed},
      {"storms", facts.storms},
      {"provenance", {{"timed_out", facts.provenance_timed_out}, {"skipped", facts.provenance_skipped}}},
      {"aggregated", run.storm_events()},
      {"kernel", {{"emitted", kernel.emitted},
                  {"reset_sent", kernel.reset_sent},
                  {"reset_received", kernel.reset_received},
                  {"drop", kernel.drop},
                  {"evidence", kernel.evidence},
                  {"folded", kernel.folded},
                  {"aggregated", kernel.aggregated},
                  {"failed_reads", kernel.failed_reads}}},
  };
  summary["verdicts"] = run.by_verdict();
  summary["storm_verdicts"] = run.storm_by_verdict();
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (const auto& [address, count] : run.top_remotes(10)) top.push_back({{"remote_addr", address}, {"events", count}});
  summary["top_remotes"] = top;
  summary["storm_connections"] = run.storm_connections();
  if (facts.programs) {
    nlohmann::ordered_json programs = nlohmann::ordered_json::array();
    for (const ProgramStats& program : *facts.programs)
      programs.push_back({{"name", program.name},
                          {"runs", program.runs},
                          {"run_time_ns", program.run_time_ns},
                          {"ns_per_run", program.runs ? static_cast<double>(program.run_time_ns) / program.runs : 0.0}});
    summary["programs"] = programs;
  }
  if (facts.capture)
    summary["capture"] = {{"failed_writes", facts.capture->failed_writes}, {"rotations", facts.capture->rotations}};
  return json_line(summary);
}

}  // namespace rsttrace
