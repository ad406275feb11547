#include "report/capture_reader.h"

#include "text/json_nesting.h"

#include <cstring>
#include <exception>
#include <string_view>

namespace rsttrace {

namespace {

// An event line nests 3 levels; a line of a million brackets is refused
// before parsing (its tree would cost far more memory than its text).
constexpr int kMaxLineDepth = 32;


}  // namespace

bool LineReader::next(CaptureLine& line) {
  line.text.clear();
  line.unterminated = line.too_long = false;
  bool started = false;
  for (;;) {
    if (pos_ == end_) {
      in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
      pos_ = 0;
      end_ = static_cast<size_t>(in_.gcount());
      if (end_ == 0) {
        if (!started) return false;
        line.unterminated = true;
        break;
      }
    }
    started = true;
    const char* from = buffer_.data() + pos_;
    const char* newline = static_cast<const char*>(std::memchr(from, '\n', end_ - pos_));
    const size_t length = newline ? static_cast<size_t>(newline - from) : end_ - pos_;
    if (!line.too_long) {
      if (line.text.size() + length > max_line_) {
        line.too_long = true;
        std::string().swap(line.text);
      } else {
        line.text.append(from, length);
      }
    }
    pos_ += length;
    if (newline) {
      ++pos_;
      break;
    }
  }
  line.number = ++number_;
  return true;
}

bool read_capture(std::istream& in, const std::string& name, Incident& incident, size_t max_line) {
  LineReader reader(in, max_line);
  CaptureLine line;
  while (reader.next(line)) {
    if (line.too_long) {
      incident.malformed(name, line.number, "longer than " + std::to_string(max_line) + " bytes");
    } else if (json_nests_deeper_than(line.text, kMaxLineDepth)) {
      incident.malformed(name, line.number, "nested deeper than " + std::to_string(kMaxLineDepth) + " levels");
    } else {
      // A capture is anyone's file: whatever a line holds, it is one skipped line, never the end of the report.
      try {
        incident.add_line(name, line.number, line.text, line.unterminated);
      } catch (const std::exception& e) {
        incident.malformed(name, line.number, std::string("cannot be read: ") + e.what());
      }
    }
  }
  return !in.bad();
}

}  // namespace rsttrace
