#include "app/metrics_publisher.h"

#include <time.h>

#include <chrono>

namespace rsttrace {
namespace {

uint64_t monotonic_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

MetricsPublisher::MetricsPublisher(const TraceOptions& options)
    : start_unix_(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()),
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
