#include "app/event_printer.h"

#include <cstdio>
#include <spdlog/spdlog.h>

namespace rsttrace {

EventPrinter::EventPrinter(const TraceOptions& options, const Formatter& formatter, uid_t capture_owner)
    : json_(options.json), formatter_(formatter) {
  if (!options.output.empty())
    capture_ = std::make_unique<CaptureFile>(options.output, options.rotate_bytes, options.rotate_keep, capture_owner);
}

void EventPrinter::report(const Attribution& report) {
  if (json_ || capture_) {
    line_.clear();
    formatter_.append_event_line(line_, report);
    if (capture_) capture_->write_line(line_);
    if (json_) line(line_);
  }
  if (!json_) line(formatter_.event_text(report));
}

void EventPrinter::storm(const StormReport& storm) {
  if (json_ || capture_) {
    line_.clear();
    formatter_.append_storm_line(line_, storm);
    if (capture_) capture_->write_line(line_);
    if (json_) line(line_);
  }
  if (!json_) line(formatter_.storm_text(storm));
}

void EventPrinter::lost(uint64_t count, uint64_t total, uint64_t now_unix_ns) {
  spdlog::warn("lost {} events (ring buffer full; {} in total): raise --ring-buffer-kib", count, total);
  record(json_line({{"type", "lost"}, {"ts", format_rfc3339_micro(now_unix_ns)}, {"host", formatter_.host}, {"count", count}, {"total", total}}));
}

void EventPrinter::record(const std::string& json) {
  if (capture_) capture_->write_line(json);
  if (json_) line(json);
}

void EventPrinter::flush() { std::fflush(stdout); }

void EventPrinter::line(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace rsttrace
