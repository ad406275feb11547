// One line per connection for established connections too (issue 16): a
// reported drop of a connection past its handshake (a ban added while the
// connection was open) opens a fold. The connection's later drops (its
// retransmissions, each burst seconds after the last, and each of which would
// settle as a group of its own) are folded into that line, never judged again
// (a rule removed meanwhile cannot re-attribute them); the line waits until
// they stop, the connection ends (a reset, its close), or max_hold, and then
// says how many it folded and when the last was. Drops after the line was
// written are absorbed (the summary's `absorbed`) for the connection's life.
// Pure: time is passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "attribute/attribution.h"
#include "attribute/correlator.h"

namespace rsttrace {

struct FoldSettings {
  uint64_t min_quiet_ns = 1'000'000'000;     // no drop for this long (or 3x the last gap: RTO doubles) ends a fold
  uint64_t max_hold_ns = 5'000'000'000;      // a line is never held longer than this after its first drop
  uint64_t absorb_ns = 150'000'000'000;      // after the line: drops absorbed until quiet this long (RTO max 120 s)
  size_t max_folds = 4096;                   // folds at once; beyond, a new drop's line folds nothing (as before issue 16)
};

// The report's first event opens a fold: a drop of a packet past the handshake.
bool opens_fold(const Attribution& report);

class ConnectionFolds {
 public:
  explicit ConnectionFolds(FoldSettings settings = {}) : settings_(settings) {}

  // The report of the connection's first drops, just judged: later drops of
  // its connection fold into it (report.fold_id is set).
  void open(Attribution& report, uint64_t last_ns);
  // A later drop of a folded connection (the same socket by cookie where both
  // have one, else the same four-tuple and namespace) for the same reason as
  // its first (another reason, e.g. a listener's overflow after an unnamed
  // drop, is judged on its own): counted, true.
  bool absorb(const TcpEvent& event);
  // A reset or the close of the connection (any socket of its four-tuple):
  // its fold ends, its line is due.
  void end(const TcpEvent& event);
  // The report is ready to be written (after provenance): written now if its
  // fold is over, else held. on_line(Attribution&).
  template <typename OnLine>
  void hold(Attribution& report, uint64_t now_ns, OnLine&& on_line);
  // Held lines whose fold is over by now (UINT64_MAX: all).
  template <typename OnLine>
  void take_due(uint64_t now_ns, OnLine&& on_line);

  uint64_t absorbed() const { return absorbed_; }  // drops after their line was written
  size_t open_count() const { return folds_.size(); }

 private:
  struct Fold {
    ConnectionKey key;
    uint64_t cookie = 0;
    std::optional<uint32_t> reason;  // the first drop's: a drop for another reason is other evidence
    uint64_t first_ns = 0, previous_ns = 0, last_ns = 0;
    uint32_t later = 0;      // drops folded into the line
    bool ended = false;      // the connection reset or closed
    bool written = false;    // its line is out: later drops are only absorbed
    std::optional<Attribution> held;
  };
  uint64_t due_at(const Fold& fold) const;
  bool expired(const Fold& fold, uint64_t now_ns) const;
  void release(Fold& fold);  // fills the held report in: folded drops, the last one's time

  FoldSettings settings_;
  std::unordered_map<uint64_t, Fold> folds_;  // by fold id
  std::unordered_map<ConnectionKey, uint64_t, ConnectionKeyHash> by_key_;
  uint64_t next_id_ = 1;
  uint64_t absorbed_ = 0;
};

template <typename OnLine>
void ConnectionFolds::hold(Attribution& report, uint64_t now_ns, OnLine&& on_line) {
  auto fold = folds_.find(report.fold_id);
  if (fold == folds_.end() || fold->second.written) {  // forgotten (bounded) meanwhile: as it is
    on_line(report);
    return;
  }
  fold->second.held = std::move(report);
  if (due_at(fold->second) > now_ns) return;
  release(fold->second);
  on_line(*fold->second.held);
  fold->second.held.reset();
}

template <typename OnLine>
void ConnectionFolds::take_due(uint64_t now_ns, OnLine&& on_line) {
  for (auto it = folds_.begin(); it != folds_.end();) {
    Fold& fold = it->second;
    if (fold.held && due_at(fold) <= now_ns) {
      release(fold);
      on_line(*fold.held);
      fold.held.reset();
    }
    if ((fold.written && (fold.ended || expired(fold, now_ns))) ||
        (!fold.written && !fold.held && now_ns > fold.first_ns + 2 * settings_.max_hold_ns + settings_.absorb_ns)) {
      // (The second: its report never came back; it is written as it is when it
      // does, and what the fold counted stays accounted for, as absorbed.)
      if (!fold.written) absorbed_ += fold.later;
      if (auto indexed = by_key_.find(fold.key); indexed != by_key_.end() && indexed->second == it->first)
        by_key_.erase(indexed);
      it = folds_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace rsttrace
