// Records that failed to decode: each one counted, and logged without
// flooding the log: the first at once, then at most one line a second that
// says how many more there were. Pure (time is passed in); unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rsttrace {

class MalformedRecords {
 public:
  static constexpr uint64_t kLineEveryNs = 1'000'000'000ULL;

  // One record that did not decode, and why; the line to log now, if any.
  std::optional<std::string> add(const std::string& reason, uint64_t now_ns) {
    ++total_;
    if (now_ns < next_line_ns_) {
      ++unlogged_;
      last_reason_ = reason;
      return std::nullopt;
    }
    next_line_ns_ = now_ns + kLineEveryNs;
    return "failed to decode record: " + reason;
  }
  // Once per poll (and with UINT64_MAX at exit): the line for the records
  // not logged yet, once their second is over.
  std::optional<std::string> tick(uint64_t now_ns) {
    if (unlogged_ == 0 || now_ns < next_line_ns_) return std::nullopt;
    std::string line = "failed to decode " + std::to_string(unlogged_) + " more record" + (unlogged_ > 1 ? "s" : "") +
                       " (the last: " + last_reason_ + "); " + std::to_string(total_) + " in total";
    unlogged_ = 0;
    next_line_ns_ = now_ns == UINT64_MAX ? now_ns : now_ns + kLineEveryNs;
    return line;
  }
  uint64_t total() const { return total_; }

 private:
  uint64_t total_ = 0;
  uint64_t unlogged_ = 0;  // counted since the last line
  uint64_t next_line_ns_ = 0;
  std::string last_reason_;
};

}  // namespace rsttrace
