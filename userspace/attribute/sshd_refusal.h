// Why sshd's listener refused a connection it had just accepted: MaxStartups
// or PerSourcePenalties (OpenSSH 9.8+), from the kernel's history of the
// listener's and the source's connections (connection_history.h). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attribute/connection_history.h"
#include "attribute/sshd_limits.h"

namespace rsttrace {

struct ListenerRefusal {
  size_t open_connections = 0;           // accepted by the listener, open at the refusal (this one aside)
  std::vector<SeenConnection> earlier;   // from the same address, ended in the penalty window before it
  uint64_t refused_ns = 0;               // when the listener accepted the refused one
  std::string source;                    // the client's address, as text
  uint32_t listener_pid = 0;             // whose `sshd -T` gives the limits (provenance/enrich.h)
  std::string said_before;               // the detail before the cause, re-rendered once the limits are in
};

// The penalty class sshd gives the way `seen` ended, from its kernel evidence
// ("crash (killed by SIGSEGV)", "grace-exceeded", "noauth", "noauth or authfail").
// login_grace_ns: sshd's LoginGraceTime (its default, 120 s, unless sshd -T said otherwise).
std::string penalty_class(const SeenConnection& seen, uint64_t login_grace_ns = 120'000'000'000ULL);

// Whether sshd's LoginGraceTime ended `seen` (sshd closed it first, its
// client had not authenticated), and how sure the kernel evidence makes it.
struct GraceExpiry {
  // The configured LoginGraceTime lies in [least_seconds, grace_seconds]: the
  // time from accept() to the close in whole seconds, less OpenSSH 9.8+'s
  // random jitter of up to 4 s (sshd-session adds it to the alarm).
  uint64_t grace_seconds = 0;
  uint64_t least_seconds = 0;
  bool jitter = false;         // the closer is OpenSSH 9.8+'s sshd-session
  bool certain = false;        // the closer's exit status is OpenSSH 9.8+'s EXIT_LOGIN_GRACE
  std::string evidence;        // "certain: ..." or "probable: ..., <why not certain>"
};
std::optional<GraceExpiry> login_grace_expiry(const SeenConnection& seen);

// A LoginGraceTime line, re-rendered once the listener's own `sshd -T` is in
// (provenance/enrich.cpp): the detail is said_before + login_grace_words() + said_after.
struct LoginGraceNote {
  GraceExpiry grace;
  uint32_t listener_pid = 0;  // whose `sshd -T` gives LoginGraceTime (0: unknown)
  std::string said_before, said_after;
};

// "4 s (sshd -T), closed 6 s after accept()", else what the kernel's times bound:
// "4 s", "1 to 4 s: OpenSSH 9.8+ adds up to 4 s of random jitter". `source`: null
// before provenance, else the listener's limits (from sshd -T, or why not).
std::string login_grace_words(const GraceExpiry& grace, const SshdLimitsSource* source);

// The sub-cause in words: MaxStartups, PerSourcePenalties with the class and
// the earlier connections that earned it, or both when the evidence cannot tell;
// against the limits of `source` (sshd -T, or the defaults and why), named in the words.
std::string listener_refusal_cause(const ListenerRefusal& refusal, const SshdLimitsSource& source);

}  // namespace rsttrace
