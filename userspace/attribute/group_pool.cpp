#include "attribute/group_pool.h"

namespace rsttrace {

uint32_t GroupPool::open(uint64_t first_ns, size_t reserve) {
  uint32_t index;
  if (free_.empty()) {
    index = static_cast<uint32_t>(groups_.size());
    groups_.emplace_back();
  } else {
    index = free_.back();
    free_.pop_back();
  }
  ++open_count_;
  EventGroup& fresh = groups_[index];
  if (!spare_.empty()) {  // room a judged group left
    fresh.events = std::move(spare_.back());
    spare_.pop_back();
  }
  fresh.first_ns = first_ns;
  fresh.last_ns = 0;
  if (reserve) fresh.events.reserve(reserve);
  return index;
}

void GroupPool::close(uint32_t index) {
  EventGroup& group = groups_[index];
  free_.push_back(index);
  --open_count_;
  // The events' room serves the next new group (a few are kept, not one per group).
  std::vector<TcpEvent> events = std::move(group.events);
  group.events = {};
  if (events.capacity() != 0 && spare_.size() < kSpareGroups) {
    events.clear();
    spare_.push_back(std::move(events));
  }
}

void GroupPool::clear() {
  groups_.clear();
  free_.clear();
  open_count_ = 0;
}

}  // namespace rsttrace
