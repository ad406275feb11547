#include "provenance/provenance.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "privsep/safe_access.h"
#include "provenance/command.h"
#include "text/escape.h"

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
  packet.tcp_flags = drop.tcp_flags;
  if (const auto& evidence = drop.netfilter) {
    using CtState = NetfilterEvidence::CtState;
    if (evidence->ct_state != CtState::Unknown) {
      ConntrackFacts ct;
      static_assert(static_cast<int>(CtState::Untracked) == static_cast<int>(ConntrackFacts::State::Untracked));
      ct.state = static_cast<ConntrackFacts::State>(evidence->ct_state);  // the same order, without Unknown
      ct.reply = evidence->ct_reply;
      ct.status = evidence->ct_status;
      ct.original_daddr = evidence->ct_original_daddr;
      ct.original_dport = evidence->ct_original_dport;
      packet.conntrack = ct;
    }
    packet.mark = evidence->mark;
    if (!evidence->in_interface.empty()) packet.in_interface = evidence->in_interface;
    if (evidence->route_type) packet.route_type = evidence->route_type;
  }
  return packet;
}

uint32_t own_mount_ns() {
  struct stat st {};
  return stat("/proc/self/ns/mnt", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

Provenance::Provenance() : access_(&direct_), host_user_ns_(own_user_ns()), host_mnt_ns_(own_mount_ns()) {}

std::optional<std::string> Provenance::fail2ban_jail_from_thread(const WrapperOpen& writer) {
  const std::string& thread = writer.parent_thread;
  if (thread.rfind("f2b/a.", 0) == 0 && thread.size() < 15) return thread.substr(6);
  return std::nullopt;
}

std::optional<std::string> Provenance::fail2ban_jail_of_writer(const WrapperOpen& writer, const std::string& address) {
  // A writer in a user namespace of its own names its threads as it likes:
  // its word is shown (by the caller), never taken as a jail, never acted on.
  if (writer.user_ns != host_user_ns_) return std::nullopt;
  const std::string& thread = writer.parent_thread;
  const bool fail2ban = thread.rfind("f2b/", 0) == 0 || writer.parent.comm.rfind("fail2ban", 0) == 0;
  if (!fail2ban) return std::nullopt;
  if (auto jail = fail2ban_jail_from_thread(writer)) return jail;
  // Ask fail2ban which jail banned the address: `banned IP` answers [['jail', ...]].
  // Only the fail2ban at its fixed socket in our own mount namespace, and only
  // about a hosts.deny of that namespace: nothing the writer says (its
  // command line, its root) picks the socket; the broker checks the socket's
  // owner and peer before it runs fail2ban-client (privsep/safe_access.h).
  if (writer.mnt_ns != host_mnt_ns_) return std::nullopt;
  const auto answer = access_->run({"fail2ban-client", "-s", kFail2banSocket, "banned", address});
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

std::string Provenance::ruleset_reader_failure(uint32_t netns) const {
  const auto snapshot = rulesets_.find(netns);
  return snapshot != rulesets_.end() && snapshot->second.rulesets ? snapshot->second.rulesets->reader_failure() : "";
}

std::optional<FirewallRule> Provenance::dropping_rule(const TcpEvent& drop, const std::string& hook, uint64_t now_ns) {
  Snapshot& snapshot = rulesets_[drop.netns];
  if (snapshot.rereads.should_read(snapshot.rulesets.has_value(), snapshot.read_ns, drop.monotonic_ns, now_ns)) {
    snapshot.previous = std::move(snapshot.rulesets);
    snapshot.previous_read_ns = snapshot.read_ns;
    snapshot.rulesets.emplace(read_rulesets(drop.netns, *access_));
    snapshot.read_ns = now_ns;
  }
  auto rule = snapshot.rulesets->find_dropping_rule(packet_facts(drop, hook));
  // Corroboration: the rule's counter, read before the drop and after it, must have moved.
  if (rule && snapshot.previous && snapshot.previous_read_ns < drop.monotonic_ns && drop.monotonic_ns < snapshot.read_ns)
    corroborate_with_counters(*rule, *snapshot.previous);
  if (rulesets_.size() > 4096) rulesets_.clear();  // bounded: namespaces come and go
  return rule;
}

SshdLimitsSource read_sshd_limits(SystemAccess& access, uint32_t pid) {
  SshdLimitsSource source;
  const Result<std::string> output = access.sshd_test_output(static_cast<pid_t>(pid));
  if (!output) {
    source.not_run_reason = escape_untrusted(output.reason());
    return source;
  }
  Result<SshdLimits> limits = parse_sshd_limits(*output);
  if (!limits) {
    source.not_run_reason = escape_untrusted(limits.reason());
    return source;
  }
  source.limits = std::move(*limits);
  source.from_sshd = true;
  return source;
}

SshdLimitsSource Provenance::sshd_limits(uint32_t pid) { return read_sshd_limits(*access_, pid); }

}  // namespace rsttrace
