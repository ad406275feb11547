// Kernel events in, reports out: events of one connection are correlated
// (attribute/correlator.h), then judged by the rules (attribute/rules.h)
// against the evidence gathered meanwhile.
#pragma once

#include <set>
#include <vector>

#include "attribute/correlator.h"
#include "attribute/evidence.h"
#include "attribute/report.h"
#include "collect/kernel_btf.h"
#include "provenance/provenance.h"

namespace rsttrace {

// One sentence of what the kernel showed, e.g. "RST sent for a packet that
// matched no socket (NO_SOCKET), packet flags SYN, hook ran in ssh[812]".
std::string describe_evidence(const KernelNames& names, const TcpEvent& event);

class Attributor {
 public:
  // raw: no correlation, one report per kernel event, judged at once.
  // provenance: where to look up rules and writers; none in pure tests.
  Attributor(const KernelNames& names, std::set<uint16_t> watched_ports, bool raw = false,
             CorrelatorSettings settings = {}, Provenance* provenance = nullptr);

  void add(const WrapperOpen& open) { evidence_.add(open); }
  std::vector<Report> add(const TcpEvent& event);
  // Reports whose connection has settled by now (CLOCK_MONOTONIC ns).
  std::vector<Report> due(uint64_t now_ns);
  std::vector<Report> flush();

  uint64_t absorbed() const { return correlator_.absorbed(); }
  uint64_t ignored() const { return ignored_; }  // kernel events of ordinary teardown, not reported
  size_t pending() const { return correlator_.open_groups(); }
  uint64_t evicted() const { return correlator_.evicted(); }  // judged early: the table was full

 private:
  std::vector<Report> judge_all(const std::vector<std::vector<TcpEvent>>& groups);
  void add_provenance(Report& report);

  const KernelNames& names_;
  std::set<uint16_t> watched_ports_;
  bool raw_;
  Correlator correlator_;
  Evidence evidence_;
  Provenance* provenance_;
  uint64_t ignored_ = 0;
};

}  // namespace rsttrace
