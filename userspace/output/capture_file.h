// A capture file of JSON lines for days-long runs: rotated by size, reopened
// on SIGHUP (logrotate's create and copytruncate modes), mode 0600. A line is
// written whole or not at all; a failed write (disk full, file gone, a path
// refused) is counted, never fatal, and writing resumes when it works again.
//
// The path is named by the operator but its directory may be shaped by others
// (a symlink, a FIFO or a file of theirs put there): every open refuses to
// follow a symlink or to block, and keeps only a regular file with one link,
// owned by root or by the collector's user. Once privileges are dropped, the
// privileged broker opens and rotates the file (set_opener()).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "error.h"
#include "fd.h"

namespace rsttrace {

// A descriptor opened for writing, or why not.
using OpenedFile = Result<Fd>;

enum class CaptureOpen { Append, Rotate };

// Whether a file just opened for writing may be written; a Failure says why
// not: not a regular file, more than one link, or owned by someone other
// than root or `collector_uid` (who could read the capture). Pure; unit-tested.
Result<void> check_written_file(const struct stat& st, uid_t collector_uid);

// Opens `path` for appending (created 0600 if absent) without following a
// symlink or blocking on a FIFO, and checks it with check_written_file().
// Rotate: first path.N -> path.N+1 (path.keep dropped) ... path -> path.1,
// then a new path created exclusively. Used directly and by the broker.
OpenedFile open_capture_path(const std::string& path, CaptureOpen how, unsigned keep, uid_t collector_uid);

// Which file was written (device and inode), to remove that file only.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
};
// Replaces path with `contents` atomically: a temporary file path.tmp.PID
// created exclusively with `mode` (less the umask; no symlink followed, no
// FIFO waited on) in the same directory, renamed over path. The one
// temp-file-and-rename of rsttrace (ready file, HTML report).
Result<FileIdentity> replace_file(const std::string& path, std::string_view contents, mode_t mode);
// Writes `pid` and a newline to path with replace_file(), mode 0600.
Result<FileIdentity> write_ready_file(const std::string& path, pid_t pid);
// Removes path if it is still the file written: false otherwise or on error.
bool remove_ready_file(const std::string& path, const FileIdentity& written);

class CaptureFile {
 public:
  // How the path is opened after start; the default opens it in this process.
  using Opener = std::function<OpenedFile(CaptureOpen)>;

  // rotate_bytes 0: never rotate. keep: rotated files kept (path.1 ... path.keep).
  // collector_uid: besides root, who may own the file. Throws Error if it cannot open.
  CaptureFile(std::string path, uint64_t rotate_bytes, unsigned keep, uid_t collector_uid = geteuid());
  CaptureFile(const CaptureFile&) = delete;
  CaptureFile& operator=(const CaptureFile&) = delete;

  // Appends `line` and a newline; false if it could not be written (counted).
  bool write_line(const std::string& line);
  // Closes and opens the path again: after logrotate moved the file away.
  // False if refused or failed: lines are then counted as failed until a retry works.
  bool reopen();
  // From now on, reopen and rotate through `opener` (the broker).
  void set_opener(Opener opener) { opener_ = std::move(opener); }

  uint64_t failed_writes() const { return failed_writes_; }
  uint64_t rotations() const { return rotations_; }

 private:
  bool take(OpenedFile opened, const char* what);
  void rotate();
  void failing(const std::string& message);

  std::string path_;
  uint64_t rotate_bytes_;
  unsigned keep_;
  Opener opener_;
  Fd fd_;
  uint64_t failed_writes_ = 0;
  uint64_t rotations_ = 0;
  uint64_t retry_after_ns_ = 0;  // without a file, opens are retried once a second
  bool failing_ = false;         // in a run of failures: logged once
};

// "10M", "512K", "1G" or plain bytes; throws Error.
uint64_t parse_size(const std::string& text);

}  // namespace rsttrace
