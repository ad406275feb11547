// Storms: when one class of events that needs no per-connection correlation
// (refused connects, resets for no socket, firewall drops from one client)
// comes faster than a threshold, the BPF side counts it in a per-CPU slot
// instead of writing each event to the ring buffer, and rsttrace writes one
// line per class and second with the count (docs/events.md, "storm").
//
// The verdict of a storm is the one its class's events get judged alone
// (they are eligible precisely because the event alone decides it,
// rsttrace_storm_key_of() in records.h), judged once at the storm's start.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attribute/attribution.h"
#include "attribute/flat_index.h"
#include "collect/storm_counters.h"
#include "rsttrace/records.h"

namespace rsttrace {

struct StormKeyHash {
  size_t operator()(const rsttrace_storm_key& key) const {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&key), sizeof(key)));
  }
};
struct StormKeyEqual {
  bool operator()(const rsttrace_storm_key& a, const rsttrace_storm_key& b) const {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
  }
};

// The key's peer address in the shape of an Endpoint's.
inline std::array<uint8_t, 16> storm_peer_address(const rsttrace_storm_key& key) {
  std::array<uint8_t, 16> addr{};
  std::memcpy(addr.data(), key.peer_addr, addr.size());
  return addr;
}

// "192.0.2.7" for a peer, "192.0.2.0/24" or "2001:db8:1:2::/64" for a prefix.
std::string class_peer_text(const ClassPeerCount& peer);

enum class StormState { Start, Ongoing, End };
std::string_view storm_state_name(StormState state);  // start / ongoing / end

// One storm line: the count since the previous line of the same storm.
struct StormReport {
  StormState state = StormState::Start;
  rsttrace_storm_key key{};
  const Attribution* verdict = nullptr;  // the class judged alone; its event is the one that started the storm
  uint64_t count = 0;               // events since the previous line
  uint64_t total = 0;               // events since the start
  uint64_t since_monotonic_ns = 0;  // start of the storm
  uint64_t now_monotonic_ns = 0;
  double interval_s = 0;            // span the count covers
  // A loopback twin: the received ends of connections whose sent resets another
  // storm counts (both ends are in this namespace). Its events are counted
  // (accounting against the kernel) but stand for no connection of their own.
  bool twin = false;
  uint64_t connections = 0;  // connections `count` stands for: count, or 0 for a twin
  // A class storm (key.peerless): many peers, none above the threshold alone.
  // Its top peers and prefixes (/24, /64) from the kernel's bounded maps:
  // `count` since the storm's start (ClassPeerCount), `delta` since its previous line.
  struct PeerShare {
    ClassPeerCount peer;
    uint64_t delta = 0;
  };
  std::vector<PeerShare> top_peers, top_prefixes;
  // Their counts are estimates from 1 in `peer_sampling` events (the most the storm
  // used since its start: peer_sample_shift()); 1: every event, exact.
  uint32_t peer_sampling = 1;
};

// Events per second below which a class storm's peers and prefixes are counted on
// every event; from it, on 1 in 2 (records.h: RSTTRACE_STORM_PEER_SHIFT), from twice
// it 1 in 4, and so on to 1 in 64 from 32 times it: between 1,024 and 2,048 sampled
// events a second up to 131,072 a second, enough for the top 10 of a flood. Measured
// (bench/prog_cost.py, 6.1 guest, --icount): with 1 in 8 to 1 in 16 the accounting was
// still ~100 of a refused connection's ~1,130 instructions of BPF at the guest's maximum
// (~30,000 a second); session 10 on this machine's 6.18: ~250 ns of ~720 ns exact.
// Its share of a connection's cost falls as the rate rises, to the cap.
// Below 2,048 a second the accounting costs under 0.1% of a core whatever the machine,
// and counts stay exact.
inline constexpr double kExactPeersPerSecond = 2048;
inline uint32_t peer_sample_shift(double events_per_second) {
  uint32_t shift = 0;
  for (double limit = kExactPeersPerSecond; shift < RSTTRACE_STORM_PEER_SHIFT_MAX && events_per_second >= limit;
       limit *= 2)
    ++shift;
  return shift;
}

