// Listening sockets as /proc/net/tcp and /proc/net/tcp6 list them (read by
// explain/probe.cpp in the namespace it entered). Pure; unit-tested and fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rsttrace::explain {

struct ListeningSocket {
  int family = 4;
  std::array<uint8_t, 16> addr{};  // network order
  uint16_t port = 0;
  uint32_t accept_queue = 0;  // a listener's rx_queue column: connections waiting to be accepted
  uint64_t inode = 0;
};

// The LISTEN lines of one file (family 4: tcp, 6: tcp6); other lines and
// malformed ones are skipped. At most 100000 sockets.
std::vector<ListeningSocket> parse_proc_net_tcp(const std::string& text, int family);

}  // namespace rsttrace::explain
