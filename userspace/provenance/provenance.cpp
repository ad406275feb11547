#include "provenance/provenance.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "provenance/command.h"

namespace rsttrace {

PacketFacts packet_facts(const TcpEvent& drop, const std::string& hook) {
  PacketFacts packet;
  packet.family = drop.family;
  const Endpoint& source = drop.ingress ? drop.remote : drop.local;
  const Endpoint& dest = drop.ingress ? drop.local : drop.remote;
  packet.saddr = source.addr;
  packet.daddr = dest.addr;
  packet.sport = source.port;
  packet.dport = dest.port;
  packet.hook = hook;
  packet.syn = drop.tcp_flags && (*drop.tcp_flags & 0x12) == 0x02;
  return packet;
}

namespace {

// fail2ban-server's control socket, from its command line (-s), as reachable
// from here through its root (it may live in another mount namespace).
std::string fail2ban_socket(uint32_t pid, SystemAccess& access) {
  std::istringstream in(access.read_file("/proc/" + std::to_string(pid) + "/cmdline").value_or(""));
  std::string argument, socket = "/var/run/fail2ban/fail2ban.sock";
  bool next_is_socket = false;
  while (std::getline(in, argument, '\0')) {
    if (next_is_socket) socket = argument;
    next_is_socket = argument == "-s";
  }
  return "/proc/" + std::to_string(pid) + "/root" + socket;
}

}  // namespace

std::optional<std::string> Provenance::fail2ban_jail_from_thread(const WrapperOpen& writer) {
  const std::string& thread = writer.parent_thread;
  if (thread.rfind("f2b/a.", 0) == 0 && thread.size() < 15) return thread.substr(6);
  return std::nullopt;
}

std::optional<std::string> Provenance::fail2ban_jail_of_writer(const WrapperOpen& writer, const std::string& address) {
  const std::string& thread = writer.parent_thread;
  const bool fail2ban = thread.rfind("f2b/", 0) == 0 || writer.parent.comm.rfind("fail2ban", 0) == 0;
  if (!fail2ban) return std::nullopt;
  if (auto jail = fail2ban_jail_from_thread(writer)) return jail;
  // Ask fail2ban which jail banned the address: `banned IP` answers [['jail', ...]].
  const auto answer =
      access_->run({"fail2ban-client", "-s", fail2ban_socket(writer.parent.pid, *access_), "banned", address});
  if (!answer) return std::nullopt;
  const auto open = answer->find("'"), close = open == std::string::npos ? open : answer->find("'", open + 1);
  if (close == std::string::npos) return std::nullopt;
  return answer->substr(open + 1, close - open - 1);
}

std::string Provenance::mount_root(uint32_t mnt_ns, uint32_t hint_pid) {
  auto in_ns = [&](const std::string& pid) {
    const auto st = access_->stat_file("/proc/" + pid + "/ns/mnt");
    return st && st->st_ino == mnt_ns;
  };
  if (hint_pid && in_ns(std::to_string(hint_pid))) return "/proc/" + std::to_string(hint_pid) + "/root";
  std::string found;
  if (DIR* dir = opendir("/proc")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9' && in_ns(entry->d_name)) {
        found = std::string("/proc/") + entry->d_name + "/root";
        break;
      }
    }
    closedir(dir);
  }
  return found;
}

bool RulesetRereads::should_read(bool have_snapshot, uint64_t snapshot_ns, uint64_t drop_ns, uint64_t now_ns) {
  if (refilled_ns_ == 0) refilled_ns_ = now_ns;
  if (now_ns > refilled_ns_) {
    tokens_ = std::min(kBurst, tokens_ + static_cast<double>(now_ns - refilled_ns_) / 1e9);
    refilled_ns_ = now_ns;
  }
  if (have_snapshot && snapshot_ns >= drop_ns) return false;  // taken after the drop: current enough
  if (have_snapshot && tokens_ < 1) return false;                // storm: the older snapshot serves
  tokens_ = std::max(0.0, tokens_ - 1);
  return true;
}

std::optional<FirewallRule> Provenance::dropping_rule(const TcpEvent& drop, const std::string& hook, uint64_t now_ns) {
  Snapshot& snapshot = rulesets_[drop.netns];
  if (snapshot.rereads.should_read(snapshot.rulesets.has_value(), snapshot.read_ns, drop.monotonic_ns, now_ns)) {
    snapshot.rulesets.emplace(read_rulesets(drop.netns, *access_));
    snapshot.read_ns = now_ns;
  }
  auto rule = snapshot.rulesets->find_dropping_rule(packet_facts(drop, hook));
  if (rulesets_.size() > 4096) rulesets_.clear();  // bounded: namespaces come and go
  return rule;
}

}  // namespace rsttrace
