// Privilege separation. Once its programs are attached, rsttrace keeps
// privileges only in a small broker process, forked before they are dropped,
// that runs the allowlisted ruleset readers and opens allowlisted files for
// the collector (descriptors passed over a socket). The collector, which parses
// untrusted kernel and network strings and may serve HTTP, then runs without
// capabilities and, by default, as an unprivileged user (see drop_privileges()).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <mutex>
#include <string>

#include "error.h"
#include "fd.h"
#include "output/capture_file.h"
#include "privsep/system_access.h"

namespace rsttrace {

// The files the broker writes for the collector, fixed from the command line
// when it is forked: requests name an operation, never a path.
struct BrokerFiles {
  std::string capture;        // --output, or ""
  unsigned capture_keep = 0;  // --rotate-keep
  std::string ready;          // --ready-file, or ""
  uid_t collector_uid = 0;    // besides root, who may own the capture file
};

class BrokerAccess final : public SystemAccess {
 public:
  // Forks the broker, named `name` (at most 15 bytes: its comm); throws Error.
  explicit BrokerAccess(const char* name, BrokerFiles files = {});
  ~BrokerAccess() override;
  BrokerAccess(const BrokerAccess&) = delete;
  BrokerAccess& operator=(const BrokerAccess&) = delete;

  std::optional<std::string> run(const std::vector<std::string>& argv) override;
  int open_read(const std::string& path) override;
  Result<std::string> sshd_test_output(pid_t pid) override;
  bool available() override { return alive(); }
  // Stopping: a request waiting for its reply fails at once (the socket is
  // shut down; the broker reads EOF and exits), and so do later ones.
  void cancel() override;
  pid_t pid() const { return pid_; }

  // False once the broker has exited (killed by an admin, the OOM killer...):
  // logged once. Cheap (waitpid WNOHANG): called from the trace loop.
  bool alive();

  // BrokerFiles::capture opened for appending, or rotated then opened.
  OpenedFile open_capture(CaptureOpen how);
  // BrokerFiles::ready written with the collector's pid; removed at exit.
  Result<void> write_ready();
  bool remove_ready();

 private:
  bool send_request(char op, const std::vector<std::string>& strings);
  Result<void> ready_op(char op);
  void lost_connection();                 // a request failed: the broker may be gone
  void exited(const std::string& how);    // logs once
  Fd socket_;
  pid_t pid_ = -1;
  std::mutex exchange_;  // one request and its reply at a time (provenance may move to a thread)
  std::mutex reap_;
  std::atomic<bool> exited_{false};  // no more requests are sent
  std::atomic<bool> cancelled_{false};
  bool reaped_ = false;              // its status is collected: nothing to wait for at exit
};

}  // namespace rsttrace
