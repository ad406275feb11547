#include "provenance/worker.h"

#include <cstdio>
#include <spdlog/spdlog.h>

namespace rsttrace {
namespace {

std::string seconds_text(std::chrono::milliseconds span) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(span.count()) / 1000.0);
  return text;
}

}  // namespace

ProvenanceWorker::ProvenanceWorker(Enrich enrich, std::function<void()> cancel, Settings settings)
    : enrich_(std::move(enrich)), cancel_(std::move(cancel)), settings_(settings) {
  thread_ = std::thread([this] { run(); });
}

ProvenanceWorker::~ProvenanceWorker() {
  if (!thread_.joinable()) return;  // finish() ended it
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (cancel_) cancel_();
  if (thread_.joinable()) thread_.join();
}

bool ProvenanceWorker::submit(Attribution& report, uint64_t now_ns, Deliver deliver) {
  {
    std::lock_guard lock(mutex_);
    if (stop_ || jobs_.size() >= settings_.max_jobs) {
      ++skipped_;
      return false;
    }
    auto job = std::make_shared<Job>();
    job->report = std::move(report);
    job->deliver = std::move(deliver);
    job->deadline_ns = now_ns + static_cast<uint64_t>(settings_.deadline.count()) * 1'000'000ULL;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void ProvenanceWorker::run() {
  for (;;) {
    std::shared_ptr<Job> job;
    Attribution work;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        if (stop_) return true;
        for (const auto& queued : jobs_)
          if (queued->state == State::Queued) return true;
        return false;
      });
      if (stop_) return;
      for (const auto& queued : jobs_)
        if (queued->state == State::Queued) {
          job = queued;
          break;
        }
      job->state = State::Running;
      work = job->report;  // the loop keeps the original: handed out as is past the deadline
    }
    try {
      enrich_(work);
    } catch (const std::exception& e) {
      // Parsers return errors; anything else is still not allowed to end tracing.
      work.detail += "; provenance failed";
      spdlog::warn("failed to find provenance: {}", e.what());
    }
    {
      std::lock_guard lock(mutex_);
      // After finish() cancelled the system access, what the lookup found is
      // the cancellation's doing ("no rule", "unreadable"): not a result.
      if (job->state == State::Running && !stop_) {
        job->report = std::move(work);
        job->state = State::Done;
      }
    }
    idle_.notify_all();
  }
}

void ProvenanceWorker::hand_out(uint64_t now_ns, bool everything) {
  std::vector<std::shared_ptr<Job>> ready;
  {
    std::lock_guard lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Job& job = **it;
      const bool late = job.state != State::Done && (everything || now_ns >= job.deadline_ns);
      if (job.state != State::Done && !late) {
        ++it;
        continue;
      }
      if (late) {
        ++timed_out_;
        job.report.detail += everything ? "; provenance not read: rsttrace was stopping"
                                        : "; provenance not read within " + seconds_text(settings_.deadline) + " s";
        job.state = State::Abandoned;  // a running enrich's result is dropped
      }
      ready.push_back(*it);
      it = jobs_.erase(it);
    }
  }
  for (auto& job : ready)
    if (job->deliver) job->deliver(job->report);
}

void ProvenanceWorker::take_ready(uint64_t now_ns) { hand_out(now_ns, false); }

void ProvenanceWorker::finish(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mutex_);
    idle_.wait_for(lock, grace, [&] {
      for (const auto& job : jobs_)
        if (job->state != State::Done) return false;
      return true;
    });
    stop_ = true;
  }
  wake_.notify_all();
  if (cancel_) cancel_();
  if (thread_.joinable()) thread_.join();
  hand_out(0, true);
}

size_t ProvenanceWorker::waiting() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

}  // namespace rsttrace
