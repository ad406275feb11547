// sshd's log on hostile input: any local process can write lines into a
// syslog file (logger -t 'sshd[812]'), and a client's address and port are in
// them. The parser must stay bounded and never throw; the judgement's
// evidence is built of parsed addresses and numbers only.
#include <string>

#include "explain/sshd_log.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const uint32_t pid : {0u, 812u}) {
    const auto log = explain::parse_sshd_log(text, pid, 2026);
    if (!log) continue;
    if (log->events.size() > log->lines) __builtin_trap();
    for (const int family : {4, 6}) {
      const explain::PenaltyClock clock{.now = 1796040000, .listener_start = 1796039000, .log_mtime = 1796039990};
      const auto verdict = explain::judge_penalty(*log, family, {}, clock);
      for (const char c : verdict.evidence + verdict.penalty_class)
        if (c < 0x20 || c > 0x7e) __builtin_trap();
    }
  }
  return 0;
}
