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

class IptWalker {
 public:
  IptWalker(const IptRuleset& ruleset, const PacketFacts& packet, std::string backend)
      : ruleset_(ruleset), packet_(packet), backend_(std::move(backend)) {
    // The mark at the drop is the one every rule saw only if no rule set it.
    if (ruleset_.sets_marks) packet_.mark.reset();
  }

  // The hook's chains in netfilter's order: raw, mangle, filter.
  Outcome run() {
    const std::string chain = packet_.hook == "prerouting" ? "PREROUTING" : packet_.hook == "input" ? "INPUT" : "OUTPUT";
    Outcome last;
    WalkState state{kWalkBudget, {}, {}};
    const std::optional<ConntrackFacts> conntrack = packet_.conntrack;
    for (const char* table : {"raw", "mangle", "filter"}) {
      const std::string key = ipt_chain_key(packet_.family, table, chain);
      const auto policy = ruleset_.policies.find(key);
      if (policy == ruleset_.policies.end()) continue;
      // raw runs before conntrack (priority -300 < -200): no state yet.
      packet_.conntrack = std::string_view(table) == "raw" ? std::nullopt : conntrack;
      state.chain_doubt.clear();
      Outcome outcome = walk(key, state, 0);
      if (!last.candidate) last.candidate = outcome.candidate;
      if (outcome.kind == Outcome::Dropped) {
        outcome.candidate = last.candidate;
        return outcome;
      }
      if (state.budget < 0) {  // out of budget: the walk did not finish, a policy cannot be told
        last.budget_spent = true;
        return last;
      }
      if (outcome.kind == Outcome::Continue && policy->second == "DROP") {
        outcome.kind = Outcome::Dropped;
        outcome.rule = doubted(FirewallRule{backend_, packet_.family == 4 ? "ip" : "ip6", table, chain, std::nullopt,
                                            ":" + chain + " DROP", "policy drop"},
                               state.doubt());
        outcome.candidate = last.candidate;
        return outcome;
      }
    }
    return last;
  }

 private:
  // Whether a chain may end the walk (accept, drop, an unknown target), through
  // its jumps: a rule that maybe jumps into one that cannot changes nothing.
  bool may_decide(const std::string& key, int& budget, int depth) const {
    auto chain = ruleset_.chains.find(key);
    if (chain == ruleset_.chains.end()) return false;
    if (depth > kMaxJumpDepth) return true;
    for (const IptRule& rule : chain->second) {
      if (--budget < 0) return true;
      IptRuleReading reading;
      if (ipt_rule_matches(rule, packet_, reading) == Match::No) continue;
      const std::string& target = reading.target;
      if (target.empty() || target == "RETURN" || target_continues(target)) continue;
      const std::string next = ipt_chain_key(rule.family, rule.table, target);
      if (!ruleset_.chains.count(next) && !ruleset_.policies.count(next)) return true;  // ACCEPT, DROP, QUEUE...
      if (reading.is_goto || may_decide(next, budget, depth + 1)) return true;
    }
    return false;
  }

  // `state.budget`: rules left to look at for this packet (user chains jumped
  // to from many rules fan out exponentially); at 0 the walk stops where it is.
  Outcome walk(const std::string& key, WalkState& state, int depth) const {
    Outcome outcome;
    auto chain = ruleset_.chains.find(key);
    if (chain == ruleset_.chains.end() || depth > kMaxJumpDepth) return outcome;
    for (const IptRule& rule : chain->second) {
      if (--state.budget < 0) return outcome;
      const size_t position = static_cast<size_t>(&rule - chain->second.data());
      IptRuleReading reading;
      const Match match = ipt_rule_matches(rule, packet_, reading);
      const std::string& target = reading.target;
      if (match == Match::No || target.empty() || target_continues(target)) continue;
      const bool terminal_drop = target == "DROP" || target == "REJECT";
      const std::string next = ipt_chain_key(rule.family, rule.table, target);
      const bool to_chain = ruleset_.chains.count(next) || ruleset_.policies.count(next);
      const bool known = terminal_drop || target == "ACCEPT" || target == "RETURN" || to_chain;
      const std::string why = match == Match::Maybe ? reading.undecided + " in " + rule.chain
                                                    : "-j " + target + " (a target not evaluated) in " + rule.chain;
      if (match == Match::Maybe || !known) {
        if (terminal_drop) {
          if (!outcome.candidate) outcome.candidate = doubted(describe(rule, target, position), why);
          WalkState::note(state.drop_doubt, why);
        } else if (to_chain && !reading.is_goto) {
          // Maybe taken: its drops are candidates; the rest of this chain is in doubt only if it may decide.
          WalkState inner_state{state.budget, state.drop_doubt, why};
          Outcome inner = walk(next, inner_state, depth + 1);
          state.budget = inner_state.budget;
          if (!outcome.candidate) outcome.candidate = inner.kind == Outcome::Dropped ? inner.rule : inner.candidate;
          if (inner.kind == Outcome::Dropped) WalkState::note(state.drop_doubt, why);
          // The probe is paid from the packet's budget: many maybe-jumps cannot multiply the cost.
          if (may_decide(next, state.budget, depth + 1)) WalkState::note(state.chain_doubt, why);
        } else {
          WalkState::note(state.chain_doubt, why);  // maybe accepted, returned, gone elsewhere
        }
        if (state.budget < 0) return outcome;
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = doubted(describe(rule, target, position), state.doubt());
        return outcome;
      }
      if (target == "ACCEPT") {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (target == "RETURN") return outcome;
      Outcome inner = walk(next, state, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue || reading.is_goto) {
        inner.candidate = outcome.candidate;
        return inner;
      }
      if (state.budget < 0) return outcome;
    }
    return outcome;
  }

  FirewallRule describe(const IptRule& rule, const std::string& target, size_t position) const {
    FirewallRule out{backend_, rule.family == 4 ? "ip" : "ip6", rule.table, rule.chain, std::nullopt, rule.spec,
                     target == "REJECT" ? "reject" : "drop"};
    out.packets = rule.packets;
    out.position = position;
    out.fail2ban_jail = fail2ban_jail_of(rule.chain);
    return out;
  }

  const IptRuleset& ruleset_;
  PacketFacts packet_;  // a copy: what each table saw differs (conntrack before and after raw)
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
      for (size_t i = 2; i + 1 < rule.args.size(); ++i)
        if ((rule.args[i] == "-j" || rule.args[i] == "--jump") &&
            (rule.args[i + 1] == "MARK" || rule.args[i + 1] == "CONNMARK"))
          ruleset.sets_marks = true;
      ruleset.chains[ipt_chain_key(family, table, rule.chain)].push_back(std::move(rule));
    }
  }
  return ruleset;
}

Outcome walk_iptables(const IptRuleset& ruleset, const PacketFacts& packet, const std::string& backend) {
  IptWalker walker(ruleset, packet, backend);
  return walker.run();
}

}  // namespace rsttrace::firewall
