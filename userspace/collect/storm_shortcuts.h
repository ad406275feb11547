// Loopback class storms' shortcuts (records.h: rsttrace_shortcut_of): which
// storms have one and what each table word must hold. BpfSession writes the
// words to the BPF program's .bss; this keeps the bookkeeping, unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "rsttrace/records.h"

namespace rsttrace {

// The shortcut of a storm whose key the kernel can tell from its received
// twin's socket alone (bpf/storm.bpf.h: count_loopback_twin): a loopback class
// storm of resets received in SYN_SENT, the watched port the remote end's.
inline std::optional<uint64_t> twin_shortcut(const rsttrace_storm_key& key, uint32_t slot, bool track_peers) {
  if (!key.peerless || track_peers || !rsttrace_storm_key_loopback(&key) || key.kind != RSTTRACE_KIND_RESET_RECEIVED ||
      key.tcp_state != 2 /* TCP_SYN_SENT */ || key.flags != (RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK) ||
      key.reason != 0 || key.tcp_flags != 0 || key.watched_local != 0)
    return std::nullopt;
  return rsttrace_shortcut_of(key.netns, key.port, key.family, slot);
}

// The shortcut of a storm_peers entry that is a loopback class's scope (bpf/storm.bpf.h: connect_in_storm).
inline uint64_t connect_shortcut(const rsttrace_storm_peer& peer) {
  return rsttrace_shortcut_of(peer.netns, peer.port, peer.family, 0);
}

class ShortcutTable {
 public:
  // Adds the storm `id` (its key's bytes) with its shortcut; returns the index of the word that changed.
  uint32_t add(const std::string& id, uint64_t shortcut) {
    entries_[id] = shortcut;
    return index_of(shortcut);
  }
  // Removes storm `id`; the index of the word that changed, if it had one.
  std::optional<uint32_t> remove(const std::string& id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    const uint32_t index = index_of(it->second);
    entries_.erase(it);
    return index;
  }
  // What word `index` must hold: 0, its one shortcut, or RSTTRACE_SHORTCUT_SEVERAL.
  uint64_t word(uint32_t index) const {
    uint64_t found = 0;
    for (const auto& [id, shortcut] : entries_) {
      if (index_of(shortcut) != index) continue;
      if (found && found != shortcut) return RSTTRACE_SHORTCUT_SEVERAL;
      found = shortcut;
    }
    return found;
  }
  static uint32_t index_of(uint64_t shortcut) { return static_cast<uint32_t>(shortcut >> 16) & (RSTTRACE_SHORTCUTS - 1); }

 private:
  std::map<std::string, uint64_t> entries_;  // bounded by the storm slots
};

}  // namespace rsttrace
