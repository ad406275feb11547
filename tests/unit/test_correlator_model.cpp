// The Correlator against a straightforward model of its contract: the
// original implementation (groups in a hash map by connection, a heap of
// (due time, connection) entries looked up when taken). The Correlator keeps
// slots and a flat index for speed; on random input, including reused
// tuples, out-of-order and equal timestamps, evictions and absorbed
// retransmissions, both must return the same groups in the same order.
// Also: the streaming Attributor calls give the same reports as the vector ones.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <deque>
#include <queue>
#include <random>
#include <unordered_map>

#include "attribute/attributor.h"
#include "attribute/correlator.h"
#include "output/format.h"
#include "collect_helpers.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;

bool is_syn_drop(const TcpEvent& e) {
  return e.kind == EventKind::Drop && e.tcp_flags && (*e.tcp_flags & (kSyn | kAck | kRst)) == kSyn;
}

struct TieHash {
  size_t operator()(const ConnectionKey& key) const { return ConnectionKeyHash()(key); }
};
struct TieEqual {  // the plain field comparison, not the word-wise one under test
  bool operator()(const ConnectionKey& a, const ConnectionKey& b) const { return a.tie() == b.tie(); }
};

class ModelCorrelator {
 public:
  explicit ModelCorrelator(CorrelatorSettings settings) : settings_(settings) {}

  bool add(const TcpEvent& event) {
    const ConnectionKey key = ConnectionKey::of(event);
    if (is_syn_drop(event)) {
      auto reported = reported_drops_.find(key);
      if (reported != reported_drops_.end() && event.monotonic_ns <= reported->second.first &&
          event.tcp_seq == reported->second.second) {
        ++absorbed_;
        return false;
      }
    }
    if (auto open = open_.find(key); open != open_.end() && starts_new_connection(open->second, event)) {
      remember_if_drop(open->first, open->second);
      early_.push_back(std::move(open->second.events));
      open_.erase(open);
    }
    auto [it, inserted] = open_.try_emplace(key);
    Group& group = it->second;
    if (inserted) group.first_ns = event.monotonic_ns;
    group.last_ns = std::max(group.last_ns, event.monotonic_ns);
    group.events.push_back(event);
    due_.emplace(due_at(group), key);
    if (inserted) by_start_.emplace_back(group.first_ns, key);
    while (open_.size() > settings_.max_open && !by_start_.empty()) {
      const auto [first_ns, oldest_key] = by_start_.front();
      by_start_.pop_front();
      auto oldest = open_.find(oldest_key);
      if (oldest == open_.end() || oldest->second.first_ns != first_ns) continue;
      remember_if_drop(oldest->first, oldest->second);
      early_.push_back(std::move(oldest->second.events));
      open_.erase(oldest);
      ++evicted_;
    }
    return true;
  }

  std::vector<std::vector<TcpEvent>> take_due(uint64_t now_ns) {
    std::vector<std::vector<TcpEvent>> groups = std::move(early_);
    early_.clear();
    while (!due_.empty() && due_.top().first <= now_ns) {
      const ConnectionKey key = due_.top().second;
      due_.pop();
      auto it = open_.find(key);
      if (it == open_.end() || due_at(it->second) > now_ns) continue;
      remember_if_drop(it->first, it->second);
      groups.push_back(std::move(it->second.events));
      open_.erase(it);
    }
    if (open_.empty()) {
      due_ = {};
      by_start_.clear();
    }
    while (by_start_.size() > 2 * open_.size() + 1024) by_start_.pop_front();
    if (now_ns >= next_expiry_ns_) {
      std::erase_if(reported_drops_, [now_ns](const auto& entry) { return entry.second.first < now_ns; });
      next_expiry_ns_ = now_ns + 1'000'000'000ULL;
    }
    return groups;
  }

  size_t open_groups() const { return open_.size(); }
  uint64_t absorbed() const { return absorbed_; }
  uint64_t evicted() const { return evicted_; }

