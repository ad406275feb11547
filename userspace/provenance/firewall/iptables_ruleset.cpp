#include "provenance/firewall/iptables_ruleset.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "provenance/firewall/field_matches.h"
#include "provenance/firewall/limits.h"
#include "provenance/tristate.h"

namespace rsttrace::firewall {
namespace {

// iptables-save quotes an argument with spaces ("...") and escapes `"` and `\`
// inside it with a backslash. Nullopt: a quote left open.
std::optional<std::vector<std::string>> split_args(std::string_view text) {
  std::vector<std::string> args;
  std::string current;
  bool quoted = false, have = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '\\' && i + 1 < text.size()) {
      current += text[++i];
    } else if (c == '"') {
      quoted = !quoted;
      have = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (have) args.push_back(current);
      current.clear();
      have = false;
    } else {
      current += c;
      have = true;
    }
  }
  if (quoted) return std::nullopt;
  if (have) args.push_back(current);
  return args;
}

// ---- match options: one function per kind ------------------------------
// Each gets the option as written and its value; nullopt: the option takes no
// part in matching (a comment). A new match goes in kMatchOptions below.

Match protocol_match(std::string_view, const std::string& protocol, const PacketFacts&) {
  return match_of(protocol == "tcp" || protocol == "6" || protocol == "all");
}

