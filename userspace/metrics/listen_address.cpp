#include "metrics/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

#include "error.h"

namespace rsttrace {

std::string ListenAddress::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(const std::string& text, bool allow_remote) {
  const auto bad = [&](const std::string& why) { return failed("use", "--metrics " + text, why); };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) throw bad("expected ADDRESS:PORT, e.g. 127.0.0.1:9822");
  ListenAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']')
    address.host = address.host.substr(1, address.host.size() - 2);
  if (address.host == "localhost") address.host = "127.0.0.1";
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    throw bad("the port must be a number from 1 to 65535");
  address.port = static_cast<uint16_t>(value);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, address.host.c_str(), &v4) == 1)
    address.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  else if (inet_pton(AF_INET6, address.host.c_str(), &v6) == 1)
    address.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  else
    throw bad("the address must be an IP address (or localhost)");
  if (!address.loopback && !allow_remote)
    throw bad("not a loopback address; metrics reveal who is being blocked, so add --metrics-allow-remote to serve them "
              "beyond this host");
  return address;
}

}  // namespace rsttrace
