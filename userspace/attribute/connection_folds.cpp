#include "attribute/connection_folds.h"

#include <algorithm>
#include <cstdio>

#include "attribute/tcp_flags.h"

namespace rsttrace {

bool opens_fold(const Attribution& report) {
  // A segment of an established connection: ACK set, no SYN (a dropped SYN's
  // retransmissions are the correlator's), no RST (a connection's last word).
  const TcpEvent& e = report.event;
  if (e.kind != EventKind::Drop || !e.tcp_flags) return false;
  const uint8_t flags = *e.tcp_flags;
  return (flags & tcp_flag::kAck) && !(flags & (tcp_flag::kSyn | tcp_flag::kRst));
}

void ConnectionFolds::open(Attribution& report, uint64_t last_ns) {
  if (folds_.size() >= settings_.max_folds) return;  // bounded: the line folds nothing
  const ConnectionKey key = ConnectionKey::of(report.event);
  if (auto previous = by_key_.find(key); previous != by_key_.end()) {
    // Another connection on the same four-tuple: the old one is over.
    Fold& old = folds_.at(previous->second);
    old.ended = true;
    by_key_.erase(previous);
  }
  const uint64_t id = next_id_++;
  Fold fold{.key = key, .cookie = report.event.sock_cookie, .reason = report.event.reason, .first_ns = report.event.monotonic_ns,
            .previous_ns = report.event.monotonic_ns, .last_ns = last_ns};
  folds_.emplace(id, std::move(fold));
  by_key_.emplace(key, id);
  report.fold_id = id;
}

bool ConnectionFolds::absorb(const TcpEvent& event) {
  if (event.kind != EventKind::Drop || by_key_.empty()) return false;
  auto found = by_key_.find(ConnectionKey::of(event));
  if (found == by_key_.end()) return false;
  Fold& fold = folds_.at(found->second);
  // The same hook end with another socket: a new connection on the same four-tuple.
  if (fold.cookie && event.sock_cookie && fold.cookie != event.sock_cookie) return false;
  if (event.reason != fold.reason) return false;
  if (fold.ended || expired(fold, event.monotonic_ns)) return false;
  if (fold.written) {
    ++absorbed_;
  } else {
    ++fold.later;
  }
  fold.previous_ns = fold.last_ns;
  fold.last_ns = std::max(fold.last_ns, event.monotonic_ns);
  return true;
}

void ConnectionFolds::end(const TcpEvent& event) {
  if (by_key_.empty()) return;
  auto found = by_key_.find(ConnectionKey::of(event));
  if (found == by_key_.end()) return;
  folds_.at(found->second).ended = true;
}

uint64_t ConnectionFolds::due_at(const Fold& fold) const {
  if (fold.ended) return 0;
  // Retransmissions come at doubling intervals: quiet for three times the
  // last gap means they stopped (the ban was lifted, or the peer gave up).
  const uint64_t quiet = std::max(settings_.min_quiet_ns, 3 * (fold.last_ns - fold.previous_ns));
  return std::min(fold.first_ns + settings_.max_hold_ns, fold.last_ns + quiet);
}

bool ConnectionFolds::expired(const Fold& fold, uint64_t now_ns) const {
  return fold.written && now_ns > fold.last_ns + settings_.absorb_ns;
}

void ConnectionFolds::release(Fold& fold) {
  fold.written = true;
  Attribution& report = *fold.held;
  if (fold.later == 0) return;
  report.packets += fold.later;
  report.folded_drops = fold.later;
  report.last_folded_ns = fold.last_ns;
  char after[32];
  std::snprintf(after, sizeof(after), "%.1f", static_cast<double>(fold.last_ns - fold.first_ns) / 1e9);
  report.detail += "; " + std::to_string(fold.later) + " later packet" + (fold.later == 1 ? "" : "s") +
                   " of the connection dropped too (retransmissions), the last " + after +
                   " s after the first: folded into this line";
}

}  // namespace rsttrace
