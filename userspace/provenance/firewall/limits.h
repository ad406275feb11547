// The caps on reading and walking rulesets. The rulesets are the namespace
// owner's word (any user can make a user and network namespace): every parse
// is total, bounded and never throws; every walk is bounded per packet.
#pragma once

#include <cstddef>

namespace rsttrace::firewall {

constexpr size_t kMaxRulesetText = 16 << 20;  // per tool's output; a fail2ban set of 100k addresses is ~2 MiB
constexpr int kMaxJsonDepth = 64;             // nft prints about 10 levels
constexpr size_t kMaxIptablesRules = 200000;
constexpr size_t kMaxCommentLines = 64;       // a quoted comment continued over lines (it may hold newlines)
constexpr size_t kMaxRuleText = 64 << 10;     // one iptables rule; its comment is at most 256 bytes
constexpr int kMaxJumpDepth = 16;             // netfilter's own jump stack
constexpr int kWalkBudget = 200000;           // rules looked at per packet: jumps fan out exponentially

}  // namespace rsttrace::firewall
