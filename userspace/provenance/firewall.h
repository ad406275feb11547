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
#include <map>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attribute/blockers.h"
#include "privsep/system_access.h"

namespace rsttrace {

// Conntrack's entry for the packet when it was dropped (bpf: skb->_nfct). The
// state is what a ct state / --ctstate match saw in every chain after
// conntrack's own hook (priority -200); chains before it (raw) saw none.
struct ConntrackFacts {
  enum class State { Invalid, New, Established, Related, Untracked } state = State::Invalid;
  bool reply = false;                        // the packet travels in the reply direction
  uint32_t status = 0;                       // IPS_* bits (IPS_SRC_NAT 1 << 4, IPS_DST_NAT 1 << 5)
  std::array<uint8_t, 16> original_daddr{};  // the original tuple's destination: before DNAT
  uint16_t original_dport = 0;
};

// What a rule can be asked about the packet. Every optional is kernel
// evidence taken at the drop; absent, the matches that need it are undecided.
namespace firewall {
struct Ipset;
}

struct PacketFacts {
  int family = 4;  // 4 or 6
  std::array<uint8_t, 16> saddr{}, daddr{};
  uint16_t sport = 0, dport = 0;
  std::string hook;  // "prerouting" | "input" | "output"
  std::optional<uint8_t> tcp_flags;             // the TCP header's flags byte
  std::optional<ConntrackFacts> conntrack;      // none: the kernel did not say (not read, no conntrack field)
  std::optional<uint32_t> mark;                 // skb->mark at the drop
  std::optional<std::string> in_interface;      // the receiving device's name at the drop
  std::optional<uint8_t> route_type;            // RTN_* of its IPv4 input route (addrtype, fib ... type)
  // The namespace's ipsets (firewall/ipsets.h), set by the walk: -m set asks them.
  const std::map<std::string, firewall::Ipset>* ipsets = nullptr;
};

// FirewallRule: attribute/blockers.h (plain data the report carries).

// ufw's rule files (/etc/ufw/user.rules, user6.rules) of a mount namespace.
struct UfwFiles {
  std::string user_rules, user6_rules;
};

// A firewalld zone's permanent configuration (/etc/firewalld/zones/ZONE.xml)
// as a mount namespace has it: what survives `firewall-cmd --reload`.
struct FirewalldZoneFile {
  std::string zone, xml;
};

// The texts the tools print, for one network namespace.
struct Rulesets {
  std::string nft_json;           // nft -j -a list ruleset
  std::string nft_text;           // nft -a list ruleset
  std::string iptables_nft;       // iptables-nft-save -c (+ ip6tables-nft-save -c)
  std::string iptables_legacy;    // iptables-legacy-save -c (+ ip6tables-legacy-save -c)
  std::vector<UfwFiles> ufw;      // ufw's rule files of the mount namespaces in it, when it has ufw chains
  std::string ipsets;             // ipset save, when a rule tests a set
  std::optional<int> nft_crashed;  // the signal that killed this host's nft reading the ruleset
  std::string nft_netlink;         // then: nf_tables dumped over netlink (firewall/nft_netlink.h)
  std::vector<FirewalldZoneFile> firewalld_zones;  // firewalld's zone files there, when it has firewalld's table
  std::vector<FirewalldZoneFile> firewalld_policies;  // its policy files (/etc/firewalld/policies/P.xml; `zone` is P)
};

// What the detail says when this host's nft crashed reading a namespace's ruleset.
std::string nft_crash_note(int signal);

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
  // Why the nftables ruleset could not be read with nft (it crashed), or "".
  const std::string& reader_failure() const;
  // The counter of the rule at the same place (handle, or chain and position) with the same text, if any.
  std::optional<uint64_t> counter_of(const FirewallRule& rule) const;

 private:
  std::optional<FirewallRule> walk_rulesets(const PacketFacts& asked) const;
  std::optional<uint64_t> ufw_number(const FirewallRule& rule) const;
  std::optional<std::string> set_element(const FirewallRule& rule, const PacketFacts& packet) const;
  void add_firewalld_zone(FirewallRule& rule, const PacketFacts& packet) const;
  struct Parsed;
  std::unique_ptr<Parsed> parsed_;
};

