// sshd's own word on PerSourcePenalties (OpenSSH 9.8+), from its log: the
// lines its listener writes when it penalises a source and when it refuses a
// penalised one, and the judgement "is a penalty active for this address
// now". Pure; unit-tested and fuzzed (the log is text anyone who can connect
// partly writes: addresses and ports only, but a crafted line may be forged
// by any local process that can write to the same log).
//
// The lines (srclimit.c and sshd.c of 9.8, 9.9 and 10.0; the first two at
// LogLevel VERBOSE only, the third at the default INFO):
//   srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 30 seconds for penalty: <reason>
//   srclimit_penalise: 192.0.2.7/32: activating ipv4 penalty of 40 seconds for penalty: <reason>
//   drop connection #0 from [192.0.2.7]:40102 on [192.0.2.1]:22 penalty: <reason>
//   drop connection #3 from [192.0.2.7]:40102 on [192.0.2.1]:22 too many penalised addresses
// as bare messages (sshd -e, -E FILE), or behind a syslog prefix: RFC 3339
// ("2026-11-30T19:57:40.123456+00:00 host sshd[812]: ...", rsyslog on Debian
// 12) or BSD ("Nov 30 19:57:40 host sshd[812]: ...").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error.h"

namespace rsttrace::explain {

struct PenaltyEvent {
  enum class Kind { Penalised, Refused, RefusedTableFull };
  Kind kind = Kind::Penalised;
  std::optional<int64_t> time;  // unix seconds when the line has a timestamp
  int family = 4;
  std::array<uint8_t, 16> addr{};  // network order: the netblock (Penalised) or the client (Refused)
  int prefix_bits = 32;            // the netblock's size (PerSourceNetBlockSize); the full address for Refused
  uint32_t seconds = 0;            // Penalised: the penalty's length when written
  bool active = true;              // Penalised: "active" or "activating"; false for "deferred"
  std::string penalty_class;       // "noauth", "authfail", "crash", "grace-exceeded", "refuseconnection"
};

struct SshdLog {
  std::vector<PenaltyEvent> events;  // in log order
  size_t lines = 0;                  // lines read
  size_t skipped = 0;                // lines of other processes (pid filter) or too long
};

// The penalty lines of `text` (the last lines of a log). `listener_pid`, when
// not 0, keeps only lines whose syslog prefix names that pid (bare lines have
// none and are kept). `year` dates BSD timestamps, which have none. At most
// kMaxLogBytes of text and kMaxLogLines lines; more is a Failure.
constexpr size_t kMaxLogBytes = 1 << 20;
constexpr size_t kMaxLogLines = 50000;
Result<SshdLog> parse_sshd_log(std::string_view text, uint32_t listener_pid, int year);

// What the log says of `addr` now.
struct PenaltyVerdict {
  enum class State { None, Expired, Active };
  State state = State::None;
  std::string penalty_class;            // of the latest evidence
  std::optional<int64_t> seconds_left;  // at least this long (a penalty that grows again is not logged)
  std::string evidence;                 // one clause: what was read, with its time; printable
};

// Bounds for lines without a time: written between the listener's start and
// the log's last write (mtime). Lines before `listener_start` are of an
// earlier sshd, whose memory is gone. A refusal proves a penalty active at
// its time; without the penalty's length (LogLevel INFO) it is taken as
// active until `max_seconds` (PerSourcePenalties max, 600 by default) after it.
struct PenaltyClock {
  int64_t now = 0;
  int64_t listener_start = 0;
  int64_t log_mtime = 0;
  int64_t max_seconds = 600;
};
PenaltyVerdict judge_penalty(const SshdLog& log, int family, const std::array<uint8_t, 16>& addr, const PenaltyClock& clock);

}  // namespace rsttrace::explain
