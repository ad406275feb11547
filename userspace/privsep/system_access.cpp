#include "privsep/system_access.h"

#include <fcntl.h>
#include <unistd.h>

#include <regex>

#include "provenance/command.h"

namespace rsttrace {

std::optional<std::string> SystemAccess::read_file(const std::string& path, size_t max_bytes) {
  const int fd = open_read(path);
  if (fd < 0) return std::nullopt;
  std::string contents;
  char buffer[65536];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0 && contents.size() < max_bytes)
    contents.append(buffer, static_cast<size_t>(n));
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

std::optional<std::string> DirectAccess::run(const std::vector<std::string>& argv) { return capture_output(argv); }

int DirectAccess::open_read(const std::string& path) {
  return open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

bool broker_allows_command(const std::vector<std::string>& argv) {
  static const std::regex readers(
      "nft|(ip6?tables-(nft|legacy)-save)|fail2ban-client");
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
    static const std::regex socket("/proc/[0-9]+/root/.*");
    static const std::regex address("[0-9a-fA-F.:]+");
    return first == 0 && args.size() == 4 && args[0] == "-s" && std::regex_match(args[1], socket) &&
           args[1].find("..") == std::string::npos && args[2] == "banned" && std::regex_match(args[3], address);
  }
  return args == Args{"-c"};  // iptables-save flavours
}

bool broker_allows_path(const std::string& path) {
  if (path.find("/../") != std::string::npos || path.find("/./") != std::string::npos) return false;
  static const std::regex allowed(
      "/proc/[0-9]+/ns/(net|mnt)"
      "|/run/netns/[^/]+"
      "|/proc/[0-9]+/cmdline"
      "|(/proc/[0-9]+/root)?/etc/hosts\\.[^/]+");
  return std::regex_match(path, allowed) && !path.ends_with("/..");
}

}  // namespace rsttrace
