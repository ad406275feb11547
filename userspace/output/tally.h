// Counts for summaries: reports by verdict and by remote address, over an
// interval or a whole run. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attribute/report.h"

namespace rsttrace {

class Tally {
 public:
  void add(const Report& report);
  void clear() { *this = Tally{}; }
  uint64_t total() const { return total_; }
  const std::map<std::string, uint64_t>& by_verdict() const { return by_verdict_; }
  // The `n` remote addresses with the most reports, most first (ties by address).
  std::vector<std::pair<std::string, uint64_t>> top_remotes(size_t n) const;
  // "12 events: tcp-wrappers 10, firewall 2; top remotes 127.0.0.2 (12)"
  std::string text(size_t top = 5) const;

 private:
  uint64_t total_ = 0;
  std::map<std::string, uint64_t> by_verdict_;
  std::map<std::string, uint64_t> by_remote_;  // bounded in add(): a scan must not grow it forever
};

}  // namespace rsttrace
