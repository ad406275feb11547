#include "output/tally.h"

#include <algorithm>

#include "output/format.h"

namespace rsttrace {

namespace {
constexpr size_t kMaxRemotes = 4096;
}

void Tally::add(const Report& report) {
  ++total_;
  ++by_verdict_[report.verdict];
  const std::string remote = format_address(report.event.family, report.event.remote.addr);
  auto it = by_remote_.find(remote);
  if (it != by_remote_.end()) {
    ++it->second;
  } else if (by_remote_.size() < kMaxRemotes) {
    by_remote_.emplace(remote, 1);
  } else {
    ++by_remote_["(other addresses)"];
  }
}

std::vector<std::pair<std::string, uint64_t>> Tally::top_remotes(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> all(by_remote_.begin(), by_remote_.end());
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (all.size() > n) all.resize(n);
  return all;
}

std::string Tally::text(size_t top) const {
  std::string line = std::to_string(total_) + (total_ == 1 ? " event" : " events");
  std::vector<std::pair<std::string, uint64_t>> verdicts(by_verdict_.begin(), by_verdict_.end());
  std::stable_sort(verdicts.begin(), verdicts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < verdicts.size(); ++i)
    line += (i == 0 ? ": " : ", ") + verdicts[i].first + " " + std::to_string(verdicts[i].second);
  const auto remotes = top_remotes(top);
  for (size_t i = 0; i < remotes.size(); ++i)
    line += (i == 0 ? "; top remotes " : ", ") + remotes[i].first + " (" + std::to_string(remotes[i].second) + ")";
  return line;
}

}  // namespace rsttrace
