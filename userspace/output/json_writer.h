// One JSON object written straight into a string, without a DOM: the event
// line is the collector's hottest path. Output is byte for byte what
// nlohmann's dump() gives for the same object (compact, ensure_ascii off,
// invalid UTF-8 replaced), which tests/unit/test_format.cpp and
// tests/unit/test_event_line.cpp check.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rsttrace {

class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : out_(out) { buffer_[used_++] = '{'; }
  JsonObjectWriter(const JsonObjectWriter&) = delete;
  JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;
  ~JsonObjectWriter() { flush(); }

  // Keys are rsttrace's own ASCII names: written as given.
  [[gnu::always_inline]] JsonObjectWriter& string(std::string_view key_name, std::string_view value) {
    key(key_name);
    string_value(value);
    return *this;
  }
  JsonObjectWriter& optional_string(std::string_view key_name, const std::optional<std::string>& value) {  // null if none
    return value ? string(key_name, *value) : null(key_name);
  }
  [[gnu::always_inline]] JsonObjectWriter& number(std::string_view key_name, uint64_t value) {
    key(key_name);
    used_ = static_cast<size_t>(put_number(room(20), value) - buffer_);
    return *this;
  }
  JsonObjectWriter& boolean(std::string_view key_name, bool value) {
    return value ? literal(key_name, "true") : literal(key_name, "false");
  }
  [[gnu::always_inline]] JsonObjectWriter& null(std::string_view key_name) { return literal(key_name, "null"); }
  // An array of strings (remedy commands: printable ASCII by construction, JSON-escaped all the same).
  JsonObjectWriter& string_array(std::string_view key_name, const std::vector<std::string>& values);
  // A value the caller wrote as JSON already (`write(std::string&)` appends it): nested arrays.
  template <typename Write>
  JsonObjectWriter& json_value(std::string_view key_name, Write&& write) {
    key(key_name);
    flush();
    write(out_);
    return *this;
  }
  // Untrusted bytes (comm): escape_untrusted() then JSON, in one pass, no temporary.
  JsonObjectWriter& untrusted_string(std::string_view key_name, std::string_view raw);
  // A string of at most `max_size` bytes (<= 256) that `write(char* at)` puts at
  // `at`, returning its end; plain printable ASCII without '"' or '\\' by
  // construction (addresses, timestamps, flag names), so not escaped.
  template <typename Write>
  JsonObjectWriter& ascii_string(std::string_view key_name, size_t max_size, Write&& write) {
    key(key_name);
    char* at = room(max_size + 2);
    *at++ = '"';
    at = write(at);
    *at++ = '"';
    used_ = static_cast<size_t>(at - buffer_);
    return *this;
  }
  // A nested object: returns the writer for it; call close() on it before the next field.
  JsonObjectWriter object(std::string_view key_name) {
    key(key_name);
    flush();
    return JsonObjectWriter(out_);
  }
  void close() {
    *room(1) = '}';
    ++used_;
    flush();
  }

 private:
  // The line is put together in a buffer here and appended to `out_` in one
  // or two pieces: a line has some 30 fields, and appending each piece to a
  // std::string costs more than writing it.
  static constexpr size_t kBuffer = 2048;

  // Room for n <= kBuffer more bytes at the returned pointer.
  [[gnu::always_inline]] char* room(size_t n) {
    if (kBuffer - used_ < n) flush();
    return buffer_ + used_;
  }
  void flush() {
    if (used_ == 0) return;
    out_.append(buffer_, used_);
    used_ = 0;
  }
  // Inlined where called: the key's length is then known and its copy is a few moves.
  [[gnu::always_inline]] void key(std::string_view name) {
    if (name.size() > 64) return long_key(name);
    char* at = room(name.size() + 4);
    if (!first_) *at++ = ',';
    first_ = false;
    *at++ = '"';
    std::memcpy(at, name.data(), name.size());
    at += name.size();
    *at++ = '"';
    *at++ = ':';
    used_ = static_cast<size_t>(at - buffer_);
  }
  template <size_t N>
  [[gnu::always_inline]] JsonObjectWriter& literal(std::string_view key_name, const char (&text)[N]) {
    key(key_name);
    std::memcpy(room(N - 1), text, N - 1);
    used_ += N - 1;
    return *this;
  }
  void long_key(std::string_view name);
  void string_value(std::string_view value);
  static char* put_number(char* at, uint64_t value);

  std::string& out_;
  size_t used_ = 0;
  bool first_ = true;
  char buffer_[kBuffer];
};

// A JSON string literal for `value`, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view value);
// The JSON string literal of escape_untrusted(raw), appended to `out`.
void append_json_untrusted(std::string& out, std::string_view raw);

}  // namespace rsttrace
