// The nftables walker on hostile `nft -j list ruleset` output.
// Input: nft JSON NUL nft text NUL iptables-nft-save text; the nft text is also read as firewalld's zone and policy files.
#include <arpa/inet.h>

#include "fuzz_input.h"
#include "provenance/firewall.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzz::split_parts(data, size, 3);
  // The nft text doubles as firewalld's zone files (is a block permanent: a search in them).
  Rulesets rulesets{std::move(parts[0]), std::move(parts[1]), std::move(parts[2]), ""};
  rulesets.firewalld_zones = {{"public", rulesets.nft_text}, {"drop", rulesets.nft_text}};
  for (const bool rich : {false, true}) (void)firewalld_permanent(rulesets.firewalld_zones, "public", "127.0.0.2", rich);
  // ... and firewalld's policy files (whose a filter_IN_policy_ chain is; is its block permanent).
  rulesets.firewalld_policies = {{"sshd_deny", rulesets.nft_text}, {"a", rulesets.nft_text}};
  for (const char* chain : {"filter_IN_policy_sshd_deny_deny", "filter_IN_policy_a"})
    if (const auto owner = firewalld_policy_owner(chain, rulesets.firewalld_policies, rulesets.firewalld_zones))
      (void)firewalld_policy_permanent(rulesets.firewalld_policies, *owner, "127.0.0.2");
  const RulesetIndex index(rulesets);
  for (const char* hook : {"input", "prerouting", "output"}) {
    PacketFacts v4;
    inet_pton(AF_INET, "127.0.0.2", v4.saddr.data());
    inet_pton(AF_INET, "127.0.0.1", v4.daddr.data());
    v4.sport = 40022, v4.dport = 22, v4.hook = hook, v4.tcp_flags = 0x02;
    // The kernel's evidence at the drop: v4 has it all, v6 none (every match that needs it undecided).
    v4.conntrack = ConntrackFacts{ConntrackFacts::State::New, false, 1u << 5, {127, 0, 0, 1}, 2222};
    v4.mark = 1, v4.in_interface = "veth-srv", v4.route_type = 2;
    PacketFacts v6 = v4;
    v6.family = 6;
    inet_pton(AF_INET6, "fd00:5eed::2", v6.saddr.data());
    inet_pton(AF_INET6, "fd00:5eed::1", v6.daddr.data());
    v6.tcp_flags = 0x10;
    v6.conntrack.reset(), v6.mark.reset(), v6.in_interface.reset(), v6.route_type.reset();
    for (const PacketFacts& packet : {v4, v6}) {
      const auto rule = index.find_dropping_rule(packet);
      if (rule && rule->verdict.empty()) __builtin_trap();
    }
  }
  return 0;
}
