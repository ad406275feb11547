// The metrics server's answer to a hostile request head.
#include <string>
#include <string_view>

#include "metrics/server.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kPage = "# TYPE rsttrace_lost_events_total counter\nrsttrace_lost_events_total 0\n";
  const std::string reply = http_response(std::string_view(reinterpret_cast<const char*>(data), size), kPage);
  if (reply.rfind("HTTP/1.1 ", 0) != 0) __builtin_trap();  // every answer is an HTTP response
  return 0;
}
