// Text and JSON renderings of reports and notices. Pure functions: every
// string that came from the kernel or the network is escaped here (with
// text/escape.h, the low-level helpers shared with attribute/ and provenance/).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "attribute/attribution.h"
#include "attribute/storm.h"
#include "collect/kernel_btf.h"
#include "text/escape.h"       // escape_untrusted, addresses: for callers of this header
#include "text/event_names.h"  // flag, kind and kernel names

namespace rsttrace {

std::string format_rfc3339_micro(uint64_t unix_ns);  // 2026-11-25T10:00:00.000001Z
void append_rfc3339_micro(std::string& out, uint64_t unix_ns);

// CLOCK_MONOTONIC (BPF timestamps) -> wall clock, measured once at start.
struct WallClock {
  int64_t realtime_minus_monotonic_ns = 0;
  static WallClock now();
  uint64_t unix_ns(uint64_t monotonic_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns) + realtime_minus_monotonic_ns);
  }
};

class JsonObjectWriter;

struct Formatter {
  const KernelNames& names;
  WallClock clock;
  std::string host;  // "host" of every line: the hostname or --host-label (cli/options.h), printable ASCII

  std::string event_line(const Attribution& report) const;            // one JSON line, written directly
  void append_event_line(std::string& out, const Attribution& report) const;  // the same, appended to `out`
  nlohmann::ordered_json event_json(const Attribution& report) const;  // the same, as a DOM (tests, tools)
  std::string event_text(const Attribution& report) const;
  // A storm's line (docs/events.md, "storm") and its text form.
  void append_storm_line(std::string& out, const StormReport& storm) const;
  std::string storm_text(const StormReport& storm) const;

 private:
  void append_enum_names(JsonObjectWriter& out, const TcpEvent& event) const;
};

// "; fix: CMD ; CMD" after a text line's detail (nothing when there is no remedy).
void append_remedy_text(std::string& line, const std::vector<std::string>& commands);

// One JSON line (no trailing newline); invalid UTF-8 cannot occur because
// every kernel string went through escape_untrusted.
std::string json_line(const nlohmann::ordered_json& object);

}  // namespace rsttrace
