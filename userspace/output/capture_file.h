// A capture file of JSON lines for days-long runs: rotated by size, reopened
// on SIGHUP (logrotate's create and copytruncate modes), mode 0600. A line is
// written whole or not at all; a failed write (disk full, file gone) is
// counted, never fatal, and writing resumes when it works again.
#pragma once

#include <cstdint>
#include <string>

namespace rsttrace {

class CaptureFile {
 public:
  // rotate_bytes 0: never rotate. keep: rotated files kept (path.1 ... path.keep).
  CaptureFile(std::string path, uint64_t rotate_bytes, unsigned keep);  // throws Error if it cannot open
  ~CaptureFile();
  CaptureFile(const CaptureFile&) = delete;
  CaptureFile& operator=(const CaptureFile&) = delete;

  // Appends `line` and a newline; false if it could not be written (counted).
  bool write_line(const std::string& line);
  // Closes and opens the path again: after logrotate moved the file away.
  void reopen();

  uint64_t failed_writes() const { return failed_writes_; }
  uint64_t rotations() const { return rotations_; }

 private:
  bool open_file();
  void rotate();

  std::string path_;
  uint64_t rotate_bytes_;
  unsigned keep_;
  int fd_ = -1;
  uint64_t failed_writes_ = 0;
  uint64_t rotations_ = 0;
  bool failing_ = false;  // in a run of failures: logged once
};

// "10M", "512K", "1G" or plain bytes; throws Error.
uint64_t parse_size(const std::string& text);

}  // namespace rsttrace
