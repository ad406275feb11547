#include "provenance/firewall/field_matches.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

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

std::optional<uint16_t> service_port(std::string_view name) {
  static constexpr std::pair<std::string_view, uint16_t> kServices[] = {
      {"ssh", 22}, {"ftp", 21}, {"telnet", 23}, {"smtp", 25}, {"domain", 53}, {"http", 80},
      {"pop3", 110}, {"imap2", 143}, {"imap", 143}, {"https", 443}, {"submission", 587},
      {"imaps", 993}, {"pop3s", 995},
  };
  for (const auto& [service, port] : kServices)
    if (service == name) return port;
  return std::nullopt;
}

namespace {
std::optional<long> port_number(std::string_view text) {
  if (const auto number = small_number(text, 65535)) return number;
  if (const auto port = service_port(text)) return *port;
  return std::nullopt;
}
}  // namespace

Match port_matches(const std::string& spec, uint16_t port) {
  const size_t colon = spec.find(':');
  const std::string_view low_text = std::string_view(spec).substr(0, colon);
  const auto low = low_text.empty() && colon != std::string::npos ? std::optional<long>(0) : port_number(low_text);
  std::optional<long> high = low;
  if (colon != std::string::npos) {
    const std::string_view high_text = std::string_view(spec).substr(colon + 1);
    high = high_text.empty() ? std::optional<long>(65535) : port_number(high_text);
  }
  if (!low || !high) return Match::Maybe;
  return *low <= port && port <= *high ? Match::Yes : Match::No;
}

}  // namespace rsttrace::firewall

namespace rsttrace::firewall {

std::optional<uint32_t> u32_number(std::string_view text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    if (text.size() > 10) return std::nullopt;
    uint32_t value = 0;
    for (char c : text.substr(2)) {
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (digit < 0) return std::nullopt;
      value = value << 4 | static_cast<uint32_t>(digit);
    }
    return value;
  }
  const auto value = small_number(text, 0xffffffffL);
  if (!value) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

Match address_range_matches(const std::string& range, int family, const std::array<uint8_t, 16>& addr) {
  const size_t dash = range.find('-');
  const std::string low_text = range.substr(0, dash), high_text = dash == std::string::npos ? low_text : range.substr(dash + 1);
  std::array<uint8_t, 16> low{}, high{};
  const int af = family == 4 ? AF_INET : AF_INET6;
  if (inet_pton(af, low_text.c_str(), low.data()) != 1 || inet_pton(af, high_text.c_str(), high.data()) != 1) {
    std::array<uint8_t, 16> other{};
    if (inet_pton(family == 4 ? AF_INET6 : AF_INET, low_text.c_str(), other.data()) == 1) return Match::No;
    return Match::Maybe;
  }
  const size_t bytes = family == 4 ? 4 : 16;
  const auto less_or_equal = [bytes](const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b) {
    return !std::lexicographical_compare(b.begin(), b.begin() + bytes, a.begin(), a.begin() + bytes);
  };
  return match_of(less_or_equal(low, addr) && less_or_equal(addr, high));
}

}  // namespace rsttrace::firewall
