// decide_access on hostile hosts.allow/hosts.deny texts and pattern files.
// Input: allow NUL deny NUL /p0 NUL /p1 ... (pattern files, served by the
// loader); the first byte of allow also picks the client.
#include <optional>

#include "fuzz_input.h"
#include "provenance/hosts_access.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(data, size, 10);
  static const AccessClient kClients[] = {
      {"sshd", "127.0.0.2", "", "", "127.0.0.1", 22},
      {"sshd", "fd00:5eed::2", "client.example", "alice", "fd00:5eed::1", 2222},
      {"in.telnetd", "::ffff:10.1.2.3", "unknown", "", "", 0},
      {"sshd", "", "", "", "", 0},
  };
  const AccessClient& client = kClients[parts[0].empty() ? 0 : static_cast<uint8_t>(parts[0][0]) % 4];
  PatternFileLoader loader = [&parts](const std::string& path) -> std::optional<std::string> {
    // /p0 ... /p7; anything else cannot be read.
    if (path.size() == 3 && path[0] == '/' && path[1] == 'p' && path[2] >= '0' && path[2] <= '7')
      return parts[2 + (path[2] - '0')];
    return std::nullopt;
  };
  const AccessDecision decision = decide_access(parts[0], parts[1], client, "/etc/hosts.allow", "/etc/hosts.deny", loader);
  if (decision.rule && decision.rule->line <= 0) __builtin_trap();  // a deciding rule has a line
  return 0;
}
