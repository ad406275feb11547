#include "privsep/system_access.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <regex>

#include "privsep/safe_access.h"
#include "provenance/command.h"

namespace rsttrace {

std::optional<std::string> SystemAccess::read_file(const std::string& path, size_t max_bytes) {
  const int fd = open_read(path);
  if (fd < 0) return std::nullopt;
  std::string contents;
  char buffer[65536];
  ssize_t n = 0;
  while (contents.size() < max_bytes && (n = read(fd, buffer, sizeof(buffer))) > 0)
    contents.append(buffer, std::min(static_cast<size_t>(n), max_bytes - contents.size()));
  close(fd);
  if (n < 0) return std::nullopt;
  return contents;
}

std::optional<struct stat> SystemAccess::stat_file(const std::string& path) {
  const int fd = open_read(path);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  const bool ok = fstat(fd, &st) == 0;
  close(fd);
  return ok ? std::optional<struct stat>(st) : std::nullopt;
}

DirectAccess::DirectAccess() : cancel_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

DirectAccess::~DirectAccess() {
  if (cancel_fd_ >= 0) close(cancel_fd_);
}

void DirectAccess::cancel() {
  const uint64_t one = 1;
  if (cancel_fd_ >= 0 && write(cancel_fd_, &one, sizeof(one)) < 0) {
    // Already written to the limit: cancelled all the same.
  }
}

std::optional<std::string> DirectAccess::run(const std::vector<std::string>& argv) {
  // fail2ban is asked only after its socket and its peer are checked, here,
  // right before fail2ban-client runs (in the broker once privileges are dropped).
  if (!argv.empty() && argv[0] == "fail2ban-client") {
    if (argv.size() != 5 || argv[1] != "-s" || argv[2] != kFail2banSocket || argv[3] != "banned") return std::nullopt;
    return fail2ban_banned(argv[4]);
  }
  // nf_tables over netlink (provenance/firewall/nft_netlink.h): this very
  // binary, by the broker's own /proc entry, never a path from the request.
  if (argv.size() == 4 && argv[0] == "nsenter" && argv[3] == kNftNetlinkDump)
    return capture_output({"nsenter", argv[1], "--", "/proc/" + std::to_string(getpid()) + "/exe", kNftNetlinkDump},
                          std::chrono::seconds(5), -1, cancel_fd_);
  int status = 0;
  auto out = capture_output(argv, std::chrono::seconds(5), -1, cancel_fd_, &status);
  // A reader that crashed (Debian 12's nft on a set written by nft 1.1) is said, not taken for an empty ruleset.
  if (!out && WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) return killed_by_signal_output(WTERMSIG(status));
  return out;
}

int DirectAccess::open_read(const std::string& path) {
  // A process's files (/proc/PID/root/...) and the host's hosts files: never
  // a plain open(), which would follow the process's symlinks out of its root.
  static const std::regex in_process_root("/proc/([1-9][0-9]*)/root/(.+)");
  std::smatch match;
  if (std::regex_match(path, match, in_process_root)) {
    pid_t pid = 0;
    const std::string digits = match[1].str();
    if (std::from_chars(digits.data(), digits.data() + digits.size(), pid).ec != std::errc()) return -1;
    const int fd = open_process_file(pid, match[2].str());
    return fd >= 0 ? fd : -1;
  }
  if (path.starts_with("/etc/")) {
    const int fd = open_process_file(0, path.substr(1));
    return fd >= 0 ? fd : -1;
  }
  return open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

bool broker_allows_command(const std::vector<std::string>& argv) {
  static const std::regex readers(
      "nft|(ip6?tables-(nft|legacy)-save)|ipset|fail2ban-client|nft-netlink-dump");
  size_t first = 0;
  if (!argv.empty() && argv[0] == "nsenter") {
    static const std::regex net("--net=(/proc/[0-9]+/ns/net|/run/netns/[^/]+)");
    if (argv.size() < 4 || !std::regex_match(argv[1], net) || argv[2] != "--") return false;
    first = 3;
  }
  if (argv.size() <= first || !std::regex_match(argv[first], readers)) return false;
  const std::string& program = argv[first];
  const std::vector<std::string> args(argv.begin() + static_cast<long>(first) + 1, argv.end());
  using Args = std::vector<std::string>;
  if (program == "nft") return args == Args{"-j", "-a", "list", "ruleset"} || args == Args{"-a", "list", "ruleset"};
  if (program == "fail2ban-client") {
    // Only fail2ban's fixed socket in the broker's own mount namespace: a
    // socket path from a process (its command line, its root) once let its
    // owner answer fail2ban-client with a pickle that ran as root.
    static const std::regex address("[0-9a-fA-F.:]{1,45}");
    return first == 0 && args.size() == 4 && args[0] == "-s" && args[1] == kFail2banSocket && args[2] == "banned" &&
           std::regex_match(args[3], address);
  }
  if (program == "ipset") return args == Args{"save"};
  if (program == kNftNetlinkDump) return first == 3 && args.empty();
  return args == Args{"-c"};  // iptables-save flavours
}

bool broker_allows_path(const std::string& path) {
  // No command lines (they steered the fail2ban socket), no "." or ".."
  // anywhere, and hosts files only by name: those are opened inside the
  // process's root (open_process_file), as its user when it has a user namespace of its own.
  if (path.find("/.") != std::string::npos) return false;
  static const std::regex allowed(
      "/proc/[1-9][0-9]*/ns/(net|mnt|user)"
      "|/run/netns/[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*"
      "|(/proc/[1-9][0-9]*/root)?/etc/hosts\\.[A-Za-z0-9_.-]+"
      "|(/proc/[1-9][0-9]*/root)?/etc/ufw/user6?\\.rules"
      // sshd's log (explain: PerSourcePenalties), opened inside its root. Not its standard
      // error (/proc/PID/fd/2): a magic link the process points anywhere; explain reads it as root
      // for a root-owned listener only, never through the broker.
      "|/proc/[1-9][0-9]*/root/var/log/auth\\.log"
      "|(/proc/[1-9][0-9]*/root)?/etc/firewalld/(zones|policies)/[A-Za-z0-9_-]{1,64}\\.xml");
  return std::regex_match(path, allowed);
}

}  // namespace rsttrace
