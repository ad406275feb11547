#include "output/capture_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "error.h"

namespace rsttrace {

uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (...) {
    throw failed("parse", "size " + text, "expected a number with an optional K, M or G");
  }
  const std::string unit = text.substr(used);
  const uint64_t scale = unit.empty() ? 1 : unit == "K" || unit == "k" ? 1ULL << 10 : unit == "M" ? 1ULL << 20
                                          : unit == "G"                 ? 1ULL << 30
                                                                        : 0;
  if (scale == 0) throw failed("parse", "size " + text, "unknown unit " + unit + " (K, M or G)");
  return value * scale;
}

CaptureFile::CaptureFile(std::string path, uint64_t rotate_bytes, unsigned keep)
    : path_(std::move(path)), rotate_bytes_(rotate_bytes), keep_(keep) {
  if (!open_file()) throw failed("open", "capture file " + path_, errno_text(errno));
}

CaptureFile::~CaptureFile() {
  if (fd_ >= 0) close(fd_);
}

bool CaptureFile::open_file() {
  if (fd_ >= 0) close(fd_);
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ >= 0) fchmod(fd_, 0600);  // an existing file too: captures hold peers' addresses
  return fd_ >= 0;
}

void CaptureFile::reopen() {
  if (!open_file()) spdlog::warn("failed to reopen capture file {}: {}", path_, errno_text(errno));
}

void CaptureFile::rotate() {
  // path.keep is dropped, path.N -> path.N+1, path -> path.1, a new path.
  for (unsigned n = keep_; n >= 1; --n) {
    const std::string from = n == 1 ? path_ : path_ + "." + std::to_string(n - 1);
    const std::string to = path_ + "." + std::to_string(n);
    std::rename(from.c_str(), to.c_str());
  }
  if (keep_ == 0) unlink(path_.c_str());
  ++rotations_;
  reopen();
}

bool CaptureFile::write_line(const std::string& line) {
  struct stat st {};
  if (fd_ < 0 && !open_file()) {
    ++failed_writes_;
    return false;
  }
  // The size as it is now: logrotate's copytruncate may have emptied the file.
  if (rotate_bytes_ && fstat(fd_, &st) == 0 && st.st_size > 0 &&
      static_cast<uint64_t>(st.st_size) + line.size() + 1 > rotate_bytes_) {
    rotate();
    if (fd_ < 0) {
      ++failed_writes_;
      return false;
    }
  }
  const off_t before = fstat(fd_, &st) == 0 ? st.st_size : -1;
  const std::string text = line + "\n";
  const ssize_t written = write(fd_, text.data(), text.size());
  if (written == static_cast<ssize_t>(text.size())) {
    if (failing_) spdlog::info("capture file {} is written again", path_);
    failing_ = false;
    return true;
  }
  const int err = written < 0 ? errno : ENOSPC;
  if (written > 0 && before >= 0 && ftruncate(fd_, before) != 0) {
    // Could not take the half line back: end it, so the next line stays whole.
    (void)!write(fd_, "\n", 1);
  }
  ++failed_writes_;
  if (!failing_) spdlog::warn("failed to write capture file {}: {}; counting lost lines until it works", path_,
                              errno_text(err));
  failing_ = true;
  return false;
}

}  // namespace rsttrace
