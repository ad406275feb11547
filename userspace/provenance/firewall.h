// Which netfilter rule dropped a packet, read from the namespace's own
// rulesets (never changed): nftables (also iptables-nft, which lives in
// nf_tables) and iptables-legacy. The rules are walked like netfilter does,
// base chains by priority, jumps and returns followed, with the packet's
// facts; the first rule that surely drops or rejects it is reported.
//
// Units: firewall/nft_ruleset and firewall/iptables_ruleset parse and walk
// each tool's ruleset (a new kind of match goes in their tables: nft's
// statement and left-side readers, iptables' kMatchOptions), on the shared
// firewall/field_matches, firewall/limits and provenance/tristate.h.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attribute/blockers.h"
#include "privsep/system_access.h"

namespace rsttrace {

struct PacketFacts {
  int family = 4;  // 4 or 6
  std::array<uint8_t, 16> saddr{}, daddr{};
  uint16_t sport = 0, dport = 0;
  std::string hook;  // "prerouting" | "input" | "output"
  bool syn = false;  // a connection's first packet: conntrack state "new"
};

// FirewallRule: attribute/blockers.h (plain data the report carries).

// The texts the tools print, for one network namespace.
struct Rulesets {
  std::string nft_json;           // nft -j -a list ruleset
  std::string nft_text;           // nft -a list ruleset
  std::string iptables_nft;       // iptables-nft-save -c (+ ip6tables-nft-save -c)
  std::string iptables_legacy;    // iptables-legacy-save -c (+ ip6tables-legacy-save -c)
};

// The rulesets parsed once, asked for many packets (a drop storm asks often).
// The texts come from a namespace's owner (any user can make one): parsing is
// total and bounded (text size, nesting, rule count; rules looked at per
// packet), never throws, and skips what it cannot read with a note.
class RulesetIndex {
 public:
  explicit RulesetIndex(const Rulesets& rulesets);
  ~RulesetIndex();
  RulesetIndex(RulesetIndex&&) noexcept;
  RulesetIndex& operator=(RulesetIndex&&) noexcept;
  std::optional<FirewallRule> find_dropping_rule(const PacketFacts& packet) const;
  // What parsing skipped and why (e.g. "iptables-nft-save line 7: a counter without a rule: skipped").
  const std::vector<std::string>& notes() const;

 private:
  std::optional<FirewallRule> walk_rulesets(const PacketFacts& packet) const;
  struct Parsed;
  std::unique_ptr<Parsed> parsed_;
};

std::optional<FirewallRule> find_dropping_rule(const Rulesets& rulesets, const PacketFacts& packet);

// Reads the rulesets of network namespace `inode` with nft and iptables-save
// (entered with nsenter). Empty texts where a tool is missing or fails.
Rulesets read_rulesets(uint32_t netns_inode, SystemAccess& access);

// fail2ban's names: iptables chains f2b-<jail>, nftables sets addr-set-<jail>.
std::optional<std::string> fail2ban_jail_of(const std::string& chain_or_set);

}  // namespace rsttrace
