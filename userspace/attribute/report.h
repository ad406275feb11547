// What rsttrace prints for one connection's reset or drop: the kernel's
// evidence plus the verdict drawn from it.
#pragma once

#include <cstdint>
#include <string>

#include "collect/tcp_event.h"

namespace rsttrace {

struct Report {
  TcpEvent event;            // the decisive kernel event
  std::string verdict = "unknown";
  std::string detail;        // one sentence: the evidence behind the verdict
  uint32_t packets = 1;      // kernel events folded into this report
};

}  // namespace rsttrace
