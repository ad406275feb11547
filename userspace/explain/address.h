// The client address `rsttrace explain` is asked about: IPv4 or IPv6, with or
// without a source port (ADDR, ADDR:PORT, [V6], [V6]:PORT). Pure; unit-tested.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "error.h"

namespace rsttrace::explain {

struct ClientAddress {
  int family = 4;                   // 4 or 6; ::ffff:a.b.c.d is IPv4, as event lines report it
  std::array<uint8_t, 16> addr{};   // network order, the first 4 bytes for IPv4
  uint16_t port = 0;                // 0: not given (any source port)
};

// Failure reasons are one clause ("not an IPv4 or IPv6 address").
Result<ClientAddress> parse_client_address(std::string_view text);

}  // namespace rsttrace::explain
