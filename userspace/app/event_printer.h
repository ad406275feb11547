// Where lines go: stdout (text, or JSON with --json) and the capture file
// (--output, always JSON). Prints only: counting is RunTally's
// (output/summary.h) and the --metrics page's (app/metrics_publisher.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "attribute/storm.h"
#include "cli/options.h"
#include "output/capture_file.h"
#include "output/format.h"

namespace rsttrace {

class EventPrinter {
 public:
  // capture_owner: besides root, who may own an existing capture file. Throws Error.
  EventPrinter(const TraceOptions& options, const Formatter& formatter, uid_t capture_owner);
  CaptureFile* capture() { return capture_.get(); }
  const CaptureFile* capture() const { return capture_.get(); }

  void report(const Attribution& report);
  void storm(const StormReport& storm);
  // Kernel-side losses since the last call: a log line, and a JSON record.
  void lost(uint64_t count, uint64_t total, uint64_t now_unix_ns);
  // A JSON-only record (the summary): stdout under --json, and the capture file.
  void record(const std::string& json);
  void flush();

 private:
  void line(const std::string& text);
  bool json_;
  const Formatter& formatter_;
  std::unique_ptr<CaptureFile> capture_;
  std::string line_;  // reused: a storm writes tens of thousands of lines a second
};

}  // namespace rsttrace
