#include "attribute/correlator.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

#include "attribute/tcp_flags.h"

namespace rsttrace {
namespace {

using namespace tcp_flag;

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

namespace {

// (addr, port) < (addr, port), the address compared byte by byte (as memcmp
// would), here as two big-endian words.
bool endpoint_less(const Endpoint& a, const Endpoint& b) {
  uint64_t a_words[2], b_words[2];
  std::memcpy(a_words, a.addr.data(), 16);
  std::memcpy(b_words, b.addr.data(), 16);
  for (int i = 0; i < 2; ++i) {
    const uint64_t x = be64toh(a_words[i]), y = be64toh(b_words[i]);
    if (x != y) return x < y;
  }
  return a.port < b.port;
}

}  // namespace

ConnectionKey ConnectionKey::of(const TcpEvent& event) {
  ConnectionKey key{event.netns, event.family, event.local, event.remote};
  if (endpoint_less(key.high, key.low)) std::swap(key.low, key.high);
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
// socket on the same end means another connection. A socket is told by its
// cookie, which the kernel never reuses; its address (sock_id) is reused at
// once by the slab (issue 15: an abort leaves no TIME_WAIT, and the next
// connect() from that port often got the freed socket's address), so the
// address counts only where a kernel gave no cookie.
namespace {

constexpr uint8_t kTcpListen = 10;  // the kernel's TCP_LISTEN

// A listener's reset of a segment that is not a SYN (TCP_FLAGS: an ACK with
// no request behind it) answers a late segment of the four-tuple's
// connection, whose socket has just gone (an abort leaves no TIME_WAIT: the
// client's next segment, in flight, meets the listener). It ends that
// connection; a new one would start with a SYN.
bool is_late_listener_reset(const TcpEvent& event) {
  return event.kind == EventKind::ResetSent && event.tcp_state == kTcpListen && event.tcp_flags && !is_syn(event);
}

}  // namespace

bool Correlator::starts_new_connection(const Group& group, const TcpEvent& event) {
  if (is_late_listener_reset(event)) return false;
  return std::any_of(group.events.begin(), group.events.end(), [&](const TcpEvent& seen) {
    // Same hook, same end: as with the address before, two sockets there are two connections.
    if (seen.kind != event.kind || seen.local != event.local) return false;
    if (seen.sock_cookie && event.sock_cookie) {
      if (seen.sock_cookie != event.sock_cookie) return true;
    } else if (seen.sock_id && event.sock_id && seen.sock_id != event.sock_id) {
      return true;
    }
    return is_syn(seen) && is_syn(event) && seen.tcp_seq != event.tcp_seq;
  });
}

bool Correlator::add(const TcpEvent& event) { return add_event(event); }

bool Correlator::add(TcpEvent&& event) { return add_event(std::move(event)); }

template <typename Event>
bool Correlator::add_event(Event&& event) {
  const ConnectionKey key = ConnectionKey::of(event);
  if (absorbs_late_listener_reset(key, event)) {
    ++absorbed_;
    return false;
  }
  if (is_syn_drop(event)) {
    auto reported = reported_drops_.find(key);
    if (reported != reported_drops_.end() && event.monotonic_ns <= reported->second.until_ns &&
        event.tcp_seq == reported->second.isn) {
      ++absorbed_;
      return false;
    }
  }
  // The connection's slot: the last event's (a live slot is its key's only
  // one), else one lookup.
  uint32_t index = last_slot_;
  if (index >= slots_.size() || !slots_[index].live() || !(slots_[index].key == key)) {
    const uint32_t hash = static_cast<uint32_t>(ConnectionKeyHash()(key));
    index = find_slot(key, hash);
    if (index == kNoSlot) {
      if (free_slots_.empty()) {
        index = static_cast<uint32_t>(slots_.size());
        slots_.emplace_back();
      } else {
        index = free_slots_.back();
        free_slots_.pop_back();
      }
      slots_[index].key = key;
      slots_[index].hash = hash;
      index_.insert(hash, index);
    }
    last_slot_ = index;
  }
  if (slots_[index].open() && starts_new_connection(groups_[slots_[index].group], event)) {
    Group& old = groups_[slots_[index].group];
    remember_judged(key, old);
    early_.push_back(std::move(old.events));
    close(slots_[index]);
  }
  const bool inserted = !slots_[index].open();
  if (inserted) {
    // A reset seen from both ends: no regrowth in a reset storm (a third event,
    // a drop, regrows it once). Room for 3 held 368 bytes more per connection,
    // and a flood's first drain holds thousands at once: the peak of RSS. A
    // dropped SYN mostly stays alone (a drop storm holds many): no room kept.
    slots_[index].group = groups_.open(event.monotonic_ns, is_syn_drop(event) ? 0 : 2);
  }
  Group& group = groups_[slots_[index].group];
  group.last_ns = std::max(group.last_ns, event.monotonic_ns);
  group.events.push_back(std::forward<Event>(event));
  due_.emplace(due_at(group), index);
  ++slots_[index].refs;
  if (inserted) by_start_.emplace_back(group.first_ns, key);
  while (groups_.open_count() > settings_.max_open && !by_start_.empty()) {
    // Bounded memory: judge the group that started first, now.
    const auto [first_ns, oldest_key] = by_start_.front();
    by_start_.pop_front();
    const uint32_t oldest = find_slot(oldest_key, static_cast<uint32_t>(ConnectionKeyHash()(oldest_key)));
    if (oldest == kNoSlot || !slots_[oldest].open()) continue;  // judged already
    Group& evicted = groups_[slots_[oldest].group];
    if (evicted.first_ns != first_ns) continue;  // judged already
    remember_judged(slots_[oldest].key, evicted);
    early_.push_back(std::move(evicted.events));
    close(slots_[oldest]);
    ++evicted_;
    if (slots_[oldest].refs == 0) release(oldest);
  }
  return true;
}

void Correlator::close(Slot& slot) {
  groups_.close(slot.group);
  slot.group = kNoGroup;
}

void Correlator::unref(uint32_t index) {
  if (--slots_[index].refs == 0 && !slots_[index].open()) release(index);
}

void Correlator::release(uint32_t index) {
  index_.erase(slots_[index].hash, index);
  free_slots_.push_back(index);
}

void Correlator::forget_all() {
  due_ = {};
  by_start_.clear();
  slots_.clear();  // no open group and no entry: no slot is in use
  free_slots_.clear();
  groups_.clear();
  index_.clear();
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

// The late segment may reach the listener after the connection's group was
// judged (its line written): a client scheduled late on a loaded machine sent
// it more than settle_ns after the abort (CI's lab: Debian 13's sshd refusing
// by PerSourcePenalties got a second, 'kernel' line). Within absorb_late_ns of
// the abort it is that connection's, already reported: absorbed, counted.
bool Correlator::absorbs_late_listener_reset(const ConnectionKey& key, const TcpEvent& event) const {
  if (aborted_.empty() || !is_late_listener_reset(event)) return false;
  const size_t hash = ConnectionKeyHash()(key);
  const AbortedEntry& aborted = aborted_[hash & (kAbortedEntries - 1)];
  if (event.monotonic_ns > aborted.until_ns || !(aborted.key == key)) return false;
  const uint32_t slot = find_slot(key, static_cast<uint32_t>(hash));
  return slot == kNoSlot || !slots_[slot].open();  // an open group takes it (starts_new_connection)
}

void Correlator::remember_if_aborted(const ConnectionKey& key, const Group& group) {
  const bool aborted = std::any_of(group.events.begin(), group.events.end(), [](const TcpEvent& event) {
    // A reset sent for no socket has no state (nullopt): a refusal, not an abort.
    return event.kind == EventKind::ResetSent && event.tcp_state && *event.tcp_state != kTcpListen;
  });
  if (!aborted) return;
  if (aborted_.empty()) aborted_.resize(kAbortedEntries);
  aborted_[ConnectionKeyHash()(key) & (kAbortedEntries - 1)] = {key, group.last_ns + settings_.absorb_late_ns};
}

}  // namespace rsttrace
