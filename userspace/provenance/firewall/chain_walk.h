// What walking one chain with a packet yields, for the nft and iptables walkers.
#pragma once

#include <optional>
#include <string>

#include "attribute/blockers.h"
#include "provenance/firewall/limits.h"

namespace rsttrace::firewall {

// What a rule does when it matches. Unknown: a statement or target that may
// end the walk or not (a verdict map, a queue, a target rsttrace does not know).
enum class Action { None, Drop, Reject, Accept, Return, Jump, Goto, Unknown };

struct Outcome {
  enum Kind { Continue, Accepted, Dropped } kind = Continue;
  std::optional<FirewallRule> rule;
  std::optional<FirewallRule> candidate;  // a drop whose matches could not all be evaluated
  bool budget_spent = false;              // the walk stopped at kWalkBudget rules: rules further on were not read
};

// Why a candidate found by a walk that ran out of budget is doubted further.
inline std::string budget_note() {
  return "the walk stopped after " + std::to_string(kWalkBudget) + " rules (jumps fan out): rules further on were not read";
}

// One packet's walk: the rules it may still look at, and why a drop found
// further on would not be certain. A rule whose matches are undecided and
// whose verdict ends or diverts the walk (accept, return, goto, a jump into a
// chain that decides) leaves the rest of its base chain in doubt; an undecided
// drop leaves everything after it in doubt (the packet may have ended there).
struct WalkState {
  int budget;
  std::string drop_doubt;   // the first undecided drop passed
  std::string chain_doubt;  // the first undecided turn in this base chain (reset per base chain)

  const std::string& doubt() const { return drop_doubt.empty() ? chain_doubt : drop_doubt; }
  static void note(std::string& doubt, const std::string& why) {
    if (doubt.empty()) doubt = why;
  }
};

// A rule found under doubt is a candidate, named with the doubt.
inline FirewallRule doubted(FirewallRule rule, const std::string& why) {
  if (!why.empty()) {
    rule.certain = false;
    if (rule.undecided.empty()) rule.undecided = why;
  }
  return rule;
}

}  // namespace rsttrace::firewall
