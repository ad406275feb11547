// sshd -T's output (parse_sshd_limits) and a listener's command line
// (sshd_config_argument) as hostile text; the limits parsed are then used to
// word a refusal, as the provenance worker does.
// Input: the sshd -T text NUL the command line.
#include "attribute/sshd_limits.h"
#include "attribute/sshd_refusal.h"
#include "fuzz_input.h"
#include "privsep/sshd_test_mode.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(data, size, 2);
  const Result<SshdLimits> limits = parse_sshd_limits(parts[0]);
  if (limits) {
    if (limits->max_startups_start > limits->max_startups_full || limits->max_startups_rate > 100) __builtin_trap();
    SshdLimitsSource source;
    source.limits = *limits;
    source.from_sshd = true;
    ListenerRefusal refusal;
    refusal.open_connections = size % 16;
    refusal.source = "10.0.0.1";
    SeenConnection seen;
    seen.closed_ns = 1;
    refusal.earlier.push_back(seen);
    if (listener_refusal_cause(refusal, source).empty()) __builtin_trap();
  } else if (limits.reason().empty()) {
    __builtin_trap();  // a failure names its reason
  }
  bool refused = false;
  const std::string config = sshd_config_argument(parts[1], &refused);
  // A path used is absolute and plain: no "." or ".." component ("a..b" is a name), no "//".
  const std::string components = config + "/";
  if (!config.empty() && (config[0] != '/' || components.find("/../") != std::string::npos ||
                          components.find("/./") != std::string::npos || components.find("//") != std::string::npos ||
                          refused))
    __builtin_trap();
  return 0;
}
