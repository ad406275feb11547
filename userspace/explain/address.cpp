#include "explain/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace rsttrace::explain {
namespace {

Result<uint16_t> parse_port(std::string_view digits) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value == 0 || value > 65535)
    return Failure{"the port must be a number from 1 to 65535"};
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<ClientAddress> parse_client_address(std::string_view text) {
  if (text.empty() || text.size() > 64) return Failure{"not an IPv4 or IPv6 address"};
  std::string host(text);
  std::string_view port_text;
  bool bracketed = false;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Failure{"a '[' without its ']'"};
    host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Failure{"only ':PORT' may follow ']'"};
      port_text = rest.substr(1);
      if (port_text.empty()) return Failure{"the port must be a number from 1 to 65535"};
    }
    bracketed = true;
  } else if (const size_t colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    // One colon: ADDR:PORT (IPv6 needs brackets to carry a port).
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return Failure{"the port must be a number from 1 to 65535"};
  }
  ClientAddress client;
  if (!port_text.empty()) {
    const auto port = parse_port(port_text);
    if (!port) return Failure{port.reason()};
    client.port = *port;
  }
  in_addr v4{};
  in6_addr v6{};
  if (!bracketed && inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    client.family = 4;
    std::memcpy(client.addr.data(), &v4, 4);
    return client;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return Failure{"not an IPv4 or IPv6 address"};
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    client.family = 4;
    std::memcpy(client.addr.data(), v6.s6_addr + 12, 4);
  } else {
    client.family = 6;
    std::memcpy(client.addr.data(), v6.s6_addr, 16);
  }
  return client;
}

}  // namespace rsttrace::explain
