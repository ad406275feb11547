#include "provenance/hosts_access/tokens.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace rsttrace::hosts_access {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool wildcard_match(std::string_view s, std::string_view pattern) {
  size_t si = 0, pi = 0, star = std::string_view::npos, resume = 0;
  while (si < s.size()) {
    if (pi < pattern.size() && (pattern[pi] == '?' || iequals(pattern.substr(pi, 1), s.substr(si, 1)))) {
      ++si, ++pi;
    } else if (pi < pattern.size() && pattern[pi] == '*') {
      star = pi++, resume = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1, si = ++resume;
    } else {
      return false;
    }
  }
  while (pi < pattern.size() && pattern[pi] == '*') ++pi;
  return pi == pattern.size();
}

std::optional<std::pair<std::string_view, std::string_view>> split_at(std::string_view s, char delimiter) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') ++depth;
    else if (s[i] == ']') --depth;
    else if (depth == 0 && s[i] == delimiter) return std::pair{s.substr(0, i), s.substr(i + 1)};
  }
  return std::nullopt;
}

std::vector<std::string_view> tokens_of(std::string_view list, std::string_view separators) {
  std::vector<std::string_view> tokens;
  size_t pos = 0;
  while ((pos = list.find_first_not_of(separators, pos)) != std::string_view::npos) {
    size_t end = list.find_first_of(separators, pos);
    if (end == std::string_view::npos) end = list.size();
    tokens.push_back(list.substr(pos, end - pos));
    pos = end;
  }
  return tokens;
}

std::optional<std::array<uint8_t, 4>> parse_v4(std::string_view s) {
  std::array<uint8_t, 4> out{};
  if (inet_pton(AF_INET, std::string(s).c_str(), out.data()) != 1) return std::nullopt;
  return out;
}
std::optional<std::array<uint8_t, 16>> parse_v6(std::string_view s) {
  std::array<uint8_t, 16> out{};
  if (inet_pton(AF_INET6, std::string(s).c_str(), out.data()) != 1) return std::nullopt;
  return out;
}
uint32_t v4_number(const std::array<uint8_t, 4>& a) {
  return (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
}

std::vector<LogicalLine> logical_lines(std::string_view text) {
  std::vector<LogicalLine> lines;
  int number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    LogicalLine line;
    line.first = number + 1;
    line.terminated = false;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      ++number;
      if (end == std::string_view::npos) {
        line.text += text.substr(pos);
        pos = text.size();
        break;
      }
      std::string_view piece = text.substr(pos, end - pos);
      pos = end + 1;
      if (!piece.empty() && piece.back() == '\\') {
        line.text += piece.substr(0, piece.size() - 1);
        continue;
      }
      line.text += piece;
      line.terminated = true;
      break;
    }
    line.last = number;
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace rsttrace::hosts_access
