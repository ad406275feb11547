// A guard for JSON from others (rulesets from a user's own namespace, capture
// lines): a document deeper than a limit is refused before nlohmann builds a
// tree for it, whose memory would far exceed the text's.
#pragma once

#include <cstddef>
#include <string_view>

namespace rsttrace {

// True when `text` opens more than `limit` brackets at once, outside strings.
inline bool json_nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace rsttrace
