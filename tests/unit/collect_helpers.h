// Test-only twins of the streaming calls: the groups or reports the
// correlator and the attributor hand out one at a time, gathered in a vector.
#pragma once

#include <cstdint>
#include <vector>

#include "attribute/attributor.h"
#include "attribute/correlator.h"

namespace rsttrace::test {

inline std::vector<std::vector<TcpEvent>> take_due(Correlator& correlator, uint64_t now_ns) {
  std::vector<std::vector<TcpEvent>> groups;
  correlator.take_due(now_ns, [&](std::vector<TcpEvent>& group) { groups.push_back(std::move(group)); });
  return groups;
}

inline std::vector<std::vector<TcpEvent>> take_all(Correlator& correlator) { return take_due(correlator, UINT64_MAX); }

inline std::vector<Attribution> due(Attributor& attributor, uint64_t now_ns) {
  std::vector<Attribution> reports;
  attributor.due(now_ns, [&](Attribution& report) { reports.push_back(std::move(report)); });
  return reports;
}

inline std::vector<Attribution> flush(Attributor& attributor) { return due(attributor, UINT64_MAX); }

}  // namespace rsttrace::test
