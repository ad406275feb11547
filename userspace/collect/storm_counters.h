// The kernel side of storms, as the storm tracker (attribute/storm.h) sees
// it: BpfSession implements it on the storm maps, tests with a plain table.
// Here, not in attribute/, so that collect/ depends on nothing above it.
#pragma once

#include <cstdint>

#include "rsttrace/records.h"

namespace rsttrace {

class StormCounters {
 public:
  virtual ~StormCounters() = default;
  // Zero slot's counters, then count `key` there.
  virtual void activate(const rsttrace_storm_key& key, uint32_t slot) = 0;
  // Stop counting `key`: its events are emitted again.
  virtual void deactivate(const rsttrace_storm_key& key, uint32_t slot) = 0;
  virtual void remove(const rsttrace_storm_key& key) = 0;
  // Events counted in slot since activate(), summed over CPUs.
  virtual uint64_t count(uint32_t slot) const = 0;
};

}  // namespace rsttrace
