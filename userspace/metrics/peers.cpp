#include "metrics/peers.h"

#include <algorithm>

#include "text/escape.h"

namespace rsttrace {

std::string network_prefix(int family, const std::array<uint8_t, 16>& addr) {
  std::array<uint8_t, 16> network{};
  const size_t bytes = family == 6 ? 6 : 3;  // /48, /24
  std::copy_n(addr.begin(), bytes, network.begin());
  std::string out;
  append_address(out, family, network);
  return out + (family == 6 ? "/48" : "/24");
}

void PeerCounters::add(const Attribution& report, uint64_t count, bool with_prefix) {
  const TcpEvent& e = report.event;
  std::string remote;
  append_address(remote, e.family, e.remote.addr);
  by_remote_.add(remote, count);
  if (with_prefix) by_prefix_.add(network_prefix(e.family, e.remote.addr), count);
  if (report.verdict != Verdict::TcpWrappers && report.verdict != Verdict::Firewall) return;
  std::string key = std::string(verdict_name(report.verdict)) + " " + remote;
  if (refused_.count(key)) return;
  if (refused_.size() < kMaxRefusedRemembered) refused_.insert(std::move(key));
  ++(report.verdict == Verdict::TcpWrappers ? new_wrappers_ : new_firewall_);
}

uint64_t PeerCounters::new_refused(Verdict verdict) const {
  return verdict == Verdict::TcpWrappers ? new_wrappers_ : verdict == Verdict::Firewall ? new_firewall_ : 0;
}

std::vector<std::pair<std::string, uint64_t>> PeerCounters::top(const std::map<std::string, uint64_t>& counts) {
  std::vector<const std::pair<const std::string, uint64_t>*> all;
  all.reserve(counts.size());
  for (const auto& entry : counts) all.push_back(&entry);
  const size_t n = std::min(kTopPeers, all.size());
  // Most events first, ties by key (the map's order): a stable top.
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), [](auto* a, auto* b) {
    return a->second != b->second ? a->second > b->second : a->first < b->first;
  });
  std::vector<std::pair<std::string, uint64_t>> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(all[i]->first, all[i]->second);
  return out;
}

}  // namespace rsttrace
