// Groups the several kernel events of one connection (an RST sent and, on
// loopback, the same RST received; a SYN dropped and its retransmissions)
// so that each connection gets one report. Pure: time is passed in.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <queue>
#include <tuple>
#include <type_traits>
#include <vector>

#include "attribute/flat_index.h"
#include "attribute/group_pool.h"
#include "collect/tcp_event.h"

namespace rsttrace {

// A connection, the same from both ends: endpoints in a fixed order.
struct ConnectionKey {
  uint32_t netns = 0;
  int family = 4;
  Endpoint low, high;

  static ConnectionKey of(const TcpEvent& event);
  auto tie() const { return std::tie(netns, family, low.addr, low.port, high.addr, high.port); }
  bool operator<(const ConnectionKey& other) const { return tie() < other.tie(); }
  bool operator==(const ConnectionKey& other) const {
    // Field by field, as words: no padding (asserted below), looked up per event.
    uint64_t a[5], b[5];
    uint32_t a_tail, b_tail;
    std::memcpy(a, this, sizeof(a));
    std::memcpy(b, &other, sizeof(b));
    std::memcpy(&a_tail, reinterpret_cast<const char*>(this) + sizeof(a), sizeof(a_tail));
    std::memcpy(&b_tail, reinterpret_cast<const char*>(&other) + sizeof(b), sizeof(b_tail));
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a_tail ^ b_tail)) == 0;
  }
};
static_assert(sizeof(ConnectionKey) == 44 && std::has_unique_object_representations_v<ConnectionKey>,
              "ConnectionKey::operator== compares its bytes");

struct ConnectionKeyHash {
  size_t operator()(const ConnectionKey& key) const;
};

struct CorrelatorSettings {
  uint64_t settle_ns = 150'000'000;          // quiet time before a group is judged
  uint64_t drop_wait_ns = 1'300'000'000;     // a dropped SYN waits for its first retransmission (1 s)
  uint64_t absorb_drops_ns = 75'000'000'000; // later retransmissions of a reported drop are not reported again
  uint64_t absorb_late_ns = 3'000'000'000;   // a listener's reset of a late segment after its connection's abort was judged
  size_t max_open = 16384;                   // groups held at once; the oldest is judged early beyond that
};

class Correlator {
 public:
  explicit Correlator(CorrelatorSettings settings = {}) : settings_(settings) {}

  // Returns false when the event was absorbed into an already reported drop.
  bool add(const TcpEvent& event);
  bool add(TcpEvent&& event);  // the same, the event moved into its group
  // Groups that have settled by `now_ns` (CLOCK_MONOTONIC), oldest first,
  // handed one at a time to on_group(std::vector<TcpEvent>&) (which may move
  // from it): no vector of groups. UINT64_MAX: every group.
  template <typename OnGroup>
  void take_due(uint64_t now_ns, OnGroup&& on_group);
  size_t open_groups() const { return groups_.open_count(); }
  uint64_t absorbed() const { return absorbed_; }
  uint64_t evicted() const { return evicted_; }

 private:
  using Group = EventGroup;
  // One connection (key) while it has an open group or is named by entries of
  // due_: those name slots, not keys (16 bytes, no lookup when taken), and a
  // slot lives as long as an entry would look its key up.
  static constexpr uint32_t kNoGroup = UINT32_MAX;
  struct Slot {
    ConnectionKey key;
    uint32_t hash = 0;            // low bits of ConnectionKeyHash(key): its place in index_
    uint32_t refs = 0;            // entries in due_ naming this slot
    uint32_t group = kNoGroup;    // the connection's open group in groups_, if any
    bool open() const { return group != kNoGroup; }
    bool live() const { return open() || refs != 0; }  // else free, or to be freed
  };
  template <typename Event>
  bool add_event(Event&& event);
  uint64_t due_at(const Group& group) const;
  static bool starts_new_connection(const Group& group, const TcpEvent& event);
  void remember_if_drop(const ConnectionKey& key, const Group& group);
  void remember_if_aborted(const ConnectionKey& key, const Group& group);
  bool absorbs_late_listener_reset(const ConnectionKey& key, const TcpEvent& event) const;
  void remember_judged(const ConnectionKey& key, const Group& group) {
    remember_if_drop(key, group);
    remember_if_aborted(key, group);
  }
  void close(Slot& slot);      // the group is taken: the slot holds no open group
  void unref(uint32_t index);  // an entry naming the slot is gone
  void release(uint32_t index);  // neither open nor named: free for another connection
  void forget_all();           // no open group: every entry is stale

