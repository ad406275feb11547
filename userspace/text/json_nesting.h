// How deep a JSON text nests, counted before parsing: a line of a million
// brackets would cost far more memory as a tree than as text (nlohmann's
// parser also recurses once per level). Used on untrusted JSON: the event
// lines of a capture file, `nft -j` output from a namespace's owner.
#pragma once

#include <cstddef>
#include <string_view>

namespace rsttrace {

// Deeper than `limit` brackets outside strings.
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
