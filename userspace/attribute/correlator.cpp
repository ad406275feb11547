#include "attribute/correlator.h"

#include <algorithm>
#include <cstring>

namespace rsttrace {
namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;

bool is_syn_drop(const TcpEvent& event) {
  return event.kind == EventKind::Drop && event.tcp_flags && (*event.tcp_flags & (kSyn | kAck | kRst)) == kSyn;
}

}  // namespace

size_t ConnectionKeyHash::operator()(const ConnectionKey& key) const {
  // The fields as 64-bit words, multiplied and folded (no padding bytes read).
  uint64_t words[6];
  std::memcpy(&words[0], key.low.addr.data(), 16);
  std::memcpy(&words[2], key.high.addr.data(), 16);
  words[4] = (static_cast<uint64_t>(key.netns) << 32) | static_cast<uint32_t>(key.family);
  words[5] = (static_cast<uint64_t>(key.low.port) << 16) | key.high.port;
  uint64_t hash = 0x9e3779b97f4a7c15ULL;
  for (uint64_t word : words) {
    hash ^= word;
    hash *= 0xbf58476d1ce4e5b9ULL;
    hash ^= hash >> 31;
  }
  return static_cast<size_t>(hash);
}

ConnectionKey ConnectionKey::of(const TcpEvent& event) {
  ConnectionKey key{event.netns, event.family, event.local, event.remote};
  if (std::tie(key.high.addr, key.high.port) < std::tie(key.low.addr, key.low.port)) std::swap(key.low, key.high);
  return key;
}

uint64_t Correlator::due_at(const Group& group) const {
  // Only SYN drops so far: the first retransmission (after 1 s) tells a
  // silent DROP from a REJECT, so wait for it; any reset settles normally.
  const bool only_syn_drops = std::all_of(group.events.begin(), group.events.end(), is_syn_drop);
  if (only_syn_drops && group.events.size() == 1)
    return std::max(group.first_ns + settings_.drop_wait_ns, group.last_ns + settings_.settle_ns);
  return group.last_ns + settings_.settle_ns;
}

// The same four-tuple may carry a new connection soon after (a client port
// reused): a different SYN (another initial sequence number) or another
// socket on the same end means another connection.
bool Correlator::starts_new_connection(const Group& group, const TcpEvent& event) {
  return std::any_of(group.events.begin(), group.events.end(), [&](const TcpEvent& seen) {
    if (seen.kind != event.kind || seen.local != event.local) return false;
    if (seen.sock_id && event.sock_id && seen.sock_id != event.sock_id) return true;
    const bool both_syns = seen.tcp_flags && event.tcp_flags && (*seen.tcp_flags & (kSyn | kAck)) == kSyn &&
                           (*event.tcp_flags & (kSyn | kAck)) == kSyn;
    return both_syns && seen.tcp_seq != event.tcp_seq;
  });
}

bool Correlator::add(const TcpEvent& event) {
  const ConnectionKey key = ConnectionKey::of(event);
  if (is_syn_drop(event)) {
    auto reported = reported_drops_.find(key);
    if (reported != reported_drops_.end() && event.monotonic_ns <= reported->second.until_ns &&
        event.tcp_seq == reported->second.isn) {
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
  if (inserted) {
    group.first_ns = event.monotonic_ns;
    // A reset seen from both ends plus a drop: no regrowth in a reset storm. A
    // dropped SYN mostly stays alone (a drop storm holds many): no room kept.
    if (!is_syn_drop(event)) group.events.reserve(3);
  }
  group.last_ns = std::max(group.last_ns, event.monotonic_ns);
  group.events.push_back(event);
  due_.emplace(due_at(group), key);
  if (inserted) by_start_.emplace_back(group.first_ns, key);
  while (open_.size() > settings_.max_open && !by_start_.empty()) {
    // Bounded memory: judge the group that started first, now.
    const auto [first_ns, oldest_key] = by_start_.front();
    by_start_.pop_front();
    auto oldest = open_.find(oldest_key);
    if (oldest == open_.end() || oldest->second.first_ns != first_ns) continue;  // judged already
    remember_if_drop(oldest->first, oldest->second);
    early_.push_back(std::move(oldest->second.events));
    open_.erase(oldest);
    ++evicted_;
  }
  return true;
}

void Correlator::remember_if_drop(const ConnectionKey& key, const Group& group) {
  // Only a SYN that met silence is retransmitted; one answered by a reset
  // (no listener, REJECT) is not, and remembering it would only cost memory.
  if (!std::all_of(group.events.begin(), group.events.end(), is_syn_drop)) return;
  auto drop = group.events.begin();
  if (drop == group.events.end()) return;
  // Bounded: in a flood, forgetting means a later retransmission gets a line of its own.
  if (reported_drops_.size() >= settings_.max_open) reported_drops_.clear();
  reported_drops_[key] = {group.last_ns + settings_.absorb_drops_ns, drop->tcp_seq};
}

std::vector<std::vector<TcpEvent>> Correlator::take_due(uint64_t now_ns) {
  std::vector<std::vector<TcpEvent>> groups = std::move(early_);
  early_.clear();
  // Only the groups whose time has come are looked at: a storm keeps many open.
  while (!due_.empty() && due_.top().first <= now_ns) {
    const ConnectionKey key = due_.top().second;
    due_.pop();
    auto it = open_.find(key);
    if (it == open_.end() || due_at(it->second) > now_ns) continue;  // stale entry
    remember_if_drop(it->first, it->second);
    groups.push_back(std::move(it->second.events));
    open_.erase(it);
  }
  if (open_.empty()) {  // drop the stale entries left behind
    due_ = {};
    by_start_.clear();
  }
  while (by_start_.size() > 2 * open_.size() + 1024) by_start_.pop_front();  // stale: their groups are gone
  if (now_ns >= next_expiry_ns_) {  // a sweep a second is enough: entries last 75 s
    std::erase_if(reported_drops_, [now_ns](const auto& entry) { return entry.second.until_ns < now_ns; });
    next_expiry_ns_ = now_ns + 1'000'000'000ULL;
  }
  return groups;
}

std::vector<std::vector<TcpEvent>> Correlator::take_all() { return take_due(UINT64_MAX); }

}  // namespace rsttrace
