// `rsttrace report` on a hostile capture file: read, then rendered as text and HTML.
#include <sstream>
#include <string>

#include "report/capture_reader.h"
#include "report/incident.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  Incident incident;
  // A small line limit, so that the too-long path is reached with small inputs.
  if (!read_capture(in, "fuzz.jsonl", incident, 4096)) __builtin_trap();
  (void)render_text(incident, {"fuzz.jsonl"});
  (void)render_html(incident, {"fuzz.jsonl"});
  return 0;
}
