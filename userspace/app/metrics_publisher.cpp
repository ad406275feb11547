#include "app/metrics_publisher.h"

#include "clock.h"

namespace rsttrace {

MetricsPublisher::MetricsPublisher(const TraceOptions& options)
    : start_unix_(static_cast<double>(unix_now_ns()) / 1e9),
      bpf_stats_(options.bpf_stats) {
  if (options.metrics) server_ = std::make_unique<MetricsServer>(*options.metrics);
}

void MetricsPublisher::serve() {
  if (server_) server_->serve();
}

void MetricsPublisher::maybe_publish(uint64_t reports_total, const std::function<void(MetricsSnapshot&)>& fill,
                                     bool force) {
  if (!server_) return;
  const uint64_t now = monotonic_now_ns();
  if (!force && now < last_ns_ + 1'000'000'000ULL) return;
  MetricsSnapshot snapshot;
  snapshot.events = events_.counts();
  snapshot.storm_events = storm_events_.counts();
  snapshot.storm_connections = storm_connections_.counts();
  snapshot.top_remotes = peers_.top_remotes();
  snapshot.top_prefixes = peers_.top_prefixes();
  snapshot.new_refused_wrappers = peers_.new_refused(Verdict::TcpWrappers);
  snapshot.new_refused_firewall = peers_.new_refused(Verdict::Firewall);
  fill(snapshot);
  if (last_ns_ != 0 && now > last_ns_)
    snapshot.events_per_second =
        static_cast<double>(reports_total - last_reports_) * 1e9 / static_cast<double>(now - last_ns_);
  const ProcessUsage usage = read_process_usage();
  snapshot.cpu_seconds = usage.cpu_seconds;
  snapshot.resident_bytes = usage.resident_bytes;
  snapshot.start_time_seconds = start_unix_;
  snapshot.program_stats = bpf_stats_;
  server_->publish(render_prometheus(snapshot));
  last_ns_ = now;
  last_reports_ = reports_total;
}

}  // namespace rsttrace
