// What walking one chain with a packet yields, for the nft and iptables walkers.
#pragma once

#include <optional>

#include "attribute/blockers.h"

namespace rsttrace::firewall {

// What a rule does when it matches.
enum class Action { None, Drop, Reject, Accept, Return, Jump, Goto };

struct Outcome {
  enum Kind { Continue, Accepted, Dropped } kind = Continue;
  std::optional<FirewallRule> rule;
  std::optional<FirewallRule> candidate;  // a drop whose matches could not all be evaluated
};

}  // namespace rsttrace::firewall
