#include "provenance/provenance.h"

#include <dirent.h>
#include <sys/stat.h>

#include <string>

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

std::string Provenance::mount_root(uint32_t mnt_ns, uint32_t hint_pid) {
  struct stat st {};
  auto in_ns = [&](const std::string& pid) {
    return stat(("/proc/" + pid + "/ns/mnt").c_str(), &st) == 0 && st.st_ino == mnt_ns;
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

std::optional<FirewallRule> Provenance::dropping_rule(const TcpEvent& drop, const std::string& hook, uint64_t now_ns) {
  Snapshot& snapshot = rulesets_[drop.netns];
  if (snapshot.read_ns == 0 || now_ns - snapshot.read_ns > 1'000'000'000ULL) {
    snapshot.rulesets = read_rulesets(drop.netns);
    snapshot.read_ns = now_ns;
  }
  if (rulesets_.size() > 4096) rulesets_.clear();  // bounded: namespaces come and go
  return find_dropping_rule(snapshot.rulesets, packet_facts(drop, hook));
}

}  // namespace rsttrace
