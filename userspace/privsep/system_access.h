// What provenance needs from the system that a process without privileges
// cannot do itself: run the ruleset and fail2ban readers (in other network
// namespaces) and open files of other processes' mount and network
// namespaces. DirectAccess does it in this process; BrokerAccess asks the
// privileged broker (privsep/broker.h) once rsttrace has dropped privileges.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "error.h"
#include "privsep/sshd_test_mode.h"

namespace rsttrace {

class SystemAccess {
 public:
  virtual ~SystemAccess() = default;
  // argv's standard output; nullopt if it could not run, failed or timed out.
  virtual std::optional<std::string> run(const std::vector<std::string>& argv) = 0;
  // A read-only descriptor for path (the caller closes it), or -1.
  virtual int open_read(const std::string& path) = 0;
  // `sshd -T`'s output for the listening sshd `pid`, or why it was not run
  // or failed (privsep/sshd_test_mode.h: its checks, limits and rate).
  virtual Result<std::string> sshd_test_output(pid_t pid) = 0;
  // False once run() and open_read() can no longer work (the broker exited):
  // provenance then says "unavailable" instead of "not found".
  virtual bool available() { return true; }
  // rsttrace is stopping: what runs now and everything after fails at once.
  // Called from another thread than the one making the calls.
  virtual void cancel() = 0;

  // At most max_bytes of it: a hosts file is small, a huge one is cut, not swallowed.
  std::optional<std::string> read_file(const std::string& path, size_t max_bytes = 1 << 20);
  std::optional<struct stat> stat_file(const std::string& path);
};

class DirectAccess final : public SystemAccess {
 public:
  DirectAccess();
  ~DirectAccess() override;
  DirectAccess(const DirectAccess&) = delete;
  DirectAccess& operator=(const DirectAccess&) = delete;
  std::optional<std::string> run(const std::vector<std::string>& argv) override;
  int open_read(const std::string& path) override;
  Result<std::string> sshd_test_output(pid_t pid) override { return sshd_runs_.output(pid, cancel_fd_); }
  void cancel() override;

 private:
  int cancel_fd_ = -1;  // eventfd: a running command is killed once it is written
  SshdTestRuns sshd_runs_;
};

// What the broker serves, and nothing else. Pure; unit-tested.
// Commands: the ruleset readers, possibly under `nsenter --net=PATH --`, and
// `fail2ban-client -s /run/fail2ban/fail2ban.sock banned ADDRESS` (its socket
// and peer are checked before it runs: privsep/safe_access.h).
// And `nsenter --net=PATH -- nft-netlink-dump`: rsttrace itself, dumping nf_tables over netlink in the namespace.
constexpr const char* kNftNetlinkDump = "nft-netlink-dump";
bool broker_allows_command(const std::vector<std::string>& argv);
// Paths: namespace files of processes and /run/netns, and /etc/hosts.* of a
// process's root (hosts.allow, hosts.deny, and pattern files named
// /etc/hosts.*: others are not read once privileges are dropped), and ufw's
// /etc/ufw/user.rules and user6.rules of a process's root (its rule numbers), an sshd's
// /var/log/auth.log inside its root, and firewalld's /etc/firewalld/zones/ZONE.xml and
// policies/POLICY.xml (whose chain, is a block permanent). Never a
// command line: nothing a process says about itself steers the broker.
bool broker_allows_path(const std::string& path);

}  // namespace rsttrace
