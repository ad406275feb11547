// Evidence that is not a TCP event: which processes consulted the TCP
// wrappers files, and when. Bounded: the oldest processes are forgotten first.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>

#include "attribute/connection_history.h"
#include "collect/tcp_event.h"

namespace rsttrace {

struct WrapperCheck {
  uint64_t first_ns = 0;  // first open by this process
  uint64_t last_ns = 0;   // last open by this process
  bool hosts_allow = false;
  bool hosts_deny = false;
  uint32_t mnt_ns = 0;    // which copy of the files it read
  uint32_t uid = 0;       // who read them, as the initial user namespace sees it
  uint32_t user_ns = 0;   // its user namespace: not the initial one = its own word
  uint64_t sequence = 0;  // insertion number, to recognise stale eviction entries
};

class Evidence {
 public:
  explicit Evidence(size_t max_processes = 16384) : max_processes_(max_processes) {}

  void add(const WrapperOpen& open);
  void add(const ConnectionNote& note) { connections_.add(note); }
  const ConnectionHistory& connections() const { return connections_; }
  // The wrapper files `pid` opened for reading within [from_ns, to_ns].
  std::optional<WrapperCheck> wrapper_check(uint32_t pid, uint64_t from_ns, uint64_t to_ns) const;
  // The last process seen opening `file` for writing in mount namespace
  // `mnt_ns`, successfully (the BPF side reports only opens that succeeded).
  std::optional<WrapperOpen> last_writer(uint32_t mnt_ns, WrapperFile file) const;
  uint64_t evicted() const { return evicted_; }

 private:
  size_t max_processes_;
  std::unordered_map<uint32_t, WrapperCheck> checks_;
  std::deque<std::pair<uint32_t, uint64_t>> order_;  // (pid, sequence) in insertion order, for eviction
  uint64_t next_sequence_ = 0;
  std::map<std::pair<uint32_t, WrapperFile>, WrapperOpen> writers_;  // bounded like checks_
  uint64_t evicted_ = 0;
  ConnectionHistory connections_;
};

}  // namespace rsttrace
