#include "metrics/exposition.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "error.h"
#include "text/event_names.h"

namespace rsttrace {

void EventCounters::add(const Attribution& report, uint16_t port, uint64_t count) {
  total_ += count;
  const std::string_view kind = kind_name(report.event.kind), direction = direction_name(report.event.kind);
  if (last_ && last_->first.port == port && last_->first.verdict == report.verdict &&
      last_->first.kind == kind && last_->first.direction == direction) {
    last_->second += count;
    return;
  }
  auto [entry, inserted] =
      counts_.try_emplace(EventLabels{report.verdict, std::string(kind), std::string(direction), port}, 0);
  entry->second += count;
  last_ = &*entry;
}

namespace {

// Label values: backslash, double quote and newline escaped (text format 0.0.4).
std::string label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest exact form
  return std::string(buffer, result.ptr);
}

class Page {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const char* name, const std::string& labels, const std::string& value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  void counter(const char* name, const char* help, uint64_t value) { counter(name, help, std::to_string(value)); }
  void counter(const char* name, const char* help, const std::string& value) {
    family(name, "counter", help);
    sample(name, "", value);
  }
  void gauge(const char* name, const char* help, const std::string& value) {
    family(name, "gauge", help);
    sample(name, "", value);
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

// A counter family labelled by verdict, kind, direction and port.
void event_counts(Page& page, const char* name, const char* help, const std::map<EventLabels, uint64_t>& counts) {
  page.family(name, "counter", help);
  for (const auto& [labels, count] : counts)
    page.sample(name,
                "verdict=\"" + label_value(std::string(verdict_name(labels.verdict))) + "\",kind=\"" + label_value(labels.kind) +
                    "\",direction=\"" + label_value(labels.direction) + "\",port=\"" + std::to_string(labels.port) +
                    "\"",
                std::to_string(count));
}

}  // namespace

std::string render_prometheus(const MetricsSnapshot& s) {
  Page page;
  event_counts(page, "rsttrace_events_total",
               "Connections reset or dropped on a watched port, by verdict, kind, direction and local port.", s.events);
  page.counter("rsttrace_kernel_events_total", "Records the BPF programs submitted to the ring buffer.",
               s.kernel_emitted);
  page.counter("rsttrace_kernel_folded_events_total",
               "Kernel events not submitted because they repeat one just submitted "
               "(the NO_SOCKET drop of a packet answered with a reported reset).",
               s.kernel_folded);
  event_counts(page, "rsttrace_storm_events_total",
               "Events counted in storms (one line per class and second instead of one per connection), by the "
               "verdict of their class, kind, direction and watched port.",
               s.storm_events);
  event_counts(page, "rsttrace_storm_connections_total",
               "Connections counted in storms: rsttrace_storm_events_total without the received ends of loopback "
               "connections whose sent resets a storm counts (one connection, two ends). Connections = "
               "rsttrace_events_total + this.",
               s.storm_connections);
  page.counter("rsttrace_kernel_aggregated_events_total",
               "Kernel events not submitted because the BPF programs counted them in a storm.", s.kernel_aggregated);
  page.gauge("rsttrace_storms_active", "Storms being counted in the kernel now.", std::to_string(s.storms_active));
  page.counter("rsttrace_packets_total", "Kernel events folded into reported events.", s.packets);
  page.counter("rsttrace_absorbed_events_total", "Kernel events folded into another connection's report.",
               s.absorbed);
  page.counter("rsttrace_ignored_events_total", "Kernel events of ordinary teardown, not reported.", s.ignored);
  page.counter("rsttrace_lost_events_total", "Kernel events lost because the ring buffer was full.", s.lost);
  page.counter("rsttrace_malformed_records_total", "Ring buffer records that failed to decode.", s.malformed);
  page.counter("rsttrace_kernel_stats_read_failures_total",
               "Reads of the BPF programs' counters that failed (the counters then show their last value read).",
               s.kernel_failed_reads);
  page.counter("rsttrace_capture_failed_writes_total", "Capture file lines that could not be written.",
               s.failed_writes);
  page.counter("rsttrace_capture_rotations_total", "Capture file rotations.", s.rotations);
  page.gauge("rsttrace_open_connections", "Connections waiting for a verdict.", std::to_string(s.open_connections));
  page.counter("rsttrace_evicted_connections_total",
               "Connections judged early because the connection table was full.", s.evicted_connections);
  page.gauge("rsttrace_events_per_second", "Reported events per second over the last second or so.",
             number(s.events_per_second));
  if (s.program_stats) {
    page.family("rsttrace_bpf_program_runs_total", "counter", "Runs of each BPF program (BPF_ENABLE_STATS).");
    for (const auto& program : s.programs)
      page.sample("rsttrace_bpf_program_runs_total", "program=\"" + label_value(program.name) + "\"",
                  std::to_string(program.runs));
    page.family("rsttrace_bpf_program_run_seconds_total", "counter",
                "Time spent in each BPF program (BPF_ENABLE_STATS).");
    for (const auto& program : s.programs)
      page.sample("rsttrace_bpf_program_run_seconds_total", "program=\"" + label_value(program.name) + "\"",
                  number(static_cast<double>(program.run_time_ns) / 1e9));
  }
  page.family("rsttrace_refused_new_addresses_total", "counter",
              "Remote addresses refused by tcp-wrappers or the firewall for the first time in this run.");
  page.sample("rsttrace_refused_new_addresses_total", "verdict=\"tcp-wrappers\"", std::to_string(s.new_refused_wrappers));
  page.sample("rsttrace_refused_new_addresses_total", "verdict=\"firewall\"", std::to_string(s.new_refused_firewall));
  page.family("rsttrace_top_remote_events", "gauge",
              "Events in this run from the 10 remote addresses with the most (storm counts included).");
  for (const auto& [address, count] : s.top_remotes)
    page.sample("rsttrace_top_remote_events", "remote_addr=\"" + label_value(address) + "\"", std::to_string(count));
  page.family("rsttrace_top_prefix_events", "gauge",
              "Events in this run from the 10 networks (/24, /48; a class storm's /24, /64) with the most (storm counts included).");
  for (const auto& [prefix, count] : s.top_prefixes)
    page.sample("rsttrace_top_prefix_events", "prefix=\"" + label_value(prefix) + "\"", std::to_string(count));
  page.counter("process_cpu_seconds_total", "User and system CPU time of the collector.", number(s.cpu_seconds));
  page.gauge("process_resident_memory_bytes", "Resident memory of the collector.", std::to_string(s.resident_bytes));
  page.gauge("process_start_time_seconds", "Start time of the collector since the Unix epoch.",
             number(s.start_time_seconds));
  return page.str();
}

ProcessUsage read_process_usage() {
  ProcessUsage usage;
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the comm (which may hold spaces): state is field 3.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return usage;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0, rss_pages = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
    if (index == 24) {
      rss_pages = std::stoull(field);
      break;
    }
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  usage.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  usage.resident_bytes = rss_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return usage;
}

}  // namespace rsttrace
