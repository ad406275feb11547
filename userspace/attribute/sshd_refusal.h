// Why sshd's listener refused a connection it had just accepted: MaxStartups
// or PerSourcePenalties (OpenSSH 9.8+), from the kernel's history of the
// listener's and the source's connections (connection_history.h). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attribute/connection_history.h"

namespace rsttrace {

struct ListenerRefusal {
  size_t open_connections = 0;           // accepted by the listener, open at the refusal (this one aside)
  std::vector<SeenConnection> earlier;   // from the same address, ended in the penalty window before it
  uint64_t refused_ns = 0;               // when the listener accepted the refused one
  std::string source;                    // the client's address, as text
};

// The penalty class sshd gives the way `seen` ended, from its kernel evidence
// ("crash (killed by SIGSEGV)", "grace-exceeded", "noauth", "noauth or authfail").
std::string penalty_class(const SeenConnection& seen);

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

// The sub-cause in words: MaxStartups, PerSourcePenalties with the class and
// the earlier connections that earned it, or both when the evidence cannot tell.
std::string listener_refusal_cause(const ListenerRefusal& refusal);

}  // namespace rsttrace
