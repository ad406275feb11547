// Who and what is behind a block: the firewall rule (and fail2ban jail) for a
// firewall verdict, the hosts.allow/hosts.deny line and its writer for a TCP
// wrappers verdict. Reads the system's own state; never changes it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "attribute/sshd_limits.h"
#include "collect/tcp_event.h"
#include "privsep/system_access.h"
#include "provenance/firewall.h"

namespace rsttrace {

// When to read a namespace's rulesets again. A snapshot taken before a drop
// happened may miss a rule loaded since (fail2ban bans, `nft -f` reloads), so
// it is read again, but a drop storm must not become an nft storm: re-reads
// spend tokens from a bucket of 4 that refills one per second.
class RulesetRereads {
 public:
  // drop_ns: when the kernel dropped the packet; now_ns: CLOCK_MONOTONIC now.
  bool should_read(bool have_snapshot, uint64_t snapshot_ns, uint64_t drop_ns, uint64_t now_ns);

 private:
  static constexpr double kBurst = 4;
  double tokens_ = kBurst;
  uint64_t refilled_ns_ = 0;
};

// The limits of the listening sshd `pid` from its `sshd -T`, run through
// `access` (the broker's checks, cache and rate: privsep/sshd_test_mode.h),
// or the defaults and why not. The collector's verdicts and `rsttrace
// explain` both read them here.
SshdLimitsSource read_sshd_limits(SystemAccess& access, uint32_t pid);

class Provenance {
 public:
  // Reads the system directly until use() hands it the privileged broker.
  Provenance();
  void use(SystemAccess& access) { access_ = &access; }
  SystemAccess& access() { return *access_; }

  // The rule that dropped `drop` at `hook`, from a snapshot of the
  // namespace's rulesets taken after the drop where RulesetRereads allows.
  // now_ns: CLOCK_MONOTONIC now, not the event's time (groups are judged out of order).
  std::optional<FirewallRule> dropping_rule(const TcpEvent& drop, const std::string& hook, uint64_t now_ns);
  // Why the last reading of namespace `netns`'s nftables ruleset failed (this host's nft crashed), or "".
  std::string ruleset_reader_failure(uint32_t netns) const;

  // The fail2ban jail that banned `address`, when `writer` (who wrote
  // hosts.deny) was started by fail2ban: its action threads are named
  // f2b/a.<jail>; a name cut at 15 bytes is asked of fail2ban-client at
  // fail2ban's fixed socket, when the writer wrote this mount namespace's
  // hosts.deny. Never for a writer in a user namespace of its own.
  std::optional<std::string> fail2ban_jail_of_writer(const WrapperOpen& writer, const std::string& address);
  // The jail when the writer's parent thread name says it whole (f2b/a.<jail>).
  static std::optional<std::string> fail2ban_jail_from_thread(const WrapperOpen& writer);

  // rsttrace's own user namespace (the initial one): a process in another
  // one is a user speaking for itself.
  uint32_t host_user_ns() const { return host_user_ns_; }

  // The limits of the listening sshd `pid` from its `sshd -T` (run by the
  // broker, which caches and rate-limits it), or the defaults and why not.
  SshdLimitsSource sshd_limits(uint32_t pid);

  // Where mount namespace `mnt_ns`'s files are reachable from here
  // (/proc/PID/root of a process in it; `hint` is tried first), or "".
  std::string mount_root(uint32_t mnt_ns, uint32_t hint_pid);

 private:
  struct Snapshot {
    uint64_t read_ns = 0;
    std::optional<RulesetIndex> rulesets;
    uint64_t previous_read_ns = 0;  // the reading before it: counters before and after a drop
    std::optional<RulesetIndex> previous;
    RulesetRereads rereads;
  };
  std::map<uint32_t, Snapshot> rulesets_;  // by netns inode
  DirectAccess direct_;
  SystemAccess* access_;
  uint32_t host_user_ns_;
  uint32_t host_mnt_ns_;
};

PacketFacts packet_facts(const TcpEvent& drop, const std::string& hook);

}  // namespace rsttrace
