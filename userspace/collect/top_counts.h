// The `top` largest of a stream of class peer counts, most first (ties: the
// lower address first), holding only `top` of them: a class storm's maps hold
// up to RSTTRACE_CLASS_PEERS entries, read every second of a flood, and a
// vector of them all was most of the collector's transient heap (issue 17: RSS).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "collect/storm_counters.h"

namespace rsttrace {

class TopCounts {
 public:
  explicit TopCounts(size_t top) : top_(top) { kept_.reserve(top); }

  void offer(const ClassPeerCount& peer) {
    if (top_ == 0) return;
    if (kept_.size() < top_) {
      kept_.push_back(peer);
      std::push_heap(kept_.begin(), kept_.end(), more);  // the front: the least of those kept
      return;
    }
    if (!more(peer, kept_.front())) return;
    std::pop_heap(kept_.begin(), kept_.end(), more);
    kept_.back() = peer;
    std::push_heap(kept_.begin(), kept_.end(), more);
  }

  // Those kept, most first.
  std::vector<ClassPeerCount> take() && {
    std::sort_heap(kept_.begin(), kept_.end(), more);
    return std::move(kept_);
  }

 private:
  static bool more(const ClassPeerCount& a, const ClassPeerCount& b) {
    return a.count != b.count ? a.count > b.count : a.addr < b.addr;
  }
  size_t top_;
  std::vector<ClassPeerCount> kept_;  // a heap under more(): its front ranks last
};

}  // namespace rsttrace