// The class of the received ends of a loopback reset-sent class: a refused
// SYN from a loopback address (127.0.0.0/8, ::1) came from a socket of this
// namespace, whose SYN_SENT socket receives the reset (rsttrace_storm_key_of()
// of that event). nullopt for other classes. `no_socket_drop_reason`: this
// kernel's SKB_DROP_REASON_NO_SOCKET (0: unknown). Where tcp_send_reset does
// not fire for a reset without a socket (6.1, measured in its guest), the
// server end of a refused SYN is that drop, not a sent reset: it is then the
// sent class too.
std::optional<rsttrace_storm_key> loopback_twin_key(const rsttrace_storm_key& sent, uint32_t no_socket_drop_reason = 0);

class StormTracker {
 public:
  // The class's verdict from the event that started it (its key alongside).
  using JudgeAlone = std::function<Attribution(const rsttrace_storm_key&, const TcpEvent&)>;
  static constexpr uint64_t kSecondNs = 1'000'000'000ULL;
  // Distinct classes counted per second; beyond, new classes are not tracked
  // that second (a scan from very many addresses stays per connection).
  static constexpr size_t kMaxWindowKeys = 16384;
  // Distinct peerless classes tracked per second, besides (few: a class has no peer).
  static constexpr size_t kMaxWindowClasses = 1024;
  // Peers and prefixes a class storm's line names.
  static constexpr size_t kTopPeers = 10;

  // threshold: events per second of one class that start a storm; a storm
  // ends after a second with fewer than threshold / 2.
  StormTracker(uint64_t threshold_per_second, StormCounters& kernel, JudgeAlone judge_alone);
  // This kernel's SKB_DROP_REASON_NO_SOCKET, for loopback twins (loopback_twin_key()).
  void set_no_socket_drop_reason(uint32_t reason) { no_socket_drop_reason_ = reason; }

  // An event the kernel emitted, with its class (rsttrace_storm_key_of()).
  // May start a storm: the start line goes to on_line.
  template <typename OnLine>
  void observe(const rsttrace_storm_key& key, const TcpEvent& event, OnLine&& on_line) {
    if (event.monotonic_ns >= window_start_ns_ + kSecondNs || event.monotonic_ns < window_start_ns_) {
      window_.clear();  // keeps its capacity: a flood from many peers allocates nothing per event
      window_index_.clear();
      window_classes_ = 0;
      last_class_index_ = FlatIndex::kNone;
      window_start_ns_ = event.monotonic_ns;
    }
    // The class first: a flood from more peers than the window holds still counts in it.
    rsttrace_storm_key class_key = key;
    rsttrace_storm_class_of(&class_key);
    // A flood's events share their class: the last one's entry, without hashing (measured: the
    // class's hash and lookup made observe() 1.65 times as slow).
    if (last_class_index_ == FlatIndex::kNone || !StormKeyEqual{}(window_[last_class_index_].key, class_key))
      last_class_index_ = window_entry(class_key, window_classes_ < kMaxWindowClasses);
    const uint32_t class_index = last_class_index_;
    uint32_t peer_events = 0;
    if (const uint32_t index = window_entry(key, window_.size() - window_classes_ < kMaxWindowKeys);
        index != FlatIndex::kNone) {
      peer_events = ++window_[index].count;
      if (peer_events == threshold_ && !waits_for_sent_class(key)) start(key, event, on_line_function(on_line));
    }
    if (class_index == FlatIndex::kNone) return;
    WindowEntry& klass = window_[class_index];
    klass.max_peer = std::max(klass.max_peer, peer_events);
    // Needs no single peer: none has more than half the threshold (that one gets a storm of its own).
    if (++klass.count == threshold_ && uint64_t{klass.max_peer} * 2 <= threshold_ && !waits_for_sent_class(class_key))
      start(class_key, event, on_line_function(on_line));
  }

  // Once per poll: a line per storm each second, ends storms that calmed down.
  template <typename OnLine>
  void tick(uint64_t now_ns, OnLine&& on_line) {
    tick_impl(now_ns, false, on_line_function(on_line));
  }
  // At exit: stop_counting(), drain the ring buffer, then flush(): the last
  // count and an end line for every storm.
  void stop_counting(uint64_t now_ns);
  template <typename OnLine>
  void flush(uint64_t now_ns, OnLine&& on_line) {
    stop_counting(now_ns);
    tick_impl(now_ns, true, on_line_function(on_line));
  }

