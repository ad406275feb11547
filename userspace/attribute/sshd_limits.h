// sshd's effective limits on unauthenticated connections, as `sshd -T`
// prints them (servconf.c's dump_config(); OpenSSH 9.2 has no
// persourcepenalties line, 9.8 adds it, 10.0 adds refuseconnection), and the
// parser of that output. The output comes from a process rsttrace runs in
// another root: it is parsed as hostile input (bounded, never throws). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error.h"

namespace rsttrace {

// PerSourcePenalties (OpenSSH 9.8+): seconds of penalty per class, and the table's bounds.
struct SourcePenalties {
  double crash = 90, authfail = 5, noauth = 1, grace_exceeded = 10;
  std::optional<double> refuseconnection = 10;  // 10.0+; absent on 9.8 and 9.9
  double max = 600, min = 15;
  uint32_t max_sources4 = 65536, max_sources6 = 65536;
  std::string overflow = "permissive", overflow6 = "permissive";
};

struct SshdLimits {
  uint32_t max_startups_start = 10, max_startups_rate = 30, max_startups_full = 100;
  std::optional<uint32_t> per_source_max_startups;  // none
  uint32_t netblock4 = 32, netblock6 = 128;          // PerSourceNetBlockSize
  // nullopt: `persourcepenalties no`, or an sshd before 9.8 (no such line).
  std::optional<SourcePenalties> penalties = SourcePenalties{};
  bool penalties_line = true;                        // false: this sshd printed none (before 9.8)
  std::string penalty_exempt_list;                   // "" for none
  uint32_t login_grace_time = 120;                   // seconds; 0: none

  // "3:50:6"
  std::string max_startups_text() const;
};

// Where a verdict's limits come from: `sshd -T` of that sshd, or OpenSSH's
// defaults with the reason sshd -T was not used ("pending", "its executable
// is owned by uid 1000, not root", ...).
struct SshdLimitsSource {
  SshdLimits limits;
  bool from_sshd = false;
  std::string not_run_reason = "pending";
  // "sshd -T" or "defaults (sshd -T not run: REASON)"
  std::string words() const;
};

// At most this much output is parsed (the broker caps the run's output there too).
inline constexpr size_t kMaxSshdTestOutput = 64 * 1024;

// `sshd -T`'s output into the limits. A failure names the first thing wrong
// (no maxstartups line, a value out of range, too much text ...). Linear in
// the text's size, which is capped at kMaxSshdTestOutput.
Result<SshdLimits> parse_sshd_limits(std::string_view text);

}  // namespace rsttrace
