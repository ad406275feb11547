// The two clocks rsttrace reads: CLOCK_MONOTONIC (the BPF timestamps' clock,
// all deadlines) and the wall clock (line timestamps), in nanoseconds.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace rsttrace {

inline uint64_t monotonic_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

inline uint64_t unix_now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace rsttrace
