#include "output/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

namespace rsttrace {

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHigh = 0x8080808080808080ULL;

// Nonzero when one of the 8 bytes in `w` is a control character, '"', '\\'
// or not ASCII. (Exact for "any"; which byte is found byte by byte.)
inline uint64_t needs_care(uint64_t w) {
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | w) & kHigh;
}

constexpr char kHex[] = "0123456789abcdef";

// Bytes a JSON string holds as they are (ASCII, not a control character, '"' or '\\').
constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

}  // namespace

void append_json_string(std::string& out, std::string_view value) {
  const size_t start = out.size();
  out += '"';
  const char* const data = value.data();
  const size_t size = value.size();
  size_t plain = 0;  // start of the run of bytes that need no escape
  size_t i = 0;
  while (i < size) {
    if (i + 8 <= size) {  // 8 bytes at a time while nothing needs care: details are long
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      if (!needs_care(word)) {
        i += 8;
        continue;
      }
    }
    for (const size_t end = std::min(size, i + 8); i < end; ++i) {
      const unsigned char c = static_cast<unsigned char>(data[i]);
      if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) continue;
      if (c >= 0x80) {
        // Non-ASCII bytes need UTF-8 validation and replacement: leave that rare case to the library.
        out.resize(start);
        out += nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return;
      }
      out.append(data + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: {
          const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(escaped, sizeof(escaped));
        }
      }
    }
  }
  out.append(data + plain, size - plain);
  out += '"';
}

void append_json_untrusted(std::string& out, std::string_view raw) {
  // escape_untrusted() gives printable ASCII only (backslash doubled, the rest
  // \xNN); JSON then escapes its backslashes and quotes. Both at once here.
  out += '"';
  size_t plain = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
    out.append(raw.data() + plain, i - plain);
    plain = i + 1;
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\\\\\";  // \\ -> JSON "\\\\"
    } else {
      const char escaped[5] = {'\\', '\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out.append(escaped, sizeof(escaped));
    }
  }
  out.append(raw.data() + plain, raw.size() - plain);
  out += '"';
}

namespace {

// The JSON string literal of `value` at `at` (room for 6 * size + 2 bytes);
// its end, or nullptr when `value` has a non-ASCII byte (left to the library).
char* put_json_string(char* at, std::string_view value) {
  *at++ = '"';
  const char* const data = value.data();
  const size_t size = value.size();
  size_t i = 0;
  while (i < size) {
    if (i + 8 <= size) {
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      if (!needs_care(word)) {
        std::memcpy(at, &word, 8);
        at += 8;
        i += 8;
        continue;
      }
    }
    for (const size_t end = std::min(size, i + 8); i < end; ++i) {
      const unsigned char c = static_cast<unsigned char>(data[i]);
      if (kPlain[c]) {
        *at++ = static_cast<char>(c);
        continue;
      }
      if (c >= 0x80) return nullptr;
      *at++ = '\\';
      switch (c) {
        case '"': *at++ = '"'; break;
        case '\\': *at++ = '\\'; break;
        case '\b': *at++ = 'b'; break;
        case '\f': *at++ = 'f'; break;
        case '\n': *at++ = 'n'; break;
        case '\r': *at++ = 'r'; break;
        case '\t': *at++ = 't'; break;
        default:
          *at++ = 'u';
          *at++ = '0';
          *at++ = '0';
          *at++ = kHex[c >> 4];
          *at++ = kHex[c & 0xf];
      }
    }
  }
  *at++ = '"';
  return at;
}

// The JSON string literal of escape_untrusted(raw) at `at` (room for 5 * size + 2 bytes).
char* put_json_untrusted(char* at, std::string_view raw) {
  *at++ = '"';
  for (const char byte : raw) {
    const unsigned char c = static_cast<unsigned char>(byte);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      *at++ = byte;
    } else if (c == '"') {
      *at++ = '\\';
      *at++ = '"';
    } else if (c == '\\') {  // \\ -> JSON "\\\\"
      std::memcpy(at, "\\\\\\\\", 4);
      at += 4;
    } else {  // \xNN -> JSON "\\xNN"
      *at++ = '\\';
      *at++ = '\\';
      *at++ = 'x';
      *at++ = kHex[c >> 4];
      *at++ = kHex[c & 0xf];
    }
  }
  *at++ = '"';
  return at;
}

}  // namespace

void JsonObjectWriter::long_key(std::string_view name) {
  flush();
  out_.append(first_ ? "\"" : ",\"");
  first_ = false;
  out_.append(name.data(), name.size());
  out_.append("\":", 2);
}

void JsonObjectWriter::string_value(std::string_view value) {
  if (value.size() <= (kBuffer - 2) / 6) {
    if (char* end = put_json_string(room(6 * value.size() + 2), value)) {
      used_ = static_cast<size_t>(end - buffer_);
      return;
    }
  }
  flush();  // long, or not ASCII
  append_json_string(out_, value);
}

JsonObjectWriter& JsonObjectWriter::string_array(std::string_view key_name, const std::vector<std::string>& values) {
  key(key_name);
  flush();
  out_ += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out_ += ',';
    append_json_string(out_, values[i]);
  }
  out_ += ']';
  return *this;
}

JsonObjectWriter& JsonObjectWriter::untrusted_string(std::string_view key_name, std::string_view raw) {
  key(key_name);
  if (raw.size() <= (kBuffer - 2) / 5) {
    used_ = static_cast<size_t>(put_json_untrusted(room(5 * raw.size() + 2), raw) - buffer_);
  } else {
    flush();
    append_json_untrusted(out_, raw);
  }
  return *this;
}

char* JsonObjectWriter::put_number(char* at, uint64_t value) { return std::to_chars(at, at + 20, value).ptr; }

}  // namespace rsttrace
