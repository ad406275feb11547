// The netlink fallback (provenance/firewall/nft_netlink.h) on hostile dump
// lines: a namespace's owner chooses every name, key and expression. Decoded,
// turned into nft's document and walked for packets: nothing may crash, hang
// or throw, and a rule found always has a verdict.
#include <arpa/inet.h>
#include <signal.h>

#include <string_view>

#include "provenance/firewall.h"
#include "provenance/firewall/nft_netlink.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> texts;
  (void)firewall::nft_json_of_netlink(firewall::parse_nft_netlink_dump(text), texts);
  Rulesets crashed;
  crashed.nft_crashed = SIGSEGV;
  crashed.nft_netlink = std::string(text);
  const RulesetIndex index(crashed);
  for (const char* hook : {"input", "prerouting"}) {
    PacketFacts packet;
    packet.hook = hook, packet.dport = 22, packet.sport = 40000;
    packet.in_interface = "veth0", packet.mark = 1;
    inet_pton(AF_INET, "10.77.0.2", packet.saddr.data());
    const auto rule = index.find_dropping_rule(packet);
    if (rule && rule->verdict.empty()) __builtin_trap();
    packet.family = 6;
    inet_pton(AF_INET6, "fd00:5eed::2", packet.saddr.data());
    (void)index.find_dropping_rule(packet);
  }
  return 0;
}
