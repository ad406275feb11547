#pragma once

namespace rsttrace {

// spdlog to stderr; libbpf's own messages go through it too: all of them
// with verbose (verifier log included), none otherwise (rsttrace's own
// error line then carries a short hint).
void setup_logging(bool verbose);

}  // namespace rsttrace
