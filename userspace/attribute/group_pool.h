// The correlator's open groups (the events of one connection waiting for
// their verdict), by index. Indices and the room of judged groups' event
// vectors are reused: a storm opens and closes thousands a second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "collect/tcp_event.h"

namespace rsttrace {

struct EventGroup {
  std::vector<TcpEvent> events;
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
};

class GroupPool {
 public:
  // A new, empty group starting at `first_ns`, with room for `reserve` events.
  uint32_t open(uint64_t first_ns, size_t reserve);
  EventGroup& operator[](uint32_t index) { return groups_[index]; }
  const EventGroup& operator[](uint32_t index) const { return groups_[index]; }
  // The group is judged (its events may have been moved out): its index, and
  // a few of its event vectors' room, serve the next groups.
  void close(uint32_t index);
  // Every group is gone (the spare room stays).
  void clear();
  size_t open_count() const { return open_count_; }

 private:
  static constexpr size_t kSpareGroups = 256;
  std::vector<EventGroup> groups_;  // the open groups (at most max_open, plus free ones)
  std::vector<uint32_t> free_;
  std::vector<std::vector<TcpEvent>> spare_;  // emptied event vectors, for new groups
  size_t open_count_ = 0;
};

}  // namespace rsttrace
