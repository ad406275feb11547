#include "output/json_writer.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace rsttrace {

void append_json_string(std::string& out, std::string_view value) {
  // Non-ASCII bytes need UTF-8 validation and replacement: leave that rare case to the library.
  for (unsigned char c : value) {
    if (c >= 0x80) {
      out += nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  size_t plain = 0;  // start of the run of bytes that need no escape
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(value.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
    }
  }
  out.append(value.data() + plain, value.size() - plain);
  out += '"';
}

void JsonObjectWriter::key(std::string_view name) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += '"';
  out_ += name;
  out_ += "\":";
}

JsonObjectWriter& JsonObjectWriter::string(std::string_view key_name, std::string_view value) {
  key(key_name);
  append_json_string(out_, value);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::optional_string(std::string_view key_name, const std::optional<std::string>& value) {
  return value ? string(key_name, *value) : null(key_name);
}

JsonObjectWriter& JsonObjectWriter::number(std::string_view key_name, uint64_t value) {
  key(key_name);
  char digits[24];
  out_.append(digits, std::to_chars(digits, digits + sizeof(digits), value).ptr);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::boolean(std::string_view key_name, bool value) {
  key(key_name);
  out_ += value ? "true" : "false";
  return *this;
}

JsonObjectWriter& JsonObjectWriter::null(std::string_view key_name) {
  key(key_name);
  out_ += "null";
  return *this;
}

JsonObjectWriter JsonObjectWriter::object(std::string_view key_name) {
  key(key_name);
  return JsonObjectWriter(out_);
}

}  // namespace rsttrace
