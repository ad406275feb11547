// The scenario lab: throwaway network namespaces with a real OpenSSH sshd in
// each, real clients, real firewall rules. Nothing here touches the host's
// sshd, firewall or /etc/hosts.*: rules live in the namespace, and sshd runs
// in a private mount namespace where /etc/hosts.allow, /etc/hosts.deny and
// /run are its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "selftest/subprocess.h"

namespace rsttrace::lab {

// Addresses inside every lab namespace.
inline constexpr const char* kServer4 = "127.0.0.1";
inline constexpr const char* kClient4 = "127.0.0.2";
inline constexpr const char* kServer6 = "fd00:5eed::1";
inline constexpr const char* kClient6 = "fd00:5eed::2";
// The only ephemeral port of a lab namespace: the ssh client's source port
// is known in advance, so the reported remote port can be checked exactly.
inline constexpr uint16_t kClientPort = 40022;

// A temporary directory, removed with everything in it.
class WorkDir {
 public:
  WorkDir();
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& text, unsigned mode = 0600) const;

 private:
  std::string path_;
};

class Namespace {
 public:
  Namespace(const WorkDir& dir, const std::string& tag);
  ~Namespace();  // kills what runs inside, deletes the namespace
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  const std::string& name() const { return name_; }
  uint32_t inode() const { return inode_; }
  std::vector<std::string> exec(std::vector<std::string> argv) const;
  Result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  Result run_checked(const std::vector<std::string>& argv) const;
  // The namespace's ephemeral ports (kClientPort only, unless widened here).
  void set_client_ports(uint16_t low, uint16_t high) const;
  // Waits until `ss` lists a TCP socket in `state`, matching `filter`, whose
  // line contains `contains` (e.g. the owning process's name).
  void wait_socket(const std::string& state, const std::string& filter, const std::string& contains,
                   const std::string& what) const;
  // The selftest's explain column: `rsttrace explain CLIENT --port PORT` for
  // this namespace, run before a client connects; its verdict (or "error: ...")
  // is kept for Lab::expect to compare with what the trace then reports.
  void explain_before_connect(const std::string& client, uint16_t port) const;
  std::optional<std::string> predicted(const std::string& client, uint16_t port) const;

 private:
  const WorkDir& dir_;
  std::string name_;
  uint32_t inode_ = 0;
  mutable int runs_ = 0;
  mutable std::vector<std::pair<std::string, std::string>> predictions_;  // "CLIENT PORT" -> verdict, latest last
};

// Deletes the namespaces and directories a killed selftest left behind.
void remove_stale_leftovers();

struct SshdSettings {
  uint16_t port = 22;
  std::string hosts_allow;
  std::string hosts_deny;
  std::vector<std::string> config;  // extra sshd_config lines
};

class Sshd {
 public:
  Sshd(const Namespace& ns, const WorkDir& dir, const SshdSettings& settings);
  ~Sshd();
  pid_t pid() const { return process_->pid(); }
  std::string log() const { return process_->err(); }
  std::string log_path() const { return log_path_; }

 private:
  std::unique_ptr<Child> process_;
  std::string log_path_;
};

// The real fail2ban-server, in sshd's own mount and network namespaces (so
// its hosts.deny and firewall are the lab's), reading sshd's log, with one
// jail `jail` banning after two failures with `action`.
class Fail2ban {
 public:
  Fail2ban(const Namespace& ns, const WorkDir& dir, const Sshd& sshd, const std::string& jail,
           const std::string& action);
  ~Fail2ban();
  // Waits until the ban of `address` is in effect (`in_effect` says so).
  void wait_banned(const std::string& address, const std::function<bool()>& in_effect) const;
  std::string status() const;

 private:
  std::vector<std::string> client(const std::vector<std::string>& args) const;
  const WorkDir& dir_;
  std::string jail_, config_, socket_;
  std::unique_ptr<Child> process_;
};

// The real OpenSSH client, from `bind` to `host`; output is what it printed.
Result ssh_client(const Namespace& ns, const std::string& bind, const std::string& host, uint16_t port,
                  int connect_timeout_s = 12);

// `rsttrace lab-client` (a raw TCP client) in the namespace, in the background.
std::unique_ptr<Child> start_raw_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::vector<std::string>& args);

// This executable, for the tracer and raw clients it starts.
std::string self_path();

}  // namespace rsttrace::lab
