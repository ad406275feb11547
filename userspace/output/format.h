// Text and JSON renderings of reports and notices. Pure functions: every
// string that came from the kernel or the network is escaped here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "attribute/report.h"
#include "attribute/storm.h"
#include "collect/kernel_btf.h"

namespace rsttrace {

// Printable ASCII stays, backslash doubles, everything else becomes \xNN:
// safe in a terminal, in a log line and (after JSON escaping) in JSON.
std::string escape_untrusted(std::string_view bytes);

std::string format_address(int family, const std::array<uint8_t, 16>& addr);
std::string format_endpoint(int family, const Endpoint& endpoint);  // 1.2.3.4:22, [::1]:22
std::string format_rfc3339_micro(uint64_t unix_ns);                // 2026-11-25T10:00:00.000001Z
std::string format_tcp_flags(uint8_t flags);                       // SYN|ACK
std::string_view direction_name(EventKind kind);                   // sent / received / dropped
std::string_view kind_name(EventKind kind);                        // reset / drop
std::string_view owner_source_name(OwnerSource source);            // connect / accept / ...

// The same, appended to `out` without temporaries or stdio (the event line's
// hot path). Addresses are exactly what inet_ntop() gives.
void append_escaped_untrusted(std::string& out, std::string_view bytes);
void append_address(std::string& out, int family, const std::array<uint8_t, 16>& addr);
void append_endpoint(std::string& out, int family, const Endpoint& endpoint);
void append_rfc3339_micro(std::string& out, uint64_t unix_ns);
void append_tcp_flags(std::string& out, uint8_t flags);

// CLOCK_MONOTONIC (BPF timestamps) -> wall clock, measured once at start.
struct WallClock {
  int64_t realtime_minus_monotonic_ns = 0;
  static WallClock now();
  uint64_t unix_ns(uint64_t monotonic_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns) + realtime_minus_monotonic_ns);
  }
};

// The kernel's name for the event's reason and TCP state, from the running
// kernel's BTF; "reason 93" for a value the BTF does not name.
std::optional<std::string> reason_name(const KernelNames& names, const TcpEvent& event);
std::optional<std::string> state_name(const KernelNames& names, const TcpEvent& event);
// The same, appended to `out`; false (nothing appended) when the event has none.
bool append_reason_name(std::string& out, const KernelNames& names, const TcpEvent& event);
bool append_state_name(std::string& out, const KernelNames& names, const TcpEvent& event);

class JsonObjectWriter;

struct Formatter {
  const KernelNames& names;
  WallClock clock;

  std::string event_line(const Report& report) const;            // one JSON line, written directly
  void append_event_line(std::string& out, const Report& report) const;  // the same, appended to `out`
  nlohmann::ordered_json event_json(const Report& report) const;  // the same, as a DOM (tests, tools)
  std::string event_text(const Report& report) const;
  // A storm's line (docs/events.md, "storm") and its text form.
  void append_storm_line(std::string& out, const StormReport& storm) const;
  std::string storm_text(const StormReport& storm) const;

 private:
  void append_enum_names(JsonObjectWriter& out, const TcpEvent& event) const;
};

// One JSON line (no trailing newline); invalid UTF-8 cannot occur because
// every kernel string went through escape_untrusted.
std::string json_line(const nlohmann::ordered_json& object);

}  // namespace rsttrace
