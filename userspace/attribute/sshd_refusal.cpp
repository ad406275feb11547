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

// Less than this from the client cannot reach authentication: the banner and
// KEXINIT alone take about 1.5 KB.
constexpr uint64_t kNoKexBytes = 1000;

// OpenSSH 9.8+ (srclimit.h): the status a pre-auth sshd-session exits with
// when its LoginGraceTime alarm fires; sshd's listener penalises it as grace-exceeded.
constexpr int kExitLoginGrace = 3;
// The shortest LoginGraceTime sshd takes (0 means none).
constexpr uint64_t kShortestGrace = kSecondNs;

}  // namespace

std::string penalty_class(const SeenConnection& seen, uint64_t login_grace_ns) {
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
  if (seen.server_closed_first() && lasted >= login_grace_ns) return "grace-exceeded";
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
  expiry.grace_seconds = lasted / kSecondNs;  // the alarm starts after fork (and exec): never before accept()
  // 9.8+ (sshd-session) sets the alarm to LoginGraceTime plus a random 0-4 s.
  expiry.jitter = seen.closer->comm == "sshd-session";
  expiry.least_seconds = expiry.jitter ? std::max<uint64_t>(1, expiry.grace_seconds > 3 ? expiry.grace_seconds - 3 : 1)
                                : expiry.grace_seconds;
  const int signal = seen.killed_by();
  const int status = seen.closer_exiting && !signal ? static_cast<int>((seen.closer_exit_code >> 8) & 0xff) : -1;
  if (status == kExitLoginGrace && seen.closer->comm == "sshd-session") {
    expiry.certain = true;
    expiry.evidence = "certain: " + closer + " exited with status 3, OpenSSH's EXIT_LOGIN_GRACE, " + describe_seconds(lasted) +
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
  expiry.evidence = "probable: " + closer + " " + how + " " + describe_seconds(lasted) + " after accept(), with " + received +
                    " from the client, too few to authenticate; only OpenSSH 9.8+'s sshd-session exit status (3) " +
                    "proves the grace alarm";
  return expiry;
}

std::string login_grace_words(const GraceExpiry& grace, const SshdLimitsSource* source) {
  const std::string jitter = grace.jitter ? ": OpenSSH 9.8+ adds up to 4 s of random jitter" : "";
  const std::string measured = grace.least_seconds == grace.grace_seconds
                                   ? std::to_string(grace.grace_seconds) + " s"
                                   : std::to_string(grace.least_seconds) + " to " + std::to_string(grace.grace_seconds) + " s";
  if (!source || !source->from_sshd || !source->limits.login_grace_time) return measured + jitter;
  // The alarm starts once the session's process runs (after fork and exec):
  // the close comes that much later than the configured time, never earlier.
  return std::to_string(source->limits.login_grace_time) + " s (sshd -T), closed " + std::to_string(grace.grace_seconds) +
         " s after accept()" + jitter;
}

namespace {

// "MaxStartups 3:50:6 (sshd -T)", or "MaxStartups 10:30:100, defaults (sshd -T not run: REASON)".
std::string configured(const std::string& setting, const SshdLimitsSource& source) {
  return source.from_sshd ? setting + " (sshd -T)" : setting + ", " + source.words();
}

std::string duration(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g s", value);
  return text;
}

// The configured penalty of a class, as penalty_class() names it.
std::string class_penalty(const std::string& name, const SourcePenalties& penalties) {
  std::string each;
  if (name.starts_with("crash")) each = duration(penalties.crash);
  else if (name == "grace-exceeded") each = duration(penalties.grace_exceeded);
  else if (name == "noauth") each = duration(penalties.noauth);
  else each = duration(penalties.noauth) + " (noauth) or " + duration(penalties.authfail) + " (authfail)";
  return each + " a connection, refused from " + duration(penalties.min);
}

}  // namespace

std::string listener_refusal_cause(const ListenerRefusal& refusal, const SshdLimitsSource& source) {
  const SshdLimits& limits = source.limits;
  const std::string open = std::to_string(refusal.open_connections) + " other connection" +
                           (refusal.open_connections == 1 ? " it had accepted was" : "s it had accepted were") + " open";
  const std::string startups = configured("MaxStartups " + limits.max_startups_text(), source);
  if (refusal.open_connections >= limits.max_startups_start)
    return "MaxStartups refused it: " + open + " against " + startups +
           (refusal.open_connections >= limits.max_startups_full
                ? ": full"
            : limits.max_startups_rate >= 100
                ? ": at or past its start, where sshd refuses every new one"
                : ": at or past its start, where sshd refuses " + std::to_string(limits.max_startups_rate) +
                      "% or more at random");
  if (source.from_sshd && !limits.penalties)
    // Fewer open than its start: some were accepted before rsttrace started, or PerSourceMaxStartups.
    return "MaxStartups refused it: " + open + " against " + startups +
           (limits.penalties_line ? "; PerSourcePenalties is off" : "; this sshd has no PerSourcePenalties (before OpenSSH 9.8)") +
           (limits.per_source_max_startups
                ? "; or PerSourceMaxStartups " + std::to_string(*limits.per_source_max_startups)
                : std::string()) +
           " (connections accepted before rsttrace started are not counted)";
  if (refusal.earlier.empty())
    return "MaxStartups or PerSourcePenalties refused it: " + open + " against " + startups +
           ", and rsttrace saw no earlier connection from " + refusal.source;
  // OpenSSH 9.8 brought both PerSourcePenalties and sshd-session: children
  // named plain sshd are an older sshd (9.2 on Debian 12), which has no penalties.
  const bool older_sshd = std::all_of(refusal.earlier.begin(), refusal.earlier.end(), [](const SeenConnection& seen) {
    return seen.closer && seen.closer->comm == "sshd";
  });
  if (older_sshd && !source.from_sshd)
    return "MaxStartups refused it: " + open + " against " + startups +
           " (its children are named sshd: an OpenSSH before 9.8, which has no PerSourcePenalties; MaxStartups must "
           "be set below its default start)";
  const SourcePenalties penalties = limits.penalties.value_or(SourcePenalties{});
  // Counted per class, oldest first, with how long before the refusal each ended.
  std::map<std::string, std::vector<const SeenConnection*>> by_class;
  // LoginGraceTime 0 is none: no connection exceeds it.
  const uint64_t grace_ns = limits.login_grace_time ? limits.login_grace_time * kSecondNs : UINT64_MAX;
  for (const SeenConnection& seen : refusal.earlier) by_class[penalty_class(seen, grace_ns)].push_back(&seen);
  std::string classes;
  for (const auto& [name, list] : by_class) {
    if (!classes.empty()) classes += "; ";
    // A class "none (...)" earns no penalty: nothing configured to quote.
    classes += name + (name.starts_with("none") ? "" : " (" + class_penalty(name, penalties) + ")") + ": " +
               std::to_string(list.size()) +
               " earlier connection" + (list.size() == 1 ? "" : "s") + " from " + refusal.source + " ended";
    const char* separator = " (";
    for (const SeenConnection* seen : list) {
      const uint64_t ago = refusal.refused_ns > seen->closed_ns ? refusal.refused_ns - seen->closed_ns : 0;
      classes += separator + describe_seconds(ago) + " before: " +
                 (seen->client_closed_first() ? "closed by the client"
                  : seen->server_closed_first() ? "closed by sshd"
                                                : "reset") +
                 " after " + describe_seconds(seen->closed_ns - seen->accepted_ns) + " with " +
                 std::to_string(seen->bytes_received) + (seen->bytes_received == 1 ? " byte" : " bytes") + " received";
      separator = "; ";
    }
    classes += ")";
  }
  return "PerSourcePenalties refused it (MaxStartups cannot have: " + open + ", fewer than the start of " + startups +
         "); sources counted per netblock: " +
         configured("PerSourceNetBlockSize " + std::to_string(limits.netblock4) + ":" + std::to_string(limits.netblock6),
                    source) +
         "; penalty " + classes;
}

}  // namespace rsttrace
