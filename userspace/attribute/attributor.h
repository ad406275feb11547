// Turns kernel events into reports with a verdict. Until the attribution
// rules land (docs/attribution.md) every report is "unknown" and its detail
// states the raw evidence.
#pragma once

#include <vector>

#include "attribute/report.h"
#include "collect/kernel_btf.h"

namespace rsttrace {

// One sentence of what the kernel showed, e.g. "RST sent by the TCP stack for
// a packet that matched no socket (NO_SOCKET); hook ran in ssh[812]".
std::string describe_evidence(const KernelNames& names, const TcpEvent& event);

class Attributor {
 public:
  explicit Attributor(const KernelNames& names) : names_(names) {}

  // Reports that are ready now; a later version may hold events back to fold
  // the several kernel events of one connection into one report.
  std::vector<Report> add(const TcpEvent& event);

 private:
  const KernelNames& names_;
};

}  // namespace rsttrace