 private:
  struct Group {
    std::vector<TcpEvent> events;
    uint64_t first_ns = 0, last_ns = 0;
  };
  uint64_t due_at(const Group& group) const {
    if (group.events.size() == 1 && is_syn_drop(group.events[0]))
      return std::max(group.first_ns + settings_.drop_wait_ns, group.last_ns + settings_.settle_ns);
    return group.last_ns + settings_.settle_ns;
  }
  static bool starts_new_connection(const Group& group, const TcpEvent& event) {
    return std::any_of(group.events.begin(), group.events.end(), [&](const TcpEvent& seen) {
      if (seen.kind != event.kind || seen.local != event.local) return false;
      if (seen.sock_id && event.sock_id && seen.sock_id != event.sock_id) return true;
      const bool both_syns = seen.tcp_flags && event.tcp_flags && (*seen.tcp_flags & (kSyn | kAck)) == kSyn &&
                             (*event.tcp_flags & (kSyn | kAck)) == kSyn;
      return both_syns && seen.tcp_seq != event.tcp_seq;
    });
  }
  void remember_if_drop(const ConnectionKey& key, const Group& group) {
    if (group.events.empty() || !std::all_of(group.events.begin(), group.events.end(), is_syn_drop)) return;
    if (reported_drops_.size() >= settings_.max_open) reported_drops_.clear();
    reported_drops_[key] = {group.last_ns + settings_.absorb_drops_ns, group.events.front().tcp_seq};
  }

  CorrelatorSettings settings_;
  std::unordered_map<ConnectionKey, Group, TieHash, TieEqual> open_;
  using Due = std::pair<uint64_t, ConnectionKey>;
  struct Later {
    bool operator()(const Due& a, const Due& b) const { return a.first > b.first; }
  };
  std::priority_queue<Due, std::vector<Due>, Later> due_;
  std::deque<Due> by_start_;
  std::unordered_map<ConnectionKey, std::pair<uint64_t, uint32_t>, TieHash, TieEqual> reported_drops_;
  std::vector<std::vector<TcpEvent>> early_;
  uint64_t absorbed_ = 0, evicted_ = 0, next_expiry_ns_ = 0;
};

// What identifies an event in a group: enough to tell any two apart here.
std::vector<std::tuple<int, uint64_t, uint16_t, uint16_t, uint32_t, uint64_t>> ids(const std::vector<TcpEvent>& group) {
  std::vector<std::tuple<int, uint64_t, uint16_t, uint16_t, uint32_t, uint64_t>> out;
  for (const TcpEvent& e : group)
    out.emplace_back(static_cast<int>(e.kind), e.monotonic_ns, e.local.port, e.remote.port, e.tcp_seq, e.sock_id);
  return out;
}

struct Scenario {
  std::mt19937_64 rng;
  uint64_t now = 0;
  int keys;
  explicit Scenario(uint32_t seed, int key_count) : rng(seed), keys(key_count) {}
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); }

  TcpEvent event() {
    TcpEvent e;
    e.kind = static_cast<EventKind>(below(3));
    now += below(30);
    e.monotonic_ns = below(8) == 0 && now > 50 ? now - below(50) : now;  // out of order; many equal
    e.family = below(8) == 0 ? 6 : 4;
    e.local.addr[0] = 127;
    e.remote.addr[0] = 127;
    e.remote.addr[15] = static_cast<uint8_t>(below(2));
    e.local.port = 22;
    e.remote.port = static_cast<uint16_t>(1000 + below(static_cast<uint64_t>(keys)));
    if (below(4) == 0) std::swap(e.local, e.remote);
    e.netns = below(16) == 0 ? 7 : 4026532000u;
    if (below(2)) e.tcp_flags = below(2) ? kSyn : static_cast<uint8_t>(below(256));
    e.tcp_seq = static_cast<uint32_t>(below(3));
    e.sock_id = below(3);
    return e;
  }
};

}  // namespace

TEST_CASE("the correlator returns what the model returns, in the same order", "[correlator]") {
  for (uint32_t seed = 1; seed <= 120; ++seed) {
    const bool large = seed % 3 == 0;  // thousands of connections: the index grows and shrinks
    Scenario s(seed, large ? 3000 + static_cast<int>(seed) * 20 : 2 + static_cast<int>(seed % 50));
    CorrelatorSettings settings;
    settings.max_open = large ? 100 + s.below(3000) : 1 + s.below(40);
    settings.settle_ns = large ? 20'000 + s.below(50'000) : 100 + s.below(200);
    settings.drop_wait_ns = settings.settle_ns + s.below(1000);
    settings.absorb_drops_ns = 2000 + s.below(5000);
    Correlator mine(settings);
    ModelCorrelator model(settings);
    const int steps = large ? 8000 : 3000;
    for (int step = 0; step < steps; ++step) {
      const uint64_t op = s.below(10);
      if (op < 7) {
        const TcpEvent e = s.event();
        const bool moved = s.below(2) == 0;
        REQUIRE((moved ? mine.add(TcpEvent(e)) : mine.add(e)) == model.add(e));
        REQUIRE(mine.open_groups() == model.open_groups());
        REQUIRE(mine.absorbed() == model.absorbed());
        REQUIRE(mine.evicted() == model.evicted());
      } else {
        const uint64_t at = s.below(30) == 0 ? UINT64_MAX : s.now + s.below(3) * 100 - 100;
        const auto expected = model.take_due(at);
        std::vector<std::vector<TcpEvent>> got;
        if (s.below(2))
          got = test::take_due(mine, at);
        else
          mine.take_due(at, [&](std::vector<TcpEvent>& group) { got.push_back(group); });
        REQUIRE(got.size() == expected.size());
        for (size_t i = 0; i < got.size(); ++i) REQUIRE(ids(got[i]) == ids(expected[i]));
      }
    }
  }
}

