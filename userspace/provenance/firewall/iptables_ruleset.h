// iptables rulesets, from `iptables-save -c` (iptables-nft or -legacy, IPv4
// and IPv6 concatenated): parsed once, walked per packet like netfilter does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "provenance/firewall.h"
#include "provenance/firewall/chain_walk.h"
#include "provenance/tristate.h"

namespace rsttrace::firewall {

struct IptRule {
  std::string table, chain, spec;  // spec: the line as iptables-save wrote it, after the counters
  std::vector<std::string> args;
  uint64_t packets = 0;
  int family = 4;
};

struct IptRuleset {
  std::map<std::string, std::vector<IptRule>> chains;  // family/table/chain
  std::map<std::string, std::string> policies;
  std::vector<std::string> notes;  // lines skipped, and why
  bool sets_marks = false;         // some rule's target sets a mark: the mark at the drop is not what earlier rules saw
};

// One rule read against a packet: its target, and the first match it could not decide.
struct IptRuleReading {
  std::string target;  // after -j or -g; "" for none
  bool is_goto = false;
  std::string undecided;
};

// The rule's matches against the packet (Maybe: one could not be decided,
// named in `reading.undecided`). Also for iptables-nft rules nft shows as xt.
Match ipt_rule_matches(const IptRule& rule, const PacketFacts& packet, IptRuleReading& reading);

// Targets that let the packet go on to the next rule (LOG, MARK...): a match
// before them decides nothing. Also nft's xt targets.
bool target_continues(std::string_view target);

// The key of `chains` and `policies`: "4/filter/INPUT".
std::string ipt_chain_key(int family, const std::string& table, const std::string& chain);

// Total and bounded: what cannot be read is skipped with a note (`source`
// names the tool in it, e.g. "iptables-nft-save").
IptRuleset parse_iptables_save(std::string_view text, const std::string& source);

// The packet through the hook's chains in netfilter's order (raw, mangle,
// filter), jumps followed, on one budget. `backend` names the rules found.
Outcome walk_iptables(const IptRuleset& ruleset, const PacketFacts& packet, const std::string& backend);

}  // namespace rsttrace::firewall
