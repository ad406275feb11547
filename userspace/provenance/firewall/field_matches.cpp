#include "provenance/firewall/field_matches.h"

#include <arpa/inet.h>

#include <algorithm>

namespace rsttrace::firewall {

std::optional<long> small_number(std::string_view text, long max) {
  if (text.empty() || text.size() > 18) return std::nullopt;  // fits a long
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

Match address_matches(const std::string& pattern, int family, const std::array<uint8_t, 16>& addr) {
  std::string base = pattern;
  int prefix = family == 4 ? 32 : 128;
  std::array<uint8_t, 16> net{}, mask{};
  const size_t slash = pattern.find('/');
  if (slash != std::string::npos) {
    base = pattern.substr(0, slash);
    const std::string rest = pattern.substr(slash + 1);
    if (rest.find('.') != std::string::npos) {
      if (family != 4 || inet_pton(AF_INET, rest.c_str(), mask.data()) != 1) return Match::Maybe;
      prefix = -1;
    } else {
      const auto length = small_number(rest, family == 4 ? 32 : 128);
      if (!length) return Match::Maybe;
      prefix = static_cast<int>(*length);
    }
  }
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, base.c_str(), net.data()) != 1) {
    std::array<uint8_t, 16> other{};
    if (inet_pton(family == 4 ? AF_INET6 : AF_INET, base.c_str(), other.data()) == 1) return Match::No;
    return Match::Maybe;
  }
  const int bytes = family == 4 ? 4 : 16;
  if (prefix >= 0)
    for (int i = 0; i < bytes; ++i) {
      const int bits = std::clamp(prefix - i * 8, 0, 8);
      mask[i] = static_cast<uint8_t>(bits == 0 ? 0 : (0xff << (8 - bits)) & 0xff);
    }
  for (int i = 0; i < bytes; ++i)
    if ((net[i] & mask[i]) != (addr[i] & mask[i])) return Match::No;
  return Match::Yes;
}

Match port_matches(const std::string& spec, uint16_t port) {
  const size_t colon = spec.find(':');
  const std::string_view low_text = std::string_view(spec).substr(0, colon);
  const auto low = low_text.empty() && colon != std::string::npos ? std::optional<long>(0) : small_number(low_text, 65535);
  std::optional<long> high = low;
  if (colon != std::string::npos) {
    const std::string_view high_text = std::string_view(spec).substr(colon + 1);
    high = high_text.empty() ? std::optional<long>(65535) : small_number(high_text, 65535);
  }
  if (!low || !high) return Match::Maybe;
  return *low <= port && port <= *high ? Match::Yes : Match::No;
}

}  // namespace rsttrace::firewall
