#include "attribute/sshd_refusal.h"

#include <string.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "text/escape.h"

namespace rsttrace {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
// sshd's defaults: MaxStartups 10:30:100, LoginGraceTime 120.
constexpr size_t kMaxStartupsStart = 10;
constexpr uint64_t kLoginGraceTime = 120 * kSecond;
// Less than this from the client cannot reach authentication: the banner and
// KEXINIT alone take about 1.5 KB.
constexpr uint64_t kNoKexBytes = 1000;

std::string seconds(uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(ns) / kSecond);
  return text;
}

}  // namespace

std::string penalty_class(const SeenConnection& seen) {
  if (const int signal = seen.killed_by()) {
    const char* name = sigabbrev_np(signal);
    return std::string("crash (its sshd was killed by SIG") + (name ? name : "?") + ")";
  }
  const uint64_t lasted = seen.closed_ns > seen.accepted_ns ? seen.closed_ns - seen.accepted_ns : 0;
  if (seen.server_closed_first() && lasted >= kLoginGraceTime) return "grace-exceeded";
  if (seen.bytes_received < kNoKexBytes) return "noauth";
  return "noauth or authfail";
}

std::string listener_refusal_cause(const ListenerRefusal& refusal) {
  const std::string open = std::to_string(refusal.open_connections) + " other connection" +
                           (refusal.open_connections == 1 ? " it had accepted was" : "s it had accepted were") + " open";
  if (refusal.open_connections >= kMaxStartupsStart)
    return "MaxStartups refused it: " + open + ", at least its default start of " +
           std::to_string(kMaxStartupsStart) + " unauthenticated";
  if (refusal.earlier.empty())
    return "MaxStartups or PerSourcePenalties refused it: " + open + ", and rsttrace saw no earlier connection from " +
           refusal.source;
  // OpenSSH 9.8 brought both PerSourcePenalties and sshd-session: children
  // named plain sshd are an older sshd (9.2 on Debian 12), which has no penalties.
  const bool older_sshd = std::all_of(refusal.earlier.begin(), refusal.earlier.end(), [](const SeenConnection& seen) {
    return seen.closer && seen.closer->comm == "sshd";
  });
  if (older_sshd)
    return "MaxStartups refused it: " + open + " (its children are named sshd: an OpenSSH before 9.8, which has " +
           "no PerSourcePenalties; MaxStartups must be set below its default start of " +
           std::to_string(kMaxStartupsStart) + ")";
  // Counted per class, oldest first, with how long before the refusal each ended.
  std::map<std::string, std::vector<const SeenConnection*>> by_class;
  for (const SeenConnection& seen : refusal.earlier) by_class[penalty_class(seen)].push_back(&seen);
  std::string classes;
  for (const auto& [name, list] : by_class) {
    if (!classes.empty()) classes += "; ";
    classes += name + ": " + std::to_string(list.size()) + " earlier connection" + (list.size() == 1 ? "" : "s") +
               " from " + refusal.source + " ended";
    const char* separator = " (";
    for (const SeenConnection* seen : list) {
      const uint64_t ago = refusal.refused_ns > seen->closed_ns ? refusal.refused_ns - seen->closed_ns : 0;
      classes += separator + seconds(ago) + " before: " +
                 (seen->client_closed_first() ? "closed by the client"
                  : seen->server_closed_first() ? "closed by sshd"
                                                : "reset") +
                 " after " + seconds(seen->closed_ns - seen->accepted_ns) + " with " +
                 std::to_string(seen->bytes_received) + (seen->bytes_received == 1 ? " byte" : " bytes") + " received";
      separator = "; ";
    }
    classes += ")";
  }
  return "PerSourcePenalties refused it (MaxStartups cannot have: " + open + ", fewer than its default start of " +
         std::to_string(kMaxStartupsStart) + "); penalty " + classes;
}

}  // namespace rsttrace
