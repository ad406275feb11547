#include "output/capture_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "clock.h"
#include "error.h"

namespace rsttrace {
namespace {

// O_NOFOLLOW: a symlink is not followed (ELOOP). O_NONBLOCK: a FIFO without
// a reader fails (ENXIO) instead of hanging, one with a reader is opened and
// then refused by its type. Nothing is written before fstat has checked it.
OpenedFile open_checked(const std::string& path, int create_flags, uid_t collector_uid) {
  Fd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | create_flags, 0600));
  if (!fd) {
    const int err = errno;
    return Failure{err == ELOOP   ? "a symbolic link (not followed)"
                   : err == ENXIO ? "not a regular file (a FIFO or socket)"
                                  : errno_text(err)};
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Failure{errno_text(errno)};
  if (Result<void> checked = check_written_file(st, collector_uid); !checked) return Failure{checked.reason()};
  if ((st.st_mode & 07777) != 0600 && fchmod(fd.get(), 0600) != 0)  // captures hold peers' addresses
    return Failure{"chmod 0600: " + errno_text(errno)};
  return fd;
}

// path.keep is dropped, path.N -> path.N+1, path -> path.1.
Result<void> rotate_files(const std::string& path, unsigned keep) {
  for (unsigned n = keep; n >= 1; --n) {
    const std::string from = n == 1 ? path : path + "." + std::to_string(n - 1);
    const std::string to = path + "." + std::to_string(n);
    if (std::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return Failure{"rename " + from + " to " + to + ": " + errno_text(errno)};
  }
  if (keep == 0 && unlink(path.c_str()) != 0 && errno != ENOENT)
    return Failure{"remove " + path + ": " + errno_text(errno)};
  return {};
}

}  // namespace

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

Result<void> check_written_file(const struct stat& st, uid_t collector_uid) {
  if (!S_ISREG(st.st_mode)) return Failure{"not a regular file"};
  if (st.st_nlink != 1)
    return Failure{"a file with " + std::to_string(st.st_nlink) + " links (a hard link to another file is not written)"};
  if (st.st_uid != 0 && st.st_uid != collector_uid)
    return Failure{"owned by uid " + std::to_string(st.st_uid) +
                   ", not root or rsttrace's user (it could read the capture)"};
  return {};
}

OpenedFile open_capture_path(const std::string& path, CaptureOpen how, unsigned keep, uid_t collector_uid) {
  if (how == CaptureOpen::Append) return open_checked(path, O_CREAT, collector_uid);
  if (Result<void> rotated = rotate_files(path, keep); !rotated) return Failure{rotated.reason()};
  // Exclusive: whatever appeared at the path since the rename is not ours.
  return open_checked(path, O_CREAT | O_EXCL, collector_uid);
}

Result<FileIdentity> replace_file(const std::string& path, std::string_view contents, mode_t mode) {
  const std::string temp = path + ".tmp." + std::to_string(getpid());
  Fd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode));
  if (!fd) return Failure{"create " + temp + ": " + errno_text(errno)};
  struct stat st {};
  std::string error;
  for (std::string_view left = contents; error.empty() && !left.empty();) {
    const ssize_t n = write(fd.get(), left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) error = "write " + temp + ": " + errno_text(n < 0 ? errno : ENOSPC);
    else left.remove_prefix(static_cast<size_t>(n));
  }
  if (error.empty() && fstat(fd.get(), &st) != 0) error = "stat " + temp + ": " + errno_text(errno);
  if (error.empty() && close(fd.release()) != 0) error = "write " + temp + ": " + errno_text(errno);
  // rename() replaces whatever is at path (a symlink too) without following it.
  if (error.empty() && std::rename(temp.c_str(), path.c_str()) != 0) error = errno_text(errno);
  if (!error.empty()) {
    unlink(temp.c_str());
    return Failure{error};
  }
  return FileIdentity{st.st_dev, st.st_ino};
}

Result<FileIdentity> write_ready_file(const std::string& path, pid_t pid) {
  return replace_file(path, std::to_string(pid) + "\n", 0600);
}

bool remove_ready_file(const std::string& path, const FileIdentity& written) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || st.st_dev != written.dev || st.st_ino != written.ino) return false;
  return unlink(path.c_str()) == 0;
}

CaptureFile::CaptureFile(std::string path, uint64_t rotate_bytes, unsigned keep, uid_t collector_uid)
    : path_(std::move(path)), rotate_bytes_(rotate_bytes), keep_(keep) {
  opener_ = [path = path_, keep, collector_uid](CaptureOpen how) {
    return open_capture_path(path, how, keep, collector_uid);
  };
  OpenedFile opened = opener_(CaptureOpen::Append);
  if (!opened) throw failed("open", "capture file " + path_, opened.reason());
  fd_ = std::move(*opened);
}

bool CaptureFile::take(OpenedFile opened, const char* what) {
  fd_.reset();
  if (opened) {
    fd_ = std::move(*opened);
    return true;
  }
  retry_after_ns_ = monotonic_now_ns() + 1'000'000'000ULL;
  failing(std::string("failed to ") + what + " capture file " + path_ + ": " + opened.reason());
  return false;
}

void CaptureFile::failing(const std::string& message) {
  if (!failing_) spdlog::warn("{}; counting lost lines until it works", message);
  failing_ = true;
}

bool CaptureFile::reopen() { return take(opener_(CaptureOpen::Append), "reopen"); }

void CaptureFile::rotate() {
  if (take(opener_(CaptureOpen::Rotate), "rotate")) ++rotations_;
}

bool CaptureFile::write_line(const std::string& line) {
  struct stat st {};
  // Without a file, one open a second: a refused path costs no open per line.
  if (!fd_ && (monotonic_now_ns() < retry_after_ns_ || !take(opener_(CaptureOpen::Append), "reopen"))) {
    ++failed_writes_;
    return false;
  }
  // The size as it is now: logrotate's copytruncate may have emptied the file.
  if (rotate_bytes_ && fstat(fd_.get(), &st) == 0 && st.st_size > 0 &&
      static_cast<uint64_t>(st.st_size) + line.size() + 1 > rotate_bytes_) {
    rotate();
    if (!fd_) {
      ++failed_writes_;
      return false;
    }
  }
  const off_t before = fstat(fd_.get(), &st) == 0 ? st.st_size : -1;
  const std::string text = line + "\n";
  const ssize_t written = write(fd_.get(), text.data(), text.size());
  if (written == static_cast<ssize_t>(text.size())) {
    if (failing_) spdlog::info("capture file {} is written again", path_);
    failing_ = false;
    return true;
  }
  const int err = written < 0 ? errno : ENOSPC;
  if (written > 0 && before >= 0 && ftruncate(fd_.get(), before) != 0) {
    // Could not take the half line back: end it, so the next line stays whole.
    (void)!write(fd_.get(), "\n", 1);
  }
  ++failed_writes_;
  failing("failed to write capture file " + path_ + ": " + errno_text(err));
  return false;
}

}  // namespace rsttrace
