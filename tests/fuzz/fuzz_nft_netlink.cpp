// The netlink fallback's decoder and decision (provenance/firewall/nft_netlink.h)
// on hostile dump lines: a namespace's owner chooses every name and key.
#include <arpa/inet.h>

#include <string_view>

#include "provenance/firewall.h"
#include "provenance/firewall/nft_netlink.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const firewall::NetlinkRuleset ruleset =
      firewall::parse_nft_netlink_dump(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const char* hook : {"input", "prerouting"}) {
    PacketFacts packet;
    packet.hook = hook, packet.dport = 22;
    inet_pton(AF_INET, "10.77.0.2", packet.saddr.data());
    const auto rule = firewall::find_netlink_drop(ruleset, packet);
    if (rule && (rule->certain || rule->verdict.empty())) __builtin_trap();
    packet.family = 6;
    inet_pton(AF_INET6, "fd00:5eed::2", packet.saddr.data());
    (void)firewall::find_netlink_drop(ruleset, packet);
  }
  return 0;
}
