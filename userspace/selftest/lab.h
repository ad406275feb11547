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

// Addresses on the loopback of every lab namespace (clients on loopback).
inline constexpr const char* kServer4 = "127.0.0.1";
inline constexpr const char* kClient4 = "127.0.0.2";
inline constexpr const char* kServer6 = "fd00:5eed::1";
inline constexpr const char* kClient6 = "fd00:5eed::2";
// Addresses of a remote client's veth pair (private ranges, never routed out
// of the two namespaces).
inline constexpr const char* kRemoteServer4 = "10.77.0.1";
inline constexpr const char* kRemoteClient4 = "10.77.0.2";
inline constexpr const char* kRemoteOtherClient4 = "10.77.0.3";
inline constexpr const char* kRemoteServer6 = "fd00:5eed:1::1";
inline constexpr const char* kRemoteClient6 = "fd00:5eed:1::2";
// The only ephemeral port of a lab namespace: the ssh client's source port
// is known in advance, so the reported remote port can be checked exactly.
inline constexpr uint16_t kClientPort = 40022;

// Whose sshd, fail2ban and firewall tools the lab runs.
enum class Userland { Debian12, Debian13 };
const char* userland_name(Userland userland);

// A userland and where its files are: Debian 12 is the host's own; Debian 13
// a cached trixie root (selftest/userland.h), used read-only as the lower
// layer of an overlay in the lab's private mount namespace.
struct UserlandRoot {
  Userland userland = Userland::Debian12;
  std::string root;  // empty: the host's /
};

// Where a scenario's clients run.
enum class Placement {
  Loopback,     // in the server's namespace, over lo (each packet seen twice)
  Remote,       // in a namespace of their own, over a veth pair
  RemoteNetns,  // remote, and the tracer runs with --netns <server namespace>
};
const char* placement_name(Placement placement);

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
  Namespace(const WorkDir& dir, const std::string& tag, UserlandRoot userland = {});
  ~Namespace();  // kills what runs inside, deletes the namespace
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  const std::string& name() const { return name_; }
  uint32_t inode() const { return inode_; }
  const WorkDir& dir() const { return dir_; }
  const UserlandRoot& userland() const { return userland_; }
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
  // this namespace (a remote client's: its server's), run before a client connects; its verdict (or "error: ...")
  // is kept for Lab::expect to compare with what the trace then reports.
  void explain_before_connect(const std::string& client, uint16_t port) const;
  std::optional<std::string> predicted(const std::string& client, uint16_t port) const;

 private:
  const WorkDir& dir_;
  std::string name_;
  UserlandRoot userland_;
  uint32_t inode_ = 0;
  mutable int runs_ = 0;
  mutable std::vector<std::pair<std::string, std::string>> predictions_;  // "CLIENT PORT" -> verdict, latest last
  mutable const Namespace* server_ = nullptr;  // a remote client's namespace: its server's (link_remote)
  friend void link_remote(const Namespace& server, const Namespace& client);
};

// Connects a client namespace to a server namespace with a veth pair
// (kRemote* addresses) and gives the client kClientPort as its only port.
void link_remote(const Namespace& server, const Namespace& client);

// Deletes the namespaces and directories a killed selftest left behind.
void remove_stale_leftovers();

struct SshdSettings {
  uint16_t port = 22;
  std::string hosts_allow;
  std::string hosts_deny;
  std::vector<std::string> config;  // extra sshd_config lines
};

// The userland's own sshd (ns.userland()) in `ns`, in a mount namespace of
// its own: Debian 12's from the host over a copy-on-write /etc; Debian 13's
// chrooted into an overlay of the cached root, with the root's own /etc.
class Sshd {
 public:
  Sshd(const Namespace& ns, const WorkDir& dir, const SshdSettings& settings);
  ~Sshd();
  pid_t pid() const { return process_->pid(); }
  std::string log() const { return process_->err(); }
  std::string log_path() const { return log_path_; }
  const Namespace& ns() const { return ns_; }
  // argv as the userland's own tool (nft, iptables...) in sshd's network and
  // mount namespaces and root: Debian 13's nft writes the ruleset.
  std::vector<std::string> userland_exec(const std::vector<std::string>& argv) const;
  Result run(const std::vector<std::string>& argv) const;
  Result run_checked(const std::vector<std::string>& argv) const;
  // Until the listener's title counts `count` pre-auth connections ("[listener] N of S-F
  // startups"): it changes a moment after a connection is established, and explain reads it.
  void wait_startups(unsigned count) const;

 private:
  void start_debian12(const SshdSettings& settings, const std::string& tag);
  void start_debian13(const SshdSettings& settings, const std::string& tag);
  const Namespace& ns_;
  const WorkDir& dir_;
  std::unique_ptr<Child> process_;
  std::string log_path_;
  mutable int runs_ = 0;
};

// The real fail2ban-server of sshd's userland, in sshd's own mount and network
// namespaces and root (so its hosts.deny and firewall are the lab's, and
// Debian 13's fail2ban runs Debian 13's nft), reading sshd's log, with one
// jail `jail` banning after two failures with `action`.
class Fail2ban {
 public:
  Fail2ban(const Namespace& ns, const WorkDir& dir, const Sshd& sshd, const std::string& jail,
           const std::string& action);
  ~Fail2ban();
  // Waits until the ban of `address` is in effect (`in_effect` says so).
  void wait_banned(const std::string& address, const std::function<bool()>& in_effect) const;
  // `fail2ban-client set JAIL banip ADDRESS`: a ban as the jail's own would be (its action runs
  // in the server's action thread: wait_banned for its effect).
  void ban(const std::string& address) const;
  std::string status() const;

 private:
  std::vector<std::string> client(const std::vector<std::string>& args) const;
  const Sshd& sshd_;
  const WorkDir& dir_;
  std::string jail_, config_, socket_;
  std::unique_ptr<Child> process_;
};

// The real OpenSSH client, from `bind` to `host`; output is what it printed.
Result ssh_client(const Namespace& ns, const std::string& bind, const std::string& host, uint16_t port,
                  int connect_timeout_s = 12);

// The same client in the background (explain runs first, as there); `tag` names its output.
std::unique_ptr<Child> start_ssh_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::string& bind, const std::string& host, uint16_t port,
                                        int connect_timeout_s = 12);

// `rsttrace lab-client` (a raw TCP client) in the namespace, in the background.
std::unique_ptr<Child> start_raw_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::vector<std::string>& args);

// This executable, for the tracer and raw clients it starts.
std::string self_path();

}  // namespace rsttrace::lab
