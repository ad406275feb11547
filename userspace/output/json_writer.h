// One JSON object written straight into a string, without a DOM: the event
// line is the collector's hottest path. Output is byte for byte what
// nlohmann's dump() gives for the same object (compact, ensure_ascii off,
// invalid UTF-8 replaced), which tests/unit/test_format.cpp checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rsttrace {

class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
  // Keys are rsttrace's own ASCII names: written as given.
  JsonObjectWriter& string(std::string_view key, std::string_view value);
  JsonObjectWriter& optional_string(std::string_view key, const std::optional<std::string>& value);  // null if none
  JsonObjectWriter& number(std::string_view key, uint64_t value);
  JsonObjectWriter& boolean(std::string_view key, bool value);
  JsonObjectWriter& null(std::string_view key);
  // A nested object: returns the writer for it; call close() on it before the next field.
  JsonObjectWriter object(std::string_view key);
  void close() { out_ += '}'; }

 private:
  void key(std::string_view name);
  std::string& out_;
  bool first_ = true;
};

// A JSON string literal for `value`, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view value);

}  // namespace rsttrace