std::optional<FirewallRule> find_dropping_rule(const Rulesets& rulesets, const PacketFacts& packet);

// `rule` (from a reading after the drop) against the same rule in a reading
// taken before it (same chain, same place or handle, same text): its counter
// moved (counter_moved true), or did not, and then it did not take this
// packet: not certain. Nothing is said without a counter on both sides.
void corroborate_with_counters(FirewallRule& rule, const RulesetIndex& before);

// Reads the rulesets of network namespace `inode` with nft and iptables-save
// (entered with nsenter). Empty texts where a tool is missing or fails.
Rulesets read_rulesets(uint32_t netns_inode, SystemAccess& access);

// fail2ban's names: iptables chains f2b-<jail>, nftables sets addr-set-<jail>.
std::optional<std::string> fail2ban_jail_of(const std::string& chain_or_set);

// The front-end whose names the rule bears (firewall/front_ends.cpp).
std::optional<Blocker> blocker_of(const FirewallRule& rule);

// firewalld 2's zone dispatch (chain filter_INPUT_POLICIES): a zone's own
// drop or reject follows the jump into the zone with the same matches
// (`ip saddr S jump filter_IN_drop`, then `ip saddr S drop`). The zone, when
// `previous` (the rule before `text` in its chain) is that jump.
std::optional<std::string> firewalld_dispatch_zone(const std::string& text, const std::string& previous);

// firewalld's policies to HOST render as chains filter_IN_policy_<P> (their
// own target) and filter_IN_policy_<P>_{pre,log,deny,allow,post} (their rich
// rules...); a zone named policy_<P> renders as the same names, and <P> may
// itself end in _deny. The names the chain could stand for: the rest after
// filter_IN_policy_, and that less a part's suffix. None for another chain.
std::vector<std::string> firewalld_policy_candidates(const std::string& chain);

// Whose a filter_IN_policy_ chain is, when exactly one of its readings has a
// file: a policy <P> (/etc/firewalld/policies/<P>.xml in `policies`) or a zone
// policy_<P> (/etc/firewalld/zones/policy_<P>.xml in `zones`); firewalld makes
// policies only permanently, so a policy of its making has its file. Nullopt
// when none or several do: ambiguous, the chain names itself, never a policy.
struct FirewalldOwner {
  std::string name;    // the blocker's name: "policy P", or the zone "policy_P"
  std::string policy;  // P, for a policy; "" for a zone
  bool rich = false;   // the rule is in a part chain (a rich rule's), not the owner's own target
};
std::optional<FirewalldOwner> firewalld_policy_owner(const std::string& chain,
                                                     const std::vector<FirewalldZoneFile>& policies,
                                                     const std::vector<FirewalldZoneFile>& zones);

// Whether a policy's file holds the block: the client as the source of a rich
// rule that drops or rejects (`owner.rich`), or its own target REJECT or DROP.
// Nullopt for a zone, or when no file of the policy was read.
std::optional<bool> firewalld_policy_permanent(const std::vector<FirewalldZoneFile>& policies,
                                               const FirewalldOwner& owner, const std::string& address);

// Whether firewalld's permanent configuration holds the block too: a zone
// file of `zone` lists `address` as a source of the zone (`rich` false) or as
// the source of a rich rule that drops or rejects (`rich` true). Nullopt when
// no file of the zone was read (none written: the zone is as shipped).
std::optional<bool> firewalld_permanent(const std::vector<FirewalldZoneFile>& files, const std::string& zone,
                                        const std::string& address, bool rich);

// The number `ufw status numbered` gives the rule at `position` (0-based) of
// ufw chain `chain` (ufw-user-input...): each `### tuple ###` of user.rules is
// one, then user6.rules'. Nullopt unless the file's -A lines for the chain are
// the live chain's, in number and targets (`live_targets`): a file not loaded,
// or another namespace's, names no rule.
std::optional<uint64_t> ufw_rule_number(const UfwFiles& files, int family, const std::string& chain, size_t position,
                                        const std::vector<std::string>& live_targets);

}  // namespace rsttrace
