#include "output/tally.h"

#include <algorithm>

#include "text/escape.h"

namespace rsttrace {

void BoundedCounts::add(const std::string& key, uint64_t count) {
  if (last_ && last_->first == key) {
    last_->second += count;
    return;
  }
  auto it = counts_.find(key);
  if (it != counts_.end())
    it->second += count;
  else if (counts_.size() < max_keys_)
    it = counts_.emplace(key, count).first;
  else
    (it = counts_.try_emplace(overflow_key_, 0).first)->second += count;
  last_ = &*it;
}

std::vector<std::pair<std::string, uint64_t>> BoundedCounts::top(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> all(counts_.begin(), counts_.end());
  // Stable on the map's key order: ties stay sorted by key.
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (all.size() > n) all.resize(n);
  return all;
}

void Tally::add(const Attribution& report) {
  ++total_;
  ++by_verdict_[static_cast<size_t>(report.verdict)];
  by_remote_.add(format_address(report.event.family, report.event.remote.addr));
}

void Tally::add_storm(const Attribution& verdict, const std::string& peer_addr, uint64_t count, uint64_t connections) {
  storm_events_ += count;
  if (connections == 0) return;
  storm_connections_ += connections;
  storm_by_verdict_[static_cast<size_t>(verdict.verdict)] += connections;
  if (!peer_addr.empty()) by_remote_.add(peer_addr, connections);
}

std::map<std::string, uint64_t> Tally::named(const VerdictCounts& counts) {
  std::map<std::string, uint64_t> by_name;
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i]) by_name.emplace(verdict_name(static_cast<Verdict>(i)), counts[i]);
  return by_name;
}

std::vector<std::pair<std::string, uint64_t>> Tally::top_remotes(size_t n) const { return by_remote_.top(n); }

std::string Tally::text(size_t top) const {
  std::string line = std::to_string(total_) + (total_ == 1 ? " event" : " events");
  const std::map<std::string, uint64_t> by_name = by_verdict();
  std::vector<std::pair<std::string, uint64_t>> verdicts(by_name.begin(), by_name.end());
  std::stable_sort(verdicts.begin(), verdicts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < verdicts.size(); ++i)
    line += (i == 0 ? ": " : ", ") + verdicts[i].first + " " + std::to_string(verdicts[i].second);
  if (storm_connections_) {
    line += "; " + std::to_string(storm_connections_) + " more in storms";
    const std::map<std::string, uint64_t> storms = storm_by_verdict();
    for (auto it = storms.begin(); it != storms.end(); ++it)
      line += (it == storms.begin() ? ": " : ", ") + it->first + " " + std::to_string(it->second);
  }
  const auto remotes = top_remotes(top);
  for (size_t i = 0; i < remotes.size(); ++i)
    line += (i == 0 ? "; top remotes " : ", ") + remotes[i].first + " (" + std::to_string(remotes[i].second) + ")";
  return line;
}

}  // namespace rsttrace
