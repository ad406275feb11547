// Kernel events in, reports out: events of one connection are correlated
// (attribute/correlator.h), then judged by the rules (attribute/rules.h)
// against the evidence gathered meanwhile.
#pragma once

#include <set>
#include <vector>

#include "attribute/correlator.h"
#include "attribute/describe.h"
#include "attribute/evidence.h"
#include "attribute/attribution.h"
#include "attribute/rules.h"
#include "collect/kernel_btf.h"

namespace rsttrace {

class Attributor {
 public:
  // PROC_USER_INIT_INO: the initial user namespace.
  static constexpr uint32_t kInitialUserNs = 0xEFFFFFFDu;
  // raw: no correlation, one report per kernel event, judged at once.
  // host_user_ns: rsttrace's own user namespace; a process in another one
  // speaks for itself (its names are shown as its word, never acted on).
  Attributor(const KernelNames& names, std::set<uint16_t> watched_ports, bool raw = false,
             CorrelatorSettings settings = {}, uint32_t host_user_ns = kInitialUserNs);

  void add(const WrapperOpen& open) { evidence_.add(open); }
  void add(const ConnectionNote& note) { evidence_.add(note); }
  std::vector<Attribution> add(const TcpEvent& event);
  std::vector<Attribution> add(TcpEvent&& event);  // the same, without copying the event
  // Reports whose connection has settled by now (CLOCK_MONOTONIC ns), in
  // order, handed one at a time to on_report(Attribution&) (which may move from it):
  // no vector of reports is built
  // (a storm settles thousands per poll), each group is judged right before its report.
  template <typename OnReport>
  void due(uint64_t now_ns, OnReport&& on_report) {
    correlator_.take_due(now_ns, [&](std::vector<TcpEvent>& group) {
      std::optional<Attribution> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
      if (finish(group, report)) on_report(*report);
    });
  }
  template <typename OnReport>
  void flush(OnReport&& on_report) {
    due(UINT64_MAX, on_report);
  }

  // One event judged as --raw would, with its evidence; Verdict::None when its
  // rules find nothing to report (storms: attribute/storm.h).
  Attribution judge_alone(const TcpEvent& event);

  uint64_t absorbed() const { return correlator_.absorbed(); }
  uint64_t ignored() const { return ignored_; }  // kernel events of ordinary teardown, not reported
  size_t pending() const { return correlator_.open_groups(); }
  uint64_t evicted() const { return correlator_.evicted(); }  // judged early: the table was full

 private:
  std::vector<Attribution> judge_all(const std::vector<std::vector<TcpEvent>>& groups);
  // After judge(): evidence for a report; else the --raw line, or the group
  // counted as ignored. False: no report.
  bool finish(const std::vector<TcpEvent>& group, std::optional<Attribution>& report);
  void add_evidence(Attribution& report);

  const KernelNames& names_;
  std::set<uint16_t> watched_ports_;
  bool raw_ = false;
  Correlator correlator_;
  Evidence evidence_;
  uint32_t host_user_ns_;
  uint64_t ignored_ = 0;
};

}  // namespace rsttrace
