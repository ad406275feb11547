// The peers behind the --metrics page's bounded peer families: the top
// remote addresses and prefixes (/24, /48) by events, and refusals of an
// address that tcp-wrappers or the firewall had not refused before in this
// run. Bounded: kMaxPeers addresses and prefixes are counted apiece (later
// ones under "other"), and the page shows the top kTopPeers of each.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "attribute/attribution.h"
#include "output/tally.h"

namespace rsttrace {

class PeerCounters {
 public:
  static constexpr size_t kMaxPeers = 10000;
  static constexpr size_t kTopPeers = 10;
  // Addresses remembered as refused; past it, every refusal of an address not
  // remembered counts as new (an alert too many, never one missed).
  static constexpr size_t kMaxRefusedRemembered = 100000;

  // with_prefix false: the remote alone (a class storm's top peer: its prefixes come apart, add_prefix()).
  void add(const Attribution& report, uint64_t count, bool with_prefix = true);
  void add_prefix(const std::string& prefix, uint64_t count) { by_prefix_.add(prefix, count); }
  std::vector<std::pair<std::string, uint64_t>> top_remotes() const { return top(by_remote_.all()); }
  std::vector<std::pair<std::string, uint64_t>> top_prefixes() const { return top(by_prefix_.all()); }
  uint64_t new_refused(Verdict verdict) const;  // tcp-wrappers or firewall

 private:
  static std::vector<std::pair<std::string, uint64_t>> top(const std::map<std::string, uint64_t>& counts);
  BoundedCounts by_remote_{kMaxPeers, "other"}, by_prefix_{kMaxPeers, "other"};
  std::unordered_set<std::string> refused_;  // "verdict address"
  uint64_t new_wrappers_ = 0, new_firewall_ = 0;
};

// "192.0.2.0/24", "2001:db8:1::/48": the network a remote address is in.
std::string network_prefix(int family, const std::array<uint8_t, 16>& addr);

}  // namespace rsttrace