  CorrelatorSettings settings_;
  std::vector<Slot> slots_;  // 56 bytes: a drop storm keeps many alive for their due_ entries
  std::vector<uint32_t> free_slots_;
  GroupPool groups_;
  // Key -> live slot. Hashed, not ordered: a storm keeps thousands open and
  // looks one up per connection.
  static constexpr uint32_t kNoSlot = FlatIndex::kNone;
  uint32_t find_slot(const ConnectionKey& key, uint32_t hash) const {
    return index_.find(hash, [&](uint32_t slot) { return slots_[slot].key == key; });
  }
  FlatIndex index_;
  // The slot of the last event's connection: its next events follow at once
  // (sent, dropped, received), so most events need no hash lookup.
  uint32_t last_slot_ = UINT32_MAX;
  // (due time, slot), earliest first; an entry is stale when its group got
  // later events since (a newer entry exists) or is gone.
  using Due = std::pair<uint64_t, uint32_t>;
  struct Later {
    bool operator()(const Due& a, const Due& b) const { return a.first > b.first; }
  };
  std::priority_queue<Due, std::vector<Due>, Later> due_;
  // (first event time, connection) in arrival order, for eviction.
  std::deque<std::pair<uint64_t, ConnectionKey>> by_start_;
  struct ReportedDrop {
    uint64_t until_ns;
    uint32_t isn;  // the dropped SYN's sequence number: its retransmissions carry the same
  };
  std::unordered_map<ConnectionKey, ReportedDrop, ConnectionKeyHash> reported_drops_;
  // Connections judged with a reset sent by an accepted socket (an abort, which
  // leaves no TIME_WAIT), until when a listener's reset of their late segment is
  // absorbed. Direct-mapped, no allocation per abort: an unordered_map cost an
  // abort flood 32% more per connection (collector_bench --workload abort,
  // 2,420 -> 3,195 ns) and 1.7 MB. A newer abort on the same entry replaces the
  // older, whose late reset then gets a line of its own, as it would without this.
  struct AbortedEntry {
    ConnectionKey key;
    uint64_t until_ns = 0;
  };
  static constexpr size_t kAbortedEntries = 4096;  // 224 KiB, allocated at the first abort
  std::vector<AbortedEntry> aborted_;
  std::vector<std::vector<TcpEvent>> early_;          // judged early (max_open)
  uint64_t absorbed_ = 0;
  uint64_t evicted_ = 0;
  uint64_t next_expiry_ns_ = 0;
};

template <typename OnGroup>
void Correlator::take_due(uint64_t now_ns, OnGroup&& on_group) {
  std::vector<std::vector<TcpEvent>> early = std::move(early_);
  early_.clear();
  for (std::vector<TcpEvent>& group : early) on_group(group);
  // Only the groups whose time has come are looked at: a storm keeps many open.
  while (!due_.empty() && due_.top().first <= now_ns) {
    const uint32_t index = due_.top().second;
    due_.pop();
    Slot& slot = slots_[index];
    if (slot.open() && due_at(groups_[slot.group]) <= now_ns) {  // else a stale entry
      Group& group = groups_[slot.group];
      remember_judged(slot.key, group);
      on_group(group.events);
      close(slot);
    }
    unref(index);
  }
  if (groups_.open_count() == 0) forget_all();  // drop the stale entries left behind
  while (by_start_.size() > 2 * groups_.open_count() + 1024) by_start_.pop_front();  // stale: their groups are gone
  if (now_ns >= next_expiry_ns_) {  // a sweep a second is enough: entries last 75 s
    std::erase_if(reported_drops_, [now_ns](const auto& entry) { return entry.second.until_ns < now_ns; });
    next_expiry_ns_ = now_ns + 1'000'000'000ULL;
  }
}

}  // namespace rsttrace
