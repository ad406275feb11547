// One trace run, from the kernel's BTF to the summary line:
//   TraceSession session(options);  // privileges checked, BTF read, outputs opened
//   session.start();                // attached, privileges dropped, ready file written
//   while (session.poll_once()) {}  // one wait, drain and clock tick each
//   session.finish();               // last drain, storms ended, summary printed
// The members are declared in the order they must be built; they are
// destroyed in reverse, and that order carries the privilege separation
// (docs/security.md): the BPF session detaches first; the provenance worker's
// thread ends before either broker goes; the ready file is removed while its
// broker still runs; the capture file outlives the broker that reopens it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "app/event_printer.h"
#include "app/metrics_publisher.h"
#include "app/ready_file.h"
#include "app/signal_fd.h"
#include "attribute/attributor.h"
#include "attribute/storm.h"
#include "cli/options.h"
#include "collect/bpf_session.h"
#include "collect/kernel_btf.h"
#include "collect/malformed_records.h"
#include "collect/record_decoder.h"
#include "output/format.h"
#include "output/summary.h"
#include "privsep/broker.h"
#include "provenance/provenance.h"
#include "provenance/worker.h"

namespace rsttrace {

class TraceSession {
 public:
  // Throws Error (no privileges, no BTF, a capture file or metrics port refused).
  explicit TraceSession(const TraceOptions& options);
  ~TraceSession();
  TraceSession(const TraceSession&) = delete;
  TraceSession& operator=(const TraceSession&) = delete;

  // Loads and attaches, drops privileges to the brokers, starts provenance
  // and --metrics, writes the ready file. Throws Error.
  void start();
  // Waits up to the poll interval for a signal, then drains the ring buffer
  // and runs every clock (settled connections, provenance, storms, losses,
  // metrics, memory trim, periodic summary). False once it is time to stop.
  bool poll_once();
  // The last drain and flush, then the summary line.
  void finish();

 private:
  struct KernelFacts {
    KernelNames names;
    TracepointShapes tracepoints;
  };
  static KernelFacts read_kernel_facts();

  void on_record(std::span<const std::byte> bytes);
  void emit(Attribution& report);     // to provenance first if it needs it, else delivered
  void deliver(Attribution& report);  // written, or held while later drops fold into it (issue 16)
  void write_line(Attribution& report);  // counted and printed
  void on_storm(const StormReport& storm);
  Attribution judge_storm(const rsttrace_storm_key& key, const TcpEvent& event);
  void fill_metrics(MetricsSnapshot& snapshot) const;
  void publish_metrics(bool force);

  const TraceOptions& options_;
  const std::string collector_user_;  // after attach; "" keeps the uid
  const KernelFacts kernel_;
  const Formatter formatter_;
  Provenance provenance_;
  Attributor attributor_;
  EventPrinter printer_;
  RunTally tally_;
  MalformedRecords malformed_;
  uint64_t lost_reported_ = 0;
  uint32_t wait_ms_ = 0;  // until the next drain: --poll-interval-ms, shorter while the ring fills fast
  // Built once the BPF session exists (it holds the storm maps); records arrive only on drain().
  std::optional<StormTracker> storms_;
  std::unique_ptr<BrokerAccess> broker_;  // before `ready_`: it removes the ready file at exit
  // Provenance's own broker: its slow requests (a ruleset read) never delay
  // the trace loop's file operations on broker_, and stopping cancels them.
  std::unique_ptr<BrokerAccess> provenance_broker_;
  const ProvenanceWorker::Deliver deliver_;
  // Rulesets, other processes' files and fail2ban are read on a thread of
  // its own, under a deadline (provenance/worker.h): started once the broker
  // serves it, before the first drain. Ends before the brokers.
  std::optional<ProvenanceWorker> worker_;
  WatchedPorts watched_{};
  SignalFd signals_;
  ReadyFile ready_;
  MetricsPublisher metrics_;  // bound before anything is attached: a taken port fails the start cleanly
  std::optional<BpfSession> session_;

  using Clock = std::chrono::steady_clock;
  Clock::time_point started_, next_summary_, deadline_, next_trim_;
};

}  // namespace rsttrace
