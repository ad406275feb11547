#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "provenance/worker.h"

using namespace rsttrace;
using namespace std::chrono_literals;

namespace {

Attribution report_with(const std::string& detail) {
  Attribution report;
  report.detail = detail;
  return report;
}

// An enrich step that blocks until released or cancelled, like a broker call.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  std::atomic<int> entered = 0;
  void enrich(Attribution& report) {
    ++entered;
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return open; });
    report.detail += " +rule";
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    changed.notify_all();
  }
};

// Delivered details land in `out`.
struct Sink {
  std::vector<std::string> out;
  ProvenanceWorker::Deliver deliver() {
    return [this](Attribution& report) { out.push_back(report.detail); };
  }
};

std::vector<std::string> take(ProvenanceWorker& worker, Sink& sink, uint64_t now_ns) {
  sink.out.clear();
  worker.take_ready(now_ns);
  return sink.out;
}

}  // namespace

TEST_CASE("provenance worker: finished reports come out enriched, in order", "[provenance_worker]") {
  Sink sink;
  ProvenanceWorker worker([](Attribution& report) { report.detail += " +rule"; }, {});
  for (int i = 0; i < 3; ++i) {
    Attribution report = report_with("r" + std::to_string(i));
    REQUIRE(worker.submit(report, 0, sink.deliver()));
  }
  std::vector<std::string> out;
  for (int tries = 0; out.size() < 3 && tries < 500; ++tries) {
    for (auto& detail : take(worker, sink, 1)) out.push_back(detail);
    std::this_thread::sleep_for(2ms);
  }
  CHECK(out == std::vector<std::string>{"r0 +rule", "r1 +rule", "r2 +rule"});
  CHECK(worker.timed_out() == 0);
}

TEST_CASE("provenance worker: a report past its deadline leaves without provenance", "[provenance_worker]") {
  Gate gate;
  ProvenanceWorker worker([&](Attribution& report) { gate.enrich(report); }, [&] { gate.release(); },
                          ProvenanceWorker::Settings{1000ms, 8});
  Sink sink;
  Attribution report = report_with("drop");
  REQUIRE(worker.submit(report, 0, sink.deliver()));
  CHECK(take(worker, sink, 999'000'000).empty());  // not done, not late
  const auto late = take(worker, sink, 1'000'000'000);
  REQUIRE(late.size() == 1);
  CHECK(late[0] == "drop; provenance not read within 1.0 s");
  CHECK(worker.timed_out() == 1);
  gate.release();  // the late result is dropped, never handed out twice
  worker.finish(1000ms);
  CHECK(sink.out.size() == 1);
}

TEST_CASE("provenance worker: a full queue hands the report back and counts it", "[provenance_worker]") {
  Gate gate;
  ProvenanceWorker worker([&](Attribution& report) { gate.enrich(report); }, [&] { gate.release(); },
                          ProvenanceWorker::Settings{1000ms, 2});
  Sink sink;
  Attribution a = report_with("a"), b = report_with("b"), c = report_with("c");
  REQUIRE(worker.submit(a, 0, sink.deliver()));
  REQUIRE(worker.submit(b, 0, sink.deliver()));
  CHECK_FALSE(worker.submit(c, 0, sink.deliver()));
  CHECK(c.detail == "c");  // untouched: the caller prints it as is
  CHECK(worker.skipped() == 1);
  CHECK(worker.waiting() == 2);
  worker.finish(0ms);
  CHECK(sink.out.size() == 2);
}

TEST_CASE("provenance worker: finish cancels a blocked lookup and hands everything out", "[provenance_worker]") {
  Gate gate;
  std::atomic<bool> cancelled = false;
  ProvenanceWorker worker([&](Attribution& report) { gate.enrich(report); },
                          [&] {
                            cancelled = true;
                            gate.release();
                          },
                          ProvenanceWorker::Settings{60000ms, 8});
  Sink sink;
  Attribution a = report_with("a"), b = report_with("b");
  REQUIRE(worker.submit(a, 0, sink.deliver()));
  REQUIRE(worker.submit(b, 0, sink.deliver()));
  while (gate.entered == 0) std::this_thread::sleep_for(1ms);
  worker.finish(50ms);
  CHECK(cancelled);
  REQUIRE(sink.out.size() == 2);
  CHECK(sink.out[0] == "a; provenance not read: rsttrace was stopping");  // cancelled: its result is not one
  CHECK(sink.out[1] == "b; provenance not read: rsttrace was stopping");
}

TEST_CASE("provenance worker: an exception in a lookup does not end the worker", "[provenance_worker]") {
  ProvenanceWorker worker(
      [](Attribution& report) {
        if (report.detail == "bad") throw std::runtime_error("boom");
        report.detail += " ok";
      },
      {});
  Sink sink;
  Attribution bad = report_with("bad"), good = report_with("good");
  REQUIRE(worker.submit(bad, 0, sink.deliver()));
  REQUIRE(worker.submit(good, 0, sink.deliver()));
  std::vector<std::string> out;
  for (int tries = 0; out.size() < 2 && tries < 500; ++tries) {
    for (auto& detail : take(worker, sink, 1)) out.push_back(detail);
    std::this_thread::sleep_for(2ms);
  }
  CHECK(out == std::vector<std::string>{"bad; provenance failed", "good ok"});
}
