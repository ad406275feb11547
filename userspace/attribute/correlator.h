// Groups the several kernel events of one connection (an RST sent and, on
// loopback, the same RST received; a SYN dropped and its retransmissions)
// so that each connection gets one report. Pure: time is passed in.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <queue>
#include <tuple>
#include <vector>

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
  bool operator==(const ConnectionKey& other) const { return tie() == other.tie(); }
};

struct ConnectionKeyHash {
  size_t operator()(const ConnectionKey& key) const;
};

struct CorrelatorSettings {
  uint64_t settle_ns = 150'000'000;          // quiet time before a group is judged
  uint64_t drop_wait_ns = 1'300'000'000;     // a dropped SYN waits for its first retransmission (1 s)
  uint64_t absorb_drops_ns = 75'000'000'000; // later retransmissions of a reported drop are not reported again
  size_t max_open = 16384;                   // groups held at once; the oldest is judged early beyond that
};

class Correlator {
 public:
  explicit Correlator(CorrelatorSettings settings = {}) : settings_(settings) {}

  // Returns false when the event was absorbed into an already reported drop.
  bool add(const TcpEvent& event);
  // Groups that have settled by `now_ns` (CLOCK_MONOTONIC), oldest first.
  std::vector<std::vector<TcpEvent>> take_due(uint64_t now_ns);
  std::vector<std::vector<TcpEvent>> take_all();
  size_t open_groups() const { return open_.size(); }
  uint64_t absorbed() const { return absorbed_; }
  uint64_t evicted() const { return evicted_; }

 private:
  struct Group {
    std::vector<TcpEvent> events;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
  };
  uint64_t due_at(const Group& group) const;
  static bool starts_new_connection(const Group& group, const TcpEvent& event);
  void remember_if_drop(const ConnectionKey& key, const Group& group);

  CorrelatorSettings settings_;
  // Hashed, not ordered: a storm keeps thousands open and looks one up per event.
  std::unordered_map<ConnectionKey, Group, ConnectionKeyHash> open_;
  // (due time, connection), earliest first; an entry is stale when its group
  // got later events since (a newer entry exists) or is gone.
  using Due = std::pair<uint64_t, ConnectionKey>;
  struct Later {
    bool operator()(const Due& a, const Due& b) const { return a.first > b.first; }
  };
  std::priority_queue<Due, std::vector<Due>, Later> due_;
  std::deque<Due> by_start_;  // (first event time, connection) in arrival order, for eviction
  struct ReportedDrop {
    uint64_t until_ns;
    uint32_t isn;  // the dropped SYN's sequence number: its retransmissions carry the same
  };
  std::unordered_map<ConnectionKey, ReportedDrop, ConnectionKeyHash> reported_drops_;
  std::vector<std::vector<TcpEvent>> early_;          // judged early (max_open)
  uint64_t absorbed_ = 0;
  uint64_t evicted_ = 0;
  uint64_t next_expiry_ns_ = 0;
};

}  // namespace rsttrace
