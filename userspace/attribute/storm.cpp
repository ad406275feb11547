#include "attribute/storm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "text/escape.h"

namespace rsttrace {

std::string_view storm_state_name(StormState state) {
  switch (state) {
    case StormState::Start: return "start";
    case StormState::Ongoing: return "ongoing";
    case StormState::End: return "end";
  }
  return "end";
}

StormTracker::StormTracker(uint64_t threshold_per_second, StormCounters& kernel, JudgeAlone judge_alone)
    : threshold_(std::max<uint64_t>(threshold_per_second, 1)), kernel_(kernel), judge_alone_(std::move(judge_alone)) {
  for (uint32_t slot = RSTTRACE_STORM_SLOTS; slot-- > 0;) free_slots_.push_back(slot);
}

std::string class_peer_text(const ClassPeerCount& peer) {
  std::string text = format_address(peer.family, peer.addr);
  if (peer.prefix_len != (peer.family == 6 ? 128 : 32)) text += "/" + std::to_string(peer.prefix_len);
  return text;
}

std::optional<rsttrace_storm_key> loopback_twin_key(const rsttrace_storm_key& sent, uint32_t no_socket_drop_reason) {
  constexpr uint8_t kSyn = 0x02, kSynSent = 2;
  const bool no_socket_drop =
      sent.kind == RSTTRACE_KIND_DROP && no_socket_drop_reason != 0 && sent.reason == no_socket_drop_reason;
  if ((sent.kind != RSTTRACE_KIND_RESET_SENT && !no_socket_drop) || !sent.watched_local || sent.tcp_flags != kSyn)
    return std::nullopt;
  if (!rsttrace_storm_key_loopback(&sent)) return std::nullopt;
  // What rsttrace_storm_key_of() makes of the client socket's received reset
  // (fill_watched_socket_*: a full socket, no reason, no packet).
  rsttrace_storm_key twin{};
  std::memcpy(twin.peer_addr, sent.peer_addr, sizeof(twin.peer_addr));
  twin.netns = sent.netns;
  twin.port = sent.port;
  twin.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
  twin.family = sent.family;
  twin.kind = RSTTRACE_KIND_RESET_RECEIVED;
  twin.tcp_state = kSynSent;
  twin.peerless = sent.peerless;  // a class storm's twin is a class too
  return twin;
}

namespace {

// A twin's verdict: the sent storm's (the same connections), about the client
// end its lines count (kind, direction, state and addresses of that end).
Attribution twin_verdict(const Attribution& sent) {
  Attribution verdict = sent;
  TcpEvent& e = verdict.event;
  e.kind = EventKind::ResetReceived;
  std::swap(e.local, e.remote);
  e.tcp_state = 2;  // TCP_SYN_SENT
  e.reason.reset();
  e.tcp_flags.reset();
  e.full_socket = true;
  e.ingress = false;
  return verdict;
}

}  // namespace

StormTracker::Storm* StormTracker::find(const rsttrace_storm_key& key) {
  for (Storm& storm : storms_)
    if (StormKeyEqual{}(storm.key, key)) return &storm;
  return nullptr;
}

bool StormTracker::waits_for_sent_class(const rsttrace_storm_key& key) const {
  if (key.kind != RSTTRACE_KIND_RESET_RECEIVED) return false;
  for (const WindowEntry& seen : window_) {  // once per class reaching the threshold
    const auto twin = loopback_twin_key(seen.key, no_socket_drop_reason_);
    if (twin && StormKeyEqual{}(*twin, key)) return true;
  }
  return false;
}

uint32_t StormTracker::window_entry(const rsttrace_storm_key& key, bool room) {
  const uint32_t hash = static_cast<uint32_t>(StormKeyHash{}(key));
  uint32_t index = window_index_.find(hash, [&](uint32_t i) { return StormKeyEqual{}(window_[i].key, key); });
  if (index != FlatIndex::kNone || !room) return index;
  index = static_cast<uint32_t>(window_.size());
  window_.push_back(WindowEntry{key, 0, 0});
  window_index_.insert(hash, index);
  if (key.peerless) ++window_classes_;
  return index;
}

// Takes a slot and activates the storm's key in the kernel; false (counted as
// not started) when no slot is free or the kernel map refuses it.
bool StormTracker::begin_counting(Storm& storm) {
  if (free_slots_.empty()) {
    ++not_started_;
    return false;
  }
  storm.slot = free_slots_.back();
  try {
    // A class storm's peers are counted, not its twin's (the same connections).
    kernel_.activate(storm.key, storm.slot, storm.key.peerless && !storm.twin);
  } catch (const std::exception& error) {  // the class stays per connection: nothing is lost
    ++not_started_;
    spdlog::warn("{}; the class goes on with a line per connection", error.what());
    return false;
  }
  free_slots_.pop_back();
  ++started_;
  return true;
}

void StormTracker::start(const rsttrace_storm_key& key, const TcpEvent& event, const LineFunction& on_line) {
  // Events already in the ring buffer when the storm started arrive here too.
  if (find(key)) return;
  Storm storm;
  storm.key = key;
  storm.verdict = judge_alone_(key, event);
  storm.since_ns = event.monotonic_ns;
  storm.last_line_ns = event.monotonic_ns;
  storm.start_pending = storm.verdict.needs_provenance;
  // On loopback the client's received resets are the same connections: they
  // count from before the sent class does (a sent reset counted means its
  // received twin is counted too, never a line of its own) and stop after it.
  storm.twin_key = loopback_twin_key(key, no_socket_drop_reason_);
  const bool twin_new = storm.twin_key && !find(*storm.twin_key);
  if (twin_new) {
    if (free_slots_.size() < 2) {  // a sent storm without its twin would count its connections twice
      ++not_started_;
      return;
    }
    Storm twin;
    twin.key = *storm.twin_key;
    twin.verdict = twin_verdict(storm.verdict);
    twin.since_ns = twin.last_line_ns = event.monotonic_ns;
    twin.start_pending = storm.start_pending;
    twin.twin = true;
    if (!begin_counting(twin)) return;
    storms_.push_back(std::move(twin));
  }
  if (!begin_counting(storm)) {
    if (twin_new) end_twin(*storm.twin_key, event.monotonic_ns);
    return;
  }
  if (storm.twin_key && !twin_new) {
    // Started alone, its sent class below the threshold until now: its ends from here on.
    Storm* twin = find(*storm.twin_key);
    twin->twin = true;
    twin->verdict = twin_verdict(storm.verdict);
  }
  const std::optional<rsttrace_storm_key> twin_key = storm.twin_key;
  storms_.push_back(std::move(storm));
  if (storms_.back().start_pending) return;
  line(storms_.back(), StormState::Start, event.monotonic_ns, on_line);
  if (Storm* twin = twin_new ? find(*twin_key) : nullptr) line(*twin, StormState::Start, event.monotonic_ns, on_line);
}

void StormTracker::end_twin(const rsttrace_storm_key& key, uint64_t now_ns) {
  Storm* twin = find(key);
  if (!twin || twin->ending_since_ns != 0) return;
  kernel_.deactivate(twin->key, twin->slot);
  twin->ending_since_ns = now_ns;
}

void StormTracker::update_verdict_impl(const rsttrace_storm_key& key, Attribution verdict, uint64_t now_ns,
                                       const LineFunction& on_line) {
  Storm* storm = find(key);
  if (!storm) return;
  Storm* twin = storm->twin_key ? find(*storm->twin_key) : nullptr;
  if (twin && twin->twin) twin->verdict = twin_verdict(verdict);  // the same connections
  storm->verdict = std::move(verdict);
  for (Storm* each : {storm, twin})
    if (each && each->start_pending && (each == storm || each->twin)) {
      each->start_pending = false;
      line(*each, StormState::Start, now_ns, on_line);
    }
}

void StormTracker::sample_peers(Storm& storm, double events_per_second) {
  const uint32_t shift = peer_sample_shift(events_per_second);
  if (shift == storm.peer_shift) return;
  try {
    kernel_.sample_peers(storm.key, storm.slot, shift);
  } catch (const std::exception& error) {  // the peers stay counted as they were
    spdlog::warn("{}; its peers stay counted {}", error.what(),
                 storm.peer_shift ? "on 1 in " + std::to_string(1u << storm.peer_shift) + " events" : "on every event");
    return;
  }
  storm.peer_shift = shift;
  storm.max_peer_shift = std::max(storm.max_peer_shift, shift);
}

void StormTracker::line(Storm& storm, StormState state, uint64_t now_ns, const LineFunction& on_line) {
  const uint64_t counted = kernel_.count(storm.slot);
  StormReport report;
  report.state = state;
  report.key = storm.key;
  report.verdict = &storm.verdict;
  report.count = counted - storm.reported;
  report.total = counted;
  report.since_monotonic_ns = storm.since_ns;
  report.now_monotonic_ns = now_ns;
  report.interval_s = now_ns > storm.last_line_ns ? static_cast<double>(now_ns - storm.last_line_ns) / 1e9 : 0;
  report.twin = storm.twin;
  report.connections = storm.twin ? 0 : report.count;
  if (storm.key.peerless && !storm.twin) {
    fill_class_peers(storm, report);
    report.peer_sampling = 1u << storm.max_peer_shift;
  }
  aggregated_ += report.count;
  storm.reported = counted;
  storm.last_line_ns = now_ns;
  on_line(report);
}

namespace {

// Each of `now` with its events since the previous line: the counts then
// (an entry the LRU map dropped and re-added restarts from 0: all of it is new).
std::vector<StormReport::PeerShare> shares(const std::vector<ClassPeerCount>& now,
                                           const std::vector<ClassPeerCount>& before) {
  std::vector<StormReport::PeerShare> result;
  result.reserve(now.size());
  for (const ClassPeerCount& peer : now) {
    uint64_t previous = 0;
    for (const ClassPeerCount& old : before)
      if (old.addr == peer.addr && old.prefix_len == peer.prefix_len && old.count <= peer.count) previous = old.count;
    result.push_back({peer, peer.count - previous});
  }
  return result;
}

}  // namespace

void StormTracker::fill_class_peers(Storm& storm, StormReport& report) {
  ClassPeers peers = kernel_.class_peers(storm.slot, kTopPeers);
  report.top_peers = shares(peers.peers, storm.last_peers);
  report.top_prefixes = shares(peers.prefixes, storm.last_prefixes);
  storm.last_peers = std::move(peers.peers);
  storm.last_prefixes = std::move(peers.prefixes);
}

void StormTracker::stop_counting(uint64_t now_ns) {
  // Twins last: a sent reset counted has its received twin counted.
  for (bool twins : {false, true})
    for (Storm& storm : storms_)
      if (storm.twin == twins && storm.ending_since_ns == 0) {
        kernel_.deactivate(storm.key, storm.slot);
        storm.ending_since_ns = now_ns;
      }
}

void StormTracker::tick_impl(uint64_t now_ns, bool final, const LineFunction& on_line) {
  for (size_t i = 0; i < storms_.size();) {
    Storm& storm = storms_[i];
    if (storm.start_pending) {
      if (!final) {  // counting goes on in the kernel; the start line will cover it
        ++i;
        continue;
      }
      storm.start_pending = false;  // at exit without its provenance: the lines go out as they are
      line(storm, StormState::Start, now_ns, on_line);
    }
    const bool counts_peers = storm.key.peerless && !storm.twin && storm.ending_since_ns == 0;
    // A class storm's first rate, 100 ms in (its first line's is a second away).
    if (counts_peers && !storm.rate_checked && now_ns >= storm.since_ns + kSecondNs / 10) {
      storm.rate_checked = true;
      sample_peers(storm, static_cast<double>(kernel_.count(storm.slot)) * 1e9 / static_cast<double>(now_ns - storm.since_ns));
    }
    if (storm.ending_since_ns == 0 && now_ns >= storm.last_line_ns + kSecondNs) {
      const uint64_t before = storm.reported;
      const uint64_t span_ns = now_ns - storm.last_line_ns;
      line(storm, StormState::Ongoing, now_ns, on_line);
      if (counts_peers)
        sample_peers(storm, static_cast<double>(storm.reported - before) * 1e9 / static_cast<double>(span_ns));
      // Calm: fewer than half the threshold per second over the line's span
      // (in doubles: a long stall times a large threshold overflows 64 bits).
      // A twin ends after its sent storm, never on its own.
      if (!storm.twin && static_cast<double>(storm.reported - before) * 2 * kSecondNs <
          static_cast<double>(threshold_) * static_cast<double>(span_ns)) {
        kernel_.deactivate(storm.key, storm.slot);
        storm.ending_since_ns = now_ns;
      }
    }
    // A program that found the slot active just before deactivate() may still
    // be counting: the last count is read at least 50 ms later (programs run
    // for microseconds), or at exit after the ring buffer's last drain.
    if (storm.ending_since_ns != 0 && (final || now_ns >= storm.ending_since_ns + 50'000'000ULL)) {
      line(storm, StormState::End, now_ns, on_line);
      kernel_.remove(storm.key);
      free_slots_.push_back(storm.slot);
      const std::optional<rsttrace_storm_key> twin_key = storm.twin_key;
      storms_.erase(storms_.begin() + static_cast<std::ptrdiff_t>(i));
      // Its twin stops counting now, 50 ms after the sent class did.
      if (twin_key) end_twin(*twin_key, now_ns);
      continue;
    }
    ++i;
  }
}

}  // namespace rsttrace
