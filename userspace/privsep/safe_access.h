// The two privileged operations whose target a local user could otherwise
// shape (issue 13), done so that nothing from an unprivileged process steers
// them:
//  - opening a file of another process's root (its /etc/hosts.*), and
//  - asking fail2ban which jail banned an address.
// Both run in the broker (as root), right before the operation.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace rsttrace {

// fail2ban's fixed control socket (/var/run is a link to /run on Debian).
inline constexpr const char* kFail2banSocket = "/run/fail2ban/fail2ban.sock";

// Inode of this process's user namespace: "the initial one" for rsttrace.
uint32_t own_user_ns();

// Whether the kernel has openat2() (5.6+), without which a process's files are not opened.
bool openat2_supported();

// A read-only descriptor for `relative` (e.g. "etc/hosts.deny") below the
// root of process `pid`, or -errno. Resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS), accepted only if a regular file; opened with the
// process's own uid and gid (no capabilities) when it lives in another user
// namespace. pid 0: this process's own root.
int open_process_file(pid_t pid, const std::string& relative);

// The real uid and gid of the process whose /proc/PID directory is proc_dir.
bool process_ids(int proc_dir, uid_t& uid, gid_t& gid);

// nullptr when `path` (absolute, plain: no "..", no symlink) below directory
// `root` is a regular file owned by root and writable by root alone, reached
// through directories owned by root and writable by root alone (or sticky,
// like /tmp), and, with `expected`, that very inode; else why not (a fixed
// text). Async-signal-safe: used in a child between fork() and exec.
const char* root_owned_path_problem(int root, const char* path, const struct stat* expected);

// `fail2ban-client -s kFail2banSocket banned ADDRESS`'s output, asked only of
// a fail2ban whose socket is reached through root-owned, not group- or
// world-writable directories and whose peer is uid 0 (SO_PEERCRED); nullopt otherwise.
std::optional<std::string> fail2ban_banned(const std::string& address);

// `fail2ban-client -s kFail2banSocket get JAIL banip --with-time` of the same
// checked fail2ban (each banned address with its ban's start, length and end),
// for `rsttrace explain` (root, one-shot); not served by the broker.
std::optional<std::string> fail2ban_ban_times(const std::string& jail);

}  // namespace rsttrace
