#include "attribute/storm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

namespace rsttrace {

std::string_view storm_state_name(StormState state) {
  switch (state) {
    case StormState::Start: return "start";
    case StormState::Ongoing: return "ongoing";
    case StormState::End: return "end";
  }
  return "end";
}

StormTracker::StormTracker(uint64_t threshold_per_second, StormCounters& kernel, JudgeAlone judge_alone)
    : threshold_(std::max<uint64_t>(threshold_per_second, 1)), kernel_(kernel), judge_alone_(std::move(judge_alone)) {
  for (uint32_t slot = RSTTRACE_STORM_SLOTS; slot-- > 0;) free_slots_.push_back(slot);
}

void StormTracker::start(const rsttrace_storm_key& key, const TcpEvent& event, const LineFunction& on_line) {
  // Events already in the ring buffer when the storm started arrive here too.
  for (const Storm& storm : storms_)
    if (StormKeyEqual{}(storm.key, key)) return;
  if (free_slots_.empty()) {
    ++not_started_;
    return;
  }
  Storm storm;
  storm.key = key;
  storm.slot = free_slots_.back();
  storm.verdict = judge_alone_(key, event);
  storm.since_ns = event.monotonic_ns;
  storm.last_line_ns = event.monotonic_ns;
  try {
    kernel_.activate(key, storm.slot);
  } catch (const std::exception& error) {  // the class stays per connection: nothing is lost
    ++not_started_;
    spdlog::warn("{}; the class goes on with a line per connection", error.what());
    return;
  }
  free_slots_.pop_back();
  ++started_;
  storm.start_pending = storm.verdict.needs_provenance;
  storms_.push_back(std::move(storm));
  if (!storms_.back().start_pending) line(storms_.back(), StormState::Start, event.monotonic_ns, on_line);
}

void StormTracker::update_verdict_impl(const rsttrace_storm_key& key, Attribution verdict, uint64_t now_ns,
                                       const LineFunction& on_line) {
  for (Storm& storm : storms_)
    if (StormKeyEqual{}(storm.key, key)) {
      storm.verdict = std::move(verdict);
      if (storm.start_pending) {
        storm.start_pending = false;
        line(storm, StormState::Start, now_ns, on_line);
      }
      return;
    }
}

void StormTracker::line(Storm& storm, StormState state, uint64_t now_ns, const LineFunction& on_line) {
  const uint64_t counted = kernel_.count(storm.slot);
  StormReport report;
  report.state = state;
  report.key = storm.key;
  report.verdict = &storm.verdict;
  report.count = counted - storm.reported;
  report.total = counted;
  report.since_monotonic_ns = storm.since_ns;
  report.now_monotonic_ns = now_ns;
  report.interval_s = now_ns > storm.last_line_ns ? static_cast<double>(now_ns - storm.last_line_ns) / 1e9 : 0;
  aggregated_ += report.count;
  storm.reported = counted;
  storm.last_line_ns = now_ns;
  on_line(report);
}

void StormTracker::stop_counting(uint64_t now_ns) {
  for (Storm& storm : storms_)
    if (storm.ending_since_ns == 0) {
      kernel_.deactivate(storm.key, storm.slot);
      storm.ending_since_ns = now_ns;
    }
}

void StormTracker::tick_impl(uint64_t now_ns, bool final, const LineFunction& on_line) {
  for (size_t i = 0; i < storms_.size();) {
    Storm& storm = storms_[i];
    if (storm.start_pending) {
      if (!final) {  // counting goes on in the kernel; the start line will cover it
        ++i;
        continue;
      }
      storm.start_pending = false;  // at exit without its provenance: the lines go out as they are
      line(storm, StormState::Start, now_ns, on_line);
    }
    if (storm.ending_since_ns == 0 && now_ns >= storm.last_line_ns + kSecondNs) {
      const uint64_t before = storm.reported;
      const uint64_t span_ns = now_ns - storm.last_line_ns;
      line(storm, StormState::Ongoing, now_ns, on_line);
      // Calm: fewer than half the threshold per second over the line's span
      // (in doubles: a long stall times a large threshold overflows 64 bits).
      if (static_cast<double>(storm.reported - before) * 2 * kSecondNs <
          static_cast<double>(threshold_) * static_cast<double>(span_ns)) {
        kernel_.deactivate(storm.key, storm.slot);
        storm.ending_since_ns = now_ns;
      }
    }
    // A program that found the slot active just before deactivate() may still
    // be counting: the last count is read at least 50 ms later (programs run
    // for microseconds), or at exit after the ring buffer's last drain.
    if (storm.ending_since_ns != 0 && (final || now_ns >= storm.ending_since_ns + 50'000'000ULL)) {
      line(storm, StormState::End, now_ns, on_line);
      kernel_.remove(storm.key);
      free_slots_.push_back(storm.slot);
      storms_.erase(storms_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
}

}  // namespace rsttrace
