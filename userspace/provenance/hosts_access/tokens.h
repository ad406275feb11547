// The text of hosts.allow, hosts.deny and pattern files as libwrap reads it:
// logical lines, tokens, case-blind comparisons, wildcards and addresses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rsttrace::hosts_access {

constexpr std::string_view kBlanks = " \t\r\n";

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

// Debian's match_pattern_ylo: `*` any run, `?` one character, no case.
bool wildcard_match(std::string_view s, std::string_view pattern);

// libwrap's split_at: the first `delimiter` outside [brackets], so that
// `[fd00::]/64` survives the split of a rule at its colons.
std::optional<std::pair<std::string_view, std::string_view>> split_at(std::string_view s, char delimiter);

// The words of `list` between any of `separators` (views into `list`).
std::vector<std::string_view> tokens_of(std::string_view list, std::string_view separators);

std::optional<std::array<uint8_t, 4>> parse_v4(std::string_view s);
std::optional<std::array<uint8_t, 16>> parse_v6(std::string_view s);
uint32_t v4_number(const std::array<uint8_t, 4>& a);

struct LogicalLine {
  int first = 0, last = 0;
  std::string text;
  bool terminated = true;  // ended by a newline: libwrap ignores a rule without one
};

// libwrap's xgets: backslash-newline joins physical lines into one rule.
std::vector<LogicalLine> logical_lines(std::string_view text);

}  // namespace rsttrace::hosts_access