// -s/-d a,b,c: any of the addresses.
Match address_list_match(std::string_view option, const std::string& pattern, const PacketFacts& packet) {
  const bool source = option == "-s" || option == "--source";
  Match any = Match::No;
  for (size_t start = 0; start <= pattern.size();) {
    const size_t comma = pattern.find(',', start);
    any = either(any, address_matches(pattern.substr(start, comma - start), packet.family,
                                      source ? packet.saddr : packet.daddr));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return any;
}

// rsttrace does not know the packet's interfaces.
Match interface_match(std::string_view, const std::string&, const PacketFacts&) { return Match::Maybe; }

// -m tcp --dport/--sport: one port or a range.
Match port_match(std::string_view option, const std::string& spec, const PacketFacts& packet) {
  const bool dest = option == "--dport" || option == "--destination-port";
  return port_matches(spec, dest ? packet.dport : packet.sport);
}

// -m multiport --dports/--sports/--ports a,b:c: an unreadable port matches nothing.
Match port_list_match(std::string_view option, const std::string& list, const PacketFacts& packet) {
  Match any = Match::No;
  for (size_t start = 0; start <= list.size();) {
    const size_t comma = list.find(',', start);
    const std::string port = list.substr(start, comma - start);
    if (option == "--ports") {
      if (port_matches(port, packet.dport) == Match::Yes || port_matches(port, packet.sport) == Match::Yes)
        any = Match::Yes;
    } else if (port_matches(port, option == "--dports" ? packet.dport : packet.sport) == Match::Yes) {
      any = Match::Yes;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return any;
}

// -m conntrack --ctstate / -m state --state: a first packet is NEW, others ESTABLISHED.
Match conntrack_state_match(std::string_view, const std::string& states, const PacketFacts& packet) {
  return match_of(states.find(packet.syn ? "NEW" : "ESTABLISHED") != std::string::npos);
}

struct MatchOption {
  std::string_view name;
  std::string_view module;  // the -m module that provides it; "": built in
  std::optional<Match> (*match)(std::string_view option, const std::string& value, const PacketFacts& packet);
};

template <Match (*F)(std::string_view, const std::string&, const PacketFacts&)>
std::optional<Match> decides(std::string_view option, const std::string& value, const PacketFacts& packet) {
  return F(option, value, packet);
}

std::optional<Match> ignored(std::string_view, const std::string&, const PacketFacts&) { return std::nullopt; }

// Every option evaluated, each taking one value. An -m module not listed here
// cannot be decided, nor can an option not listed (it is read as a flag).
constexpr MatchOption kMatchOptions[] = {
    {"-p", "", decides<protocol_match>},
    {"--protocol", "", decides<protocol_match>},
    {"-s", "", decides<address_list_match>},
    {"--source", "", decides<address_list_match>},
    {"-d", "", decides<address_list_match>},
    {"--destination", "", decides<address_list_match>},
    {"-i", "", decides<interface_match>},
    {"--in-interface", "", decides<interface_match>},
    {"-o", "", decides<interface_match>},
    {"--out-interface", "", decides<interface_match>},
    {"--dport", "tcp", decides<port_match>},
    {"--destination-port", "tcp", decides<port_match>},
    {"--sport", "tcp", decides<port_match>},
    {"--source-port", "tcp", decides<port_match>},
    {"--dports", "multiport", decides<port_list_match>},
    {"--sports", "multiport", decides<port_list_match>},
    {"--ports", "multiport", decides<port_list_match>},
    {"--ctstate", "conntrack", decides<conntrack_state_match>},
    {"--state", "state", decides<conntrack_state_match>},
    {"--comment", "comment", ignored},
};

const MatchOption* match_option(std::string_view name) {
  for (const MatchOption& option : kMatchOptions)
    if (option.name == name) return &option;
  return nullptr;
}

bool module_known(std::string_view module) {
  return !module.empty() && std::any_of(std::begin(kMatchOptions), std::end(kMatchOptions),
                                        [&](const MatchOption& option) { return option.module == module; });
}

// The rule's matches against the packet; its -j target in `target`.
Match rule_matches(const IptRule& rule, const PacketFacts& packet, std::string& target) {
  Match result = Match::Yes;
  const auto& a = rule.args;
  bool negated = false;
  for (size_t i = 2; i < a.size(); ++i) {
    const std::string& opt = a[i];
    auto next = [&]() -> std::string { return i + 1 < a.size() ? a[++i] : ""; };
    auto apply = [&](Match m) {
      result = both(result, negated ? negate(m) : m);
      negated = false;
    };
    if (opt == "!") {
      negated = true;
    } else if (opt == "-m" || opt == "--match") {
      if (!module_known(next())) apply(Match::Maybe);
    } else if (opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto") {
      target = next();
      break;  // target options follow
    } else if (const MatchOption* option = match_option(opt)) {
      const std::string value = next();
      if (const auto m = option->match(opt, value, packet)) apply(*m);
    } else if (opt.rfind("-", 0) == 0) {
      apply(Match::Maybe);  // an option not evaluated here
    }
  }
  return result;
}

class IptWalker {
 public:
  IptWalker(const IptRuleset& ruleset, const PacketFacts& packet, std::string backend)
      : ruleset_(ruleset), packet_(packet), backend_(std::move(backend)) {}

  // The hook's chains in netfilter's order: raw, mangle, filter.
  Outcome run() const {
    const std::string chain = packet_.hook == "prerouting" ? "PREROUTING" : packet_.hook == "input" ? "INPUT" : "OUTPUT";
    Outcome last;
    int budget = kWalkBudget;
    for (const char* table : {"raw", "mangle", "filter"}) {
      const std::string key = ipt_chain_key(packet_.family, table, chain);
      const auto policy = ruleset_.policies.find(key);
      if (policy == ruleset_.policies.end()) continue;
      Outcome outcome = walk(key, budget, 0);
      if (!last.candidate) last.candidate = outcome.candidate;
      if (outcome.kind == Outcome::Dropped) return outcome;
      if (budget < 0) return last;  // out of budget: the walk did not finish, a policy cannot be told
      if (outcome.kind == Outcome::Continue && policy->second == "DROP") {
        outcome.kind = Outcome::Dropped;
        outcome.rule = FirewallRule{backend_, packet_.family == 4 ? "ip" : "ip6", table, chain, std::nullopt,
                                    ":" + chain + " DROP", "policy drop"};
        return outcome;
      }
    }
    return last;
  }

 private:
  // `budget`: rules left to look at for this packet (user chains jumped to
  // from many rules fan out exponentially); at 0 the walk stops where it is.
  Outcome walk(const std::string& key, int& budget, int depth) const {
    Outcome outcome;
    auto chain = ruleset_.chains.find(key);
    if (chain == ruleset_.chains.end() || depth > kMaxJumpDepth) return outcome;
    for (const IptRule& rule : chain->second) {
      if (--budget < 0) return outcome;
      std::string target;
      const Match match = rule_matches(rule, packet_, target);
      if (match == Match::No || target.empty()) continue;
      const bool terminal_drop = target == "DROP" || target == "REJECT";
      if (match == Match::Maybe) {
        if (terminal_drop && !outcome.candidate) outcome.candidate = describe(rule, target, false);
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = describe(rule, target, true);
        return outcome;
      }
      if (target == "ACCEPT") {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (target == "RETURN") return outcome;
      const std::string next = ipt_chain_key(rule.family, rule.table, target);
      if (!ruleset_.chains.count(next) && !ruleset_.policies.count(next)) continue;  // LOG and other targets
      Outcome inner = walk(next, budget, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue) {
        inner.candidate = outcome.candidate;
        return inner;
      }
      if (budget < 0) return outcome;
    }
    return outcome;
  }

  FirewallRule describe(const IptRule& rule, const std::string& target, bool certain) const {
    FirewallRule out{backend_, rule.family == 4 ? "ip" : "ip6", rule.table, rule.chain, std::nullopt, rule.spec,
                     target == "REJECT" ? "reject" : "drop"};
    out.packets = rule.packets;
    out.certain = certain;
    out.fail2ban_jail = fail2ban_jail_of(rule.chain);
    return out;
  }

  const IptRuleset& ruleset_;
  const PacketFacts& packet_;
  std::string backend_;
};

}  // namespace

std::string ipt_chain_key(int family, const std::string& table, const std::string& chain) {
  return std::to_string(family) + "/" + table + "/" + chain;
}

// `iptables-save -c`: "[packets:bytes] -A CHAIN ...". A comment may hold
// newlines, which iptables-save prints as they are: a rule whose quote is
// still open continues on the next line.
IptRuleset parse_iptables_save(std::string_view text, const std::string& source) {
  IptRuleset ruleset;
  if (text.size() > kMaxRulesetText) {
    ruleset.notes.push_back(source + ": larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
    return ruleset;
  }
  std::string table;
  int family = 4;
  size_t rules = 0, number = 0, pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    return true;
  };
  std::string_view line;
  while (next_line(line)) {
    if (line.rfind("# Generated by ip6tables", 0) == 0) family = 6;
    else if (line.rfind("# Generated by iptables", 0) == 0) family = 4;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = source + " line " + std::to_string(number);
    if (line[0] == '*') {
      table = std::string(line.substr(1));
    } else if (line[0] == ':') {
      const auto words = split_args(line.substr(1));
      if (!words || words->size() < 2) {
        ruleset.notes.push_back(where + ": a chain without a policy: skipped");
        continue;
      }
      ruleset.policies[ipt_chain_key(family, table, (*words)[0])] = (*words)[1];
    } else if (line[0] == '[') {
      const size_t close = line.find(']');
      if (close == std::string_view::npos || close + 2 > line.size()) {
        ruleset.notes.push_back(where + ": a counter without a rule: skipped");
        continue;
      }
      IptRule rule;
      rule.packets = static_cast<uint64_t>(small_number(line.substr(1, std::min(line.find(':'), close) - 1),
                                                        std::numeric_limits<long>::max()).value_or(0));
      rule.spec = std::string(line.substr(close + 2));
      auto args = split_args(rule.spec);
      if (rule.spec.size() > kMaxRuleText) {
        ruleset.notes.push_back(where + ": longer than " + std::to_string(kMaxRuleText) + " bytes: skipped");
        continue;
      }
      for (size_t joined = 0; !args && joined < kMaxCommentLines && rule.spec.size() <= kMaxRuleText && next_line(line);
           ++joined) {
        rule.spec += "\n";
        rule.spec += line;
        args = split_args(rule.spec);
      }
      if (!args) {
        ruleset.notes.push_back(where + ": a quote is never closed: the rest is skipped");
        break;
      }
      if (args->size() < 2 || (*args)[0] != "-A") continue;
      if (++rules > kMaxIptablesRules) {
        ruleset.notes.push_back(source + ": more than " + std::to_string(kMaxIptablesRules) + " rules: the rest is skipped");
        break;
      }
      rule.args = std::move(*args);
      rule.chain = rule.args[1];
      rule.table = table;
      rule.family = family;
      ruleset.chains[ipt_chain_key(family, table, rule.chain)].push_back(std::move(rule));
    }
  }
  return ruleset;
}

Outcome walk_iptables(const IptRuleset& ruleset, const PacketFacts& packet, const std::string& backend) {
  return IptWalker(ruleset, packet, backend).run();
}

}  // namespace rsttrace::firewall
