// Provenance off the trace loop's critical path. Finding the rule behind a
// drop or the hosts.deny line behind a refusal means running nft and
// iptables-save in other namespaces, reading files of other processes and
// asking fail2ban: each can take seconds, and some of what they read is
// shaped by whoever owns the namespace or the process. The trace loop must
// keep draining the ring buffer meanwhile, and SIGTERM must end it within a
// second, so this work runs on a thread of its own, one report at a time,
// under a deadline:
// - a report whose provenance is not done by its deadline is handed out
//   without it, its detail saying so (the late result is discarded);
// - at most max_jobs reports wait; beyond that a report is handed back at
//   once (submit() returns false) and counted as skipped;
// - finish() cancels what is running (through `cancel`, which makes the
//   privileged broker's answer fail at once) and hands out what is left.
// Reports that need no provenance never come here: they are printed at once,
// so lines may leave out of kernel order by up to the deadline (each carries
// its own timestamp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "attribute/attribution.h"

namespace rsttrace {

class ProvenanceWorker {
 public:
  using Enrich = std::function<void(Attribution&)>;
  // Where a report goes once its provenance is in, or its deadline passed:
  // printed, or (a storm's verdict) stored. Runs on the trace loop's thread.
  using Deliver = std::function<void(Attribution&)>;
  struct Settings {
    std::chrono::milliseconds deadline{10000};  // rsttrace --provenance-deadline
    size_t max_jobs = 256;
  };

  // enrich runs on the worker thread; cancel (may be empty) is called from
  // the trace loop's thread to make a running enrich return soon.
  ProvenanceWorker(Enrich enrich, std::function<void()> cancel, Settings settings);
  ProvenanceWorker(Enrich enrich, std::function<void()> cancel) : ProvenanceWorker(enrich, cancel, Settings{}) {}
  ~ProvenanceWorker();
  ProvenanceWorker(const ProvenanceWorker&) = delete;
  ProvenanceWorker& operator=(const ProvenanceWorker&) = delete;

  // Queues `report` (moved from only when it returns true). now_ns: CLOCK_MONOTONIC.
  bool submit(Attribution& report, uint64_t now_ns, Deliver deliver);
  // Delivers, in submission order, every report that is done and every one
  // past its deadline (without its provenance).
  void take_ready(uint64_t now_ns);
  // Waits up to `grace` for the queue to empty, cancels what still runs,
  // and delivers everything left. The worker thread has ended on return.
  void finish(std::chrono::milliseconds grace);

  size_t waiting() const;
  uint64_t timed_out() const { return timed_out_; }
  uint64_t skipped() const { return skipped_; }
  void count_skipped() { ++skipped_; }

 private:
  enum class State { Queued, Running, Done, Abandoned };
  struct Job {
    Attribution report;
    Deliver deliver;
    uint64_t deadline_ns = 0;
    State state = State::Queued;
  };
  void run();
  void hand_out(uint64_t now_ns, bool everything);

  Enrich enrich_;
  std::function<void()> cancel_;
  Settings settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the worker: a job arrived, or stop
  std::condition_variable idle_;  // finish(): a job completed
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stop_ = false;
  std::atomic<uint64_t> timed_out_ = 0;
  std::atomic<uint64_t> skipped_ = 0;
  std::thread thread_;
};

}  // namespace rsttrace
