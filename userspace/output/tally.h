// Counts for summaries: reports by verdict and by remote address, over an
// interval or a whole run. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attribute/attribution.h"

namespace rsttrace {

// Counts by key with a bound on distinct keys (a scan must not grow it
// forever): beyond `max_keys`, new keys are counted under `overflow_key`.
class BoundedCounts {
 public:
  BoundedCounts(size_t max_keys, std::string overflow_key)
      : max_keys_(max_keys), overflow_key_(std::move(overflow_key)) {}
  BoundedCounts(const BoundedCounts& other)
      : max_keys_(other.max_keys_), overflow_key_(other.overflow_key_), counts_(other.counts_) {}
  BoundedCounts& operator=(const BoundedCounts& other) {
    max_keys_ = other.max_keys_;
    overflow_key_ = other.overflow_key_;
    counts_ = other.counts_;
    last_ = nullptr;
    return *this;
  }
  void add(const std::string& key, uint64_t count = 1);
  const std::map<std::string, uint64_t>& all() const { return counts_; }
  // The `n` keys with the highest counts, highest first, ties by key.
  std::vector<std::pair<std::string, uint64_t>> top(size_t n) const;

 private:
  size_t max_keys_;
  std::string overflow_key_;
  std::map<std::string, uint64_t> counts_;
  // The entry the last key was counted in: a storm repeats the same remote.
  std::pair<const std::string, uint64_t>* last_ = nullptr;
};

class Tally {
 public:
  void add(const Attribution& report);
  // Events of a storm line (attribute/storm.h): counted by verdict apart from
  // the event lines, and under the storm's peer among the remotes.
  void add_storm(const Attribution& verdict, const std::string& peer_addr, uint64_t count) {
    add_storm(verdict, peer_addr, count, count);
  }
  // The same, for a line whose `count` events stand for `connections`
  // connections (a loopback twin's: 0): verdicts and remotes count connections.
  void add_storm(const Attribution& verdict, const std::string& peer_addr, uint64_t count, uint64_t connections);
  // A class storm's line names no peer (peer_addr empty above): its top peers'
  // connections since its previous line count here, among the remotes.
  void add_storm_peer(const std::string& peer_addr, uint64_t connections) { by_remote_.add(peer_addr, connections); }
  void clear() {
    total_ = 0;
    by_verdict_ = {};
    storm_events_ = 0;
    storm_connections_ = 0;
    storm_by_verdict_ = {};
    by_remote_ = BoundedCounts(kMaxRemotes, "(other addresses)");
  }
  uint64_t total() const { return total_; }
  // By verdict name, the verdicts counted at least once.
  std::map<std::string, uint64_t> by_verdict() const { return named(by_verdict_); }
  uint64_t storm_events() const { return storm_events_; }
  uint64_t storm_connections() const { return storm_connections_; }  // storm_by_verdict()'s sum
  std::map<std::string, uint64_t> storm_by_verdict() const { return named(storm_by_verdict_); }
  // The `n` remote addresses with the most reports, most first (ties by address).
  std::vector<std::pair<std::string, uint64_t>> top_remotes(size_t n) const;
  // "12 events: tcp-wrappers 10, firewall 2; top remotes 127.0.0.2 (12)"
  std::string text(size_t top = 5) const;

 private:
  uint64_t total_ = 0;
  using VerdictCounts = std::array<uint64_t, kVerdictCount>;  // indexed by Verdict
  static std::map<std::string, uint64_t> named(const VerdictCounts& counts);
  VerdictCounts by_verdict_{};
  uint64_t storm_events_ = 0;
  uint64_t storm_connections_ = 0;
  VerdictCounts storm_by_verdict_{};
  static constexpr size_t kMaxRemotes = 4096;
  BoundedCounts by_remote_{kMaxRemotes, "(other addresses)"};
};

}  // namespace rsttrace
