// Kernel events in, reports out: events of one connection are correlated
// (attribute/correlator.h), then judged by the rules (attribute/rules.h)
// against the evidence gathered meanwhile.
#pragma once

#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "attribute/connection_folds.h"
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
  void add(const ConnectionNote& note) {
    if (note.closed) folds_.end(note.socket);
    evidence_.add(note);
  }
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
      if (!finish(group, report)) return;
      if (opens_fold(*report, group)) folds_.open(*report, group_last_ns(group));
      on_report(*report);
    });
  }
  template <typename OnReport>
  void flush(OnReport&& on_report) {
    due(UINT64_MAX, on_report);
  }
  // A report ready to be written (after provenance): held while its
  // connection's later drops are still being folded into it (fold_id), else
  // handed to on_line now. take_folded: held lines whose fold is over.
  template <typename OnLine>
  void hold(Attribution& report, uint64_t now_ns, OnLine&& on_line) {
    if (report.fold_id) folds_.hold(report, now_ns, on_line);
    else on_line(report);
  }
  template <typename OnLine>
  void take_folded(uint64_t now_ns, OnLine&& on_line) {
    folds_.take_due(now_ns, on_line);
  }

  // One event judged as --raw would, with its evidence; Verdict::None when its
  // rules find nothing to report (storms: attribute/storm.h).
  Attribution judge_alone(const TcpEvent& event);

  uint64_t absorbed() const { return correlator_.absorbed() + folds_.absorbed(); }
  uint64_t ignored() const { return ignored_; }  // kernel events of ordinary teardown, not reported
  size_t pending() const { return correlator_.open_groups(); }
  uint64_t evicted() const { return correlator_.evicted(); }  // judged early: the table was full

 private:
  std::vector<Attribution> judge_all(const std::vector<std::vector<TcpEvent>>& groups);
  // After judge(): evidence for a report; else the --raw line, or the group
  // counted as ignored. False: no report.
  bool finish(const std::vector<TcpEvent>& group, std::optional<Attribution>& report);
  void add_evidence(Attribution& report);
  static uint64_t group_last_ns(const std::vector<TcpEvent>& group);
  static bool opens_fold(const Attribution& report, const std::vector<TcpEvent>& group);
  // A later drop of a folded connection (counted there), else false; notes
  // what the event says to the folds and the netfilter drops.
  bool folded(const TcpEvent& event);
  static constexpr size_t kMaxNetfilterDrops = 4096;
  static constexpr int64_t kNetfilterResetWindowNs = 2'000'000'000;  // the drop and the client's reset: one softirq apart
  // A REJECT sends its reset before its packet is freed: a drop later than the
  // reset by more than clock skew did not build it (another namespace's packet
  // with the same four-tuple: labs, containers, identical veth pairs).
  static constexpr int64_t kNetfilterResetSkewNs = 1'000'000;
  static constexpr size_t kDropsPerConnection = 4;  // the latest drops of one four-tuple, any namespace
  // Issue 16, the client's view: recent netfilter drops, by connection (netns
  // 0: either end's namespace), for a reset received at the other end.
  void remember_netfilter_drop(const TcpEvent& event);
  // What such a drop says of its packet: the facts the match, the line and the
  // rule lookup (packet_facts) read, in 160 bytes instead of a TcpEvent's 368
  // (issue 17: a drop flood's first drain remembers thousands: RSS).
  struct NetfilterDrop {
    uint64_t monotonic_ns = 0;
    uint32_t netns = 0;
    int family = 4;
    Endpoint local, remote;
    std::optional<uint32_t> reason;
    std::optional<uint8_t> tcp_flags;
    bool ingress = false, routed = false;
    uint32_t tcp_seq = 0;
    uint32_t ifindex = 0;
    std::optional<NetfilterEvidence> netfilter;
    static NetfilterDrop of(const TcpEvent& drop);
    TcpEvent event() const;  // the drop's event again, with these facts
  };
  void add_netfilter_reset(Attribution& report);

  const KernelNames& names_;
  std::set<uint16_t> watched_ports_;
  bool raw_ = false;
  Correlator correlator_;
  ConnectionFolds folds_;
  std::unordered_map<ConnectionKey, std::vector<NetfilterDrop>, ConnectionKeyHash> netfilter_drops_;
  Evidence evidence_;
  uint32_t host_user_ns_;
  uint64_t ignored_ = 0;
};

}  // namespace rsttrace
