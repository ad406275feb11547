// fail2ban's names for what it adds to a firewall (declared in provenance/firewall.h).
#include <string>

#include "provenance/firewall.h"

namespace rsttrace {

// iptables chains f2b-<jail>; nftables sets addr-set-<jail> and addr6-set-<jail>;
// its own nft table and chain (f2b-table, f2b-chain) name no jail.
std::optional<std::string> fail2ban_jail_of(const std::string& name) {
  for (const char* prefix : {"f2b-", "addr-set-", "addr6-set-"})
    if (name.rfind(prefix, 0) == 0 && name.size() > std::char_traits<char>::length(prefix) &&
        name != "f2b-chain" && name != "f2b-table")
      return name.substr(std::char_traits<char>::length(prefix));
  return std::nullopt;
}

}  // namespace rsttrace
