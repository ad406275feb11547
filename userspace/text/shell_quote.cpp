#include "text/shell_quote.h"

namespace rsttrace {

std::optional<std::string> shell_quote(std::string_view word) {
  if (word.empty()) return std::nullopt;
  // `~` and zsh's `=cmd` expand at a word's start.
  bool plain = word.front() != '~' && word.front() != '=';
  for (const char c : word) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) return std::nullopt;
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      std::string_view("_./:@%+=,-").find(c) != std::string_view::npos;
    plain &= safe;
  }
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (const char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::optional<std::string> shell_command(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& word : argv) {
    const auto quoted = shell_quote(word);
    if (!quoted) return std::nullopt;
    if (!line.empty()) line += ' ';
    line += *quoted;
  }
  if (line.empty()) return std::nullopt;
  return line;
}

}  // namespace rsttrace
