// Capture files read line by line without trusting them: a line is bounded
// (a garbage file without newlines is never held whole), and a last line
// without its newline (a capture cut mid-write) is marked as such.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "report/incident.h"

namespace rsttrace {

// Far more than any record (an event line is about 1 KiB).
inline constexpr size_t kMaxCaptureLine = 1 << 20;

struct CaptureLine {
  std::string text;           // without its newline; empty when too_long
  uint64_t number = 0;        // 1-based
  bool unterminated = false;  // the stream ended before a newline
  bool too_long = false;      // longer than the limit: skipped, not kept
};

class LineReader {
 public:
  explicit LineReader(std::istream& in, size_t max_line = kMaxCaptureLine) : in_(in), max_line_(max_line) {}
  bool next(CaptureLine& line);  // false at the end of the stream (or on a read error: check the stream's bad())

 private:
  std::istream& in_;
  size_t max_line_;
  std::vector<char> buffer_ = std::vector<char>(64 * 1024);
  size_t pos_ = 0, end_ = 0;
  uint64_t number_ = 0;
};

// Every line of one capture file into `incident`. False on a read error
// (the stream's badbit; errno tells why). Never throws for what a line holds:
// a line too long, nested too deep or unreadable is counted as malformed.
bool read_capture(std::istream& in, const std::string& name, Incident& incident, size_t max_line = kMaxCaptureLine);

}  // namespace rsttrace