  // The verdict of a storm, once its provenance (the rule, the jail) is in.
  // A storm whose verdict needed provenance (Attribution::needs_provenance) holds
  // its start line until then, so that every line of it names the rule: the
  // start line goes out here. Nothing if the storm has ended meanwhile.
  template <typename OnLine>
  void update_verdict(const rsttrace_storm_key& key, Attribution verdict, uint64_t now_ns, OnLine&& on_line) {
    update_verdict_impl(key, std::move(verdict), now_ns, on_line_function(on_line));
  }

  size_t active() const { return storms_.size(); }
  uint64_t aggregated() const { return aggregated_; }  // events reported in storm lines
  uint64_t started() const { return started_; }
  // Storms not started: every slot in use, or the kernel map refused the key.
  uint64_t not_started() const { return not_started_; }

 private:
  using LineFunction = std::function<void(const StormReport&)>;
  template <typename OnLine>
  static LineFunction on_line_function(OnLine& on_line) {
    return [&on_line](const StormReport& report) { on_line(report); };
  }
  struct Storm {
    rsttrace_storm_key key{};
    uint32_t slot = 0;
    Attribution verdict;
    uint64_t since_ns = 0;
    uint64_t last_line_ns = 0;
    uint64_t reported = 0;       // kernel count already in lines
    uint64_t ending_since_ns = 0;  // deactivated at; 0 while counting
    bool start_pending = false;    // the start line waits for the verdict's provenance
    bool twin = false;             // loopback twin (StormReport::twin): follows its sent storm
    std::optional<rsttrace_storm_key> twin_key;  // a sent storm's twin, counting with it
    std::vector<ClassPeerCount> last_peers, last_prefixes;  // a class storm's, as its previous line named them
    uint32_t peer_shift = 0, max_peer_shift = 0;  // a class storm's sampling (peer_sample_shift()): now, most since start
    bool rate_checked = false;                    // its rate 100 ms in was measured
  };
  // A class storm's peers sampled as its rate asks (peer_sample_shift()); best effort.
  void sample_peers(Storm& storm, double events_per_second);
  void update_verdict_impl(const rsttrace_storm_key& key, Attribution verdict, uint64_t now_ns, const LineFunction& on_line);
  void start(const rsttrace_storm_key& key, const TcpEvent& event, const LineFunction& on_line);
  bool begin_counting(Storm& storm);
  // The window's entry for `key`, added (count 0) if `room`; FlatIndex::kNone if not there and no room.
  uint32_t window_entry(const rsttrace_storm_key& key, bool room);
  void fill_class_peers(Storm& storm, StormReport& report);
  Storm* find(const rsttrace_storm_key& key);
  void end_twin(const rsttrace_storm_key& key, uint64_t now_ns);
  // A loopback twin class whose sent class was seen this second does not
  // start alone: the sent class's storm starts it (counted as ends, not connections).
  bool waits_for_sent_class(const rsttrace_storm_key& key) const;
  void tick_impl(uint64_t now_ns, bool final, const LineFunction& on_line);
  void line(Storm& storm, StormState state, uint64_t now_ns, const LineFunction& on_line);

  uint64_t threshold_;
  uint32_t no_socket_drop_reason_ = 0;  // loopback_twin_key()'s
  StormCounters& kernel_;
  JudgeAlone judge_alone_;
  // This second's classes and their counts, looked up through window_index_.
  struct WindowEntry {
    rsttrace_storm_key key{};
    uint32_t count = 0;
    uint32_t max_peer = 0;  // a peerless class's: the most events of one of its peers
  };
  std::vector<WindowEntry> window_;
  size_t window_classes_ = 0;  // entries of window_ that are peerless classes
  uint32_t last_class_index_ = FlatIndex::kNone;  // the last event's class in window_
  FlatIndex window_index_;
  uint64_t window_start_ns_ = 0;
  std::vector<Storm> storms_;
  std::vector<uint32_t> free_slots_;
  uint64_t aggregated_ = 0;
  uint64_t started_ = 0;
  uint64_t not_started_ = 0;
};

}  // namespace rsttrace
