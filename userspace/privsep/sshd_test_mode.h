// `sshd -T` of a listening sshd, run by the broker as root in that sshd's own
// root and mount namespace, so that its verdicts can quote its configured
// MaxStartups, PerSourcePenalties and netblock size (attribute/sshd_limits.h).
// Running a program as root on behalf of a process someone else may have
// started is the broker's riskiest operation: the rules (docs/security.md,
// "sshd -T") are enforced here, right before the run, never by the collector.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "error.h"

namespace rsttrace {

// The configuration file a listener was started with: the `-f` argument of
// its command line (or of its process title, "sshd: /usr/sbin/sshd -D -f
// /etc/x [listener] 0 of 10-100 startups"), only when it is an absolute plain
// path (no "..", ".", "//", spaces or unusual characters); else "" (sshd's
// default). `refused` is set when a -f was there but not used. Pure.
std::string sshd_config_argument(std::string_view cmdline, bool* refused = nullptr);

// `sshd -T [-f CONFIG]`'s standard output for listener `pid`, or why it was
// not run or failed: refused unless the listener runs as root in the initial
// user namespace from a root-owned, not group/other-writable regular file,
// reached through root's own directories inside its root. The child runs that
// very file (execveat of the descriptor opened from /proc/PID/exe), chrooted
// into the listener's root after joining its mount namespace, with an empty
// environment, no_new_privs, stdin /dev/null, no other descriptors, RLIMIT_CPU
// and RLIMIT_AS; its output is capped at 64 KiB and it is killed after 2 s
// (or at once when cancel_fd becomes readable).
Result<std::string> run_sshd_test_mode(pid_t pid, int cancel_fd = -1);

// run_sshd_test_mode() at most once a minute per listener: the answer (output
// or failure) is kept per pid and reused while the listener is the same
// process (start time and executable inode) and a minute has not passed.
class SshdTestRuns {
 public:
  Result<std::string> output(pid_t pid, int cancel_fd = -1);

 private:
  struct Identity {
    uint64_t start_ticks = 0;
    uint64_t exe_dev = 0, exe_ino = 0;
    bool operator==(const Identity&) const = default;
  };
  struct Entry {
    Identity identity;
    uint64_t run_ns = 0;  // CLOCK_MONOTONIC
    Result<std::string> answer = Failure{"not run"};
  };
  static constexpr size_t kMaxEntries = 256;
  std::map<pid_t, Entry> entries_;
};

}  // namespace rsttrace
