// Which line of /etc/hosts.allow or /etc/hosts.deny decided a connection,
// matched like Debian's libwrap 7.6.q does (hosts_access(5), with the
// extended hosts_options(5) language Debian builds in). Pure: the file texts
// come from the caller; pattern files (`/path` patterns) only through a loader.
//
// rsttrace does not resolve host names, netgroups or ident users, so some
// patterns cannot be decided. Such a pattern makes its line "maybe match":
// the line is treated as not matching, a note says why, and the decision is
// marked uncertain, because libwrap may have stopped on that line instead.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attribute/blockers.h"

namespace rsttrace {

// WrapperRule: attribute/blockers.h (plain data the report carries).

struct AccessClient {
  std::string daemon;          // e.g. "sshd" (argv[0] basename of the server)
  std::string address;         // "127.0.0.2" or "fd00:5eed::2" (::ffff:a.b.c.d is matched as a.b.c.d)
  std::string hostname;        // "" unknown: host name patterns cannot be decided
  std::string user;            // "" unknown: user@host patterns cannot be decided (except ALL@)
  std::string server_address;  // "" unknown: the host part of daemon@host patterns
  uint16_t server_port = 0;    // 0 unknown: Debian matches port numbers in daemon lists
};

struct AccessDecision {
  bool allowed = true;
  std::optional<WrapperRule> rule;  // none: no line matched, access granted by default
  bool certain = true;  // false: an earlier line maybe matched, or the rule's options depend on a command
  std::vector<std::string> notes;
  std::vector<std::string> option_notes;  // what the matched rule's options did (twist, spawn, aclexec...), also in notes
};

// Contents of the file a `/path` pattern names; nullopt when it cannot be read
// (libwrap then treats the pattern as matching nothing).
using PatternFileLoader = std::function<std::optional<std::string>(const std::string& path)>;

// libwrap's order: the first matching line in hosts.allow grants; else the
// first matching line in hosts.deny denies; else access is granted. The
// matched line's options can still turn the verdict (allow, deny, twist, a
// bad option). Without a loader, `/path` patterns cannot be decided.
AccessDecision decide_access(std::string_view allow_text, std::string_view deny_text, const AccessClient& client,
                             std::string allow_name = "/etc/hosts.allow",
                             std::string deny_name = "/etc/hosts.deny",
                             const PatternFileLoader& load_pattern_file = {});

// Convenience: reads <root>/etc/hosts.allow, <root>/etc/hosts.deny and pattern
// files below <root> (e.g. root "/proc/812/root" for the daemon's own view).
// A missing file reads as empty, like libwrap treats it.
// read_file: how a file is read (default: directly; rsttrace's broker once privileges are dropped).
AccessDecision decide_access_from_files(const AccessClient& client, const std::string& root = "",
                                        const PatternFileLoader& read_file = {});

}  // namespace rsttrace