TEST_CASE("connection keys compare field by field", "[correlator]") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    ConnectionKey a, b;
    a.netns = static_cast<uint32_t>(rng() % 3);
    a.family = rng() % 2 ? 4 : 6;
    for (auto& byte : a.low.addr) byte = static_cast<uint8_t>(rng() % 2);
    a.low.port = static_cast<uint16_t>(rng() % 2);
    a.high = a.low;
    b = a;
    switch (rng() % 6) {  // change one field, or nothing
      case 0: b.netns ^= 1; break;
      case 1: b.family = b.family == 4 ? 6 : 4; break;
      case 2: b.low.addr[rng() % 16] ^= 1; break;
      case 3: b.high.port ^= 1; break;
      case 4: b.high.addr[15] ^= 0x80; break;
      default: break;
    }
    REQUIRE((a == b) == (a.tie() == b.tie()));
  }
  // A connection's key is the same from both ends: the lower (address, port) first.
  for (int i = 0; i < 20000; ++i) {
    TcpEvent e;
    e.family = rng() % 2 ? 4 : 6;
    for (Endpoint* end : {&e.local, &e.remote}) {
      for (auto& byte : end->addr) byte = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : rng() % 2);
      end->port = static_cast<uint16_t>(rng() % 3);
    }
    if (rng() % 4 == 0) e.remote.addr = e.local.addr;
    const ConnectionKey key = ConnectionKey::of(e);
    const bool swapped = std::tie(e.remote.addr, e.remote.port) < std::tie(e.local.addr, e.local.port);
    REQUIRE(key.low == (swapped ? e.remote : e.local));
    REQUIRE(key.high == (swapped ? e.local : e.remote));
    std::swap(e.local, e.remote);
    REQUIRE(ConnectionKey::of(e) == key);
  }
}

TEST_CASE("the attributor reports the same lines for moved and copied events, gathered or streamed", "[correlator]") {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NO_SOCKET", 1}, {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11}});
  types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NO_SOCKET", 3}, {"SKB_DROP_REASON_NETFILTER_DROP", 12},
                                     {"SKB_DROP_REASON_QUEUE_PURGE", 60}});
  types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_CLOSE", 7}});
  const KernelNames names = KernelNames::from_btf(types.get());
  const Formatter formatter{names, WallClock{0}};
  for (const bool raw : {false, true}) {
    Attributor vectors(names, {22}, raw), streaming(names, {22}, raw);
    Scenario s(raw ? 9 : 8, 300);
    std::vector<std::string> expected, got;
    for (int step = 0; step < 20000; ++step) {
      if (s.below(10) < 8) {
        TcpEvent e = s.event();
        if (s.below(2)) e.reason = s.below(2) ? (e.kind == EventKind::Drop ? 12u : 1u) : 60u;
        if (s.below(3) == 0) e.owner = Process{812, "sshd"}, e.owner_source = OwnerSource::Close;
        for (const Attribution& r : vectors.add(e)) expected.push_back(formatter.event_line(r));
        for (const Attribution& r : streaming.add(TcpEvent(e))) got.push_back(formatter.event_line(r));
      } else {
        const uint64_t at = s.now + 200;
        for (const Attribution& r : test::due(vectors, at)) expected.push_back(formatter.event_line(r));
        streaming.due(at, [&](const Attribution& r) { got.push_back(formatter.event_line(r)); });
      }
    }
    for (const Attribution& r : test::flush(vectors)) expected.push_back(formatter.event_line(r));
    streaming.flush([&](Attribution& r) { got.push_back(formatter.event_line(r)); });
    CHECK(!expected.empty());
    CHECK(got == expected);
    CHECK(streaming.ignored() == vectors.ignored());
    CHECK(streaming.pending() == 0);
  }
}
