// The iptables-save parser and walker on hostile `iptables-save -c` output,
// as iptables-legacy (walked alone) and as iptables-nft (the text of a rule
// nft found). Input: iptables-save text.
#include <arpa/inet.h>

#include <string>

#include "provenance/firewall.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A fixed nf_tables document naming filter/INPUT, so that the iptables-nft text is looked up too.
  static const std::string kNft =
      R"({"nftables": [{"chain": {"family": "ip", "table": "filter", "name": "INPUT", "hook": "input", "prio": 0, "policy": "accept"}},)"
      R"({"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 2, "expr": [{"drop": null}]}}]})";
  const RulesetIndex legacy(Rulesets{"", "", "", text});
  const RulesetIndex as_nft(Rulesets{kNft, "", text, ""});
  for (const char* hook : {"input", "prerouting", "output"}) {
    PacketFacts packet;
    inet_pton(AF_INET, "127.0.0.2", packet.saddr.data());
    inet_pton(AF_INET, "127.0.0.1", packet.daddr.data());
    packet.sport = 40022, packet.dport = 22, packet.hook = hook, packet.tcp_flags = 0x02;
    packet.conntrack = ConntrackFacts{ConntrackFacts::State::New, false, 1u << 5, {127, 0, 0, 1}, 2222};
    packet.mark = 1, packet.in_interface = "veth-srv", packet.route_type = 2;
    for (const RulesetIndex* index : {&legacy, &as_nft}) {
      const auto rule = index->find_dropping_rule(packet);
      if (rule && rule->verdict.empty()) __builtin_trap();
    }
    packet.family = 6;
    inet_pton(AF_INET6, "fd00:5eed::2", packet.saddr.data());
    (void)legacy.find_dropping_rule(packet);
  }
  return 0;
}
