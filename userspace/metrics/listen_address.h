// Where --metrics listens: an IP literal and a port, loopback unless the
// operator asked for more.
#pragma once

#include <cstdint>
#include <string>

namespace rsttrace {

struct ListenAddress {
  std::string host;  // an IP literal, without brackets
  uint16_t port = 0;
  bool loopback = false;
  std::string text() const;  // "127.0.0.1:9822", "[::1]:9822"
};

// "127.0.0.1:9822", "[::1]:9822", "localhost:9822", "0.0.0.0:9822"; throws Error.
// A non-loopback address needs allow_remote.
ListenAddress parse_listen_address(const std::string& text, bool allow_remote);

}  // namespace rsttrace
