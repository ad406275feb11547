#include "attribute/sshd_refusal.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "attribute/describe.h"
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

// OpenSSH 9.8+ (srclimit.h): the status a pre-auth sshd-session exits with
// when its LoginGraceTime alarm fires; sshd's listener penalises it as grace-exceeded.
constexpr int kExitLoginGrace = 3;
// The shortest LoginGraceTime sshd takes (0 means none).
constexpr uint64_t kShortestGrace = kSecond;

std::string seconds(uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(ns) / kSecond);
  return text;
}

}  // namespace

std::string penalty_class(const SeenConnection& seen) {
  if (const int signal = seen.killed_by()) {
    const char* name = sigabbrev_np(signal);
    const std::string killed = std::string("its sshd was killed by SIG") + (name ? name : "?");
    // OpenSSH's signal_is_crash(): only these signals earn the crash penalty.
    static const int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGTRAP, SIGSYS, SIGFPE, SIGILL, SIGABRT};
    if (std::find(std::begin(kCrashSignals), std::end(kCrashSignals), signal) != std::end(kCrashSignals))
      return "crash (" + killed + ")";
    return "none (" + killed + ", which OpenSSH does not count as a crash)";
  }
  const uint64_t lasted = seen.closed_ns > seen.accepted_ns ? seen.closed_ns - seen.accepted_ns : 0;
  if (seen.server_closed_first() && lasted >= kLoginGraceTime) return "grace-exceeded";
  if (const auto grace = login_grace_expiry(seen); grace && grace->certain) return "grace-exceeded";
  if (seen.bytes_received < kNoKexBytes) return "noauth";
  return "noauth or authfail";
}

std::optional<GraceExpiry> login_grace_expiry(const SeenConnection& seen) {
  if (!seen.closer || !seen.server_closed_first() || seen.closed_ns < seen.accepted_ns) return std::nullopt;
  const uint64_t lasted = seen.closed_ns - seen.accepted_ns;
  // A client that sent less than a key exchange cannot have authenticated;
  // one that waited less than a second cannot have met any grace time.
  if (lasted < kShortestGrace || seen.bytes_received >= kNoKexBytes) return std::nullopt;
  const std::string closer = process_text(*seen.closer);
  const std::string received = std::to_string(seen.bytes_received) + (seen.bytes_received == 1 ? " byte" : " bytes");
  GraceExpiry expiry;
  expiry.grace_seconds = lasted / kSecond;  // the alarm starts after fork (and exec): never before accept()
  // 9.8+ (sshd-session) sets the alarm to LoginGraceTime plus a random 0-4 s.
  expiry.jitter = seen.closer->comm == "sshd-session";
  expiry.least_seconds = expiry.jitter ? std::max<uint64_t>(1, expiry.grace_seconds > 3 ? expiry.grace_seconds - 3 : 1)
                                : expiry.grace_seconds;
  const int signal = seen.killed_by();
  const int status = seen.closer_exiting && !signal ? static_cast<int>((seen.closer_exit_code >> 8) & 0xff) : -1;
  if (status == kExitLoginGrace && seen.closer->comm == "sshd-session") {
    expiry.certain = true;
    expiry.evidence = "certain: " + closer + " exited with status 3, OpenSSH's EXIT_LOGIN_GRACE, " + seconds(lasted) +
                      " after accept(), with " + received + " from the client";
    return expiry;
  }
  // Before 9.8 the grace alarm exits 1 (sigdie(), as sshd's other fatal
  // signal handlers do; fatal() exits 255); its SIGTERM to the session's
  // other process may be the last close instead.
  std::string how;
  if (status == 1)
    how = "exited (status 1)";
  else if (signal == SIGTERM)
    how = "was killed by SIGTERM (sshd's grace alarm signals the session's processes so)";
  else
    return std::nullopt;  // another status, another signal, or closed without exiting: not the alarm
  expiry.evidence = "probable: " + closer + " " + how + " " + seconds(lasted) + " after accept(), with " + received +
                    " from the client, too few to authenticate; only OpenSSH 9.8+'s sshd-session exit status (3) " +
                    "proves the grace alarm";
  return expiry;
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
