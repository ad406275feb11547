// The kernel side of storms, as the storm tracker (attribute/storm.h) sees
// it: BpfSession implements it on the storm maps, tests with a plain table.
// Here, not in attribute/, so that collect/ depends on nothing above it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rsttrace/records.h"

namespace rsttrace {

// One peer (prefix_len 32 or 128) or prefix (24 or 64) of a class storm, and
// its events since the storm's start (records.h: rsttrace_class_peer).
struct ClassPeerCount {
  std::array<uint8_t, 16> addr{};
  uint8_t family = 0;
  uint8_t prefix_len = 0;
  uint64_t count = 0;
};
struct ClassPeers {
  std::vector<ClassPeerCount> peers, prefixes;  // most first
};

class StormCounters {
 public:
  virtual ~StormCounters() = default;
  // Zero slot's counters, then count `key` there; track_peers: also count the
  // peers and prefixes of a class storm (key.peerless) in the kernel's LRU maps.
  virtual void activate(const rsttrace_storm_key& key, uint32_t slot, bool track_peers) = 0;
  // A counting class storm's peers and prefixes on 1 in 2^shift of its events
  // (records.h: RSTTRACE_STORM_PEER_SHIFT), each adding 2^shift.
  virtual void sample_peers(const rsttrace_storm_key& key, uint32_t slot, uint32_t shift) = 0;
  // Stop counting `key`: its events are emitted again.
  virtual void deactivate(const rsttrace_storm_key& key, uint32_t slot) = 0;
  virtual void remove(const rsttrace_storm_key& key) = 0;
  // Events counted in slot since activate(), summed over CPUs.
  virtual uint64_t count(uint32_t slot) const = 0;
  // A class storm's `top` peers and prefixes with the most events since
  // activate(); empty lists when the maps cannot be read (logged).
  virtual ClassPeers class_peers(uint32_t slot, size_t top) const = 0;
};

}  // namespace rsttrace
