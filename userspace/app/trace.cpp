#include "app/trace.h"

#include "app/trace_session.h"

namespace rsttrace {

int run_trace(const TraceOptions& options) {
  TraceSession session(options);
  session.start();
  while (session.poll_once()) {
  }
  session.finish();
  return 0;
}

}  // namespace rsttrace
