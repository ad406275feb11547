// The netlink dump's field encodings (nft_netlink_dump.cpp), read back:
// separated words, hex bytes ("-" for none), decimal numbers. Total.
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rsttrace::firewall::netlink_fields {

inline std::vector<std::string_view> split(std::string_view text, char separator, size_t max) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (parts.size() < max) {
    const size_t end = text.find(separator, pos);
    parts.push_back(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return parts;
}

inline int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "-" is the empty string; anything not hex, or longer than `max_bytes`, is nullopt.
inline std::optional<std::string> unhex(std::string_view text, size_t max_bytes = 256) {
  if (text == "-") return std::string();
  if (text.empty() || text.size() % 2 || text.size() / 2 > max_bytes) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    const int high = nibble(text[i]), low = nibble(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
  }
  return out;
}

template <typename T>
std::optional<T> number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace rsttrace::firewall::netlink_fields
