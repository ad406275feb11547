#include <cstdio>
#include <spdlog/spdlog.h>

#include "app/logging.h"
#include "app/trace.h"
#include "cli/options.h"
#include "error.h"

int main(int argc, char** argv) {
  using namespace rsttrace;
  const ParsedCommandLine parsed = parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (const auto* exit = std::get_if<CliExit>(&parsed)) {
    std::fprintf(exit->to_stderr ? stderr : stdout, exit->to_stderr ? "rsttrace: %s\n" : "%s",
                 exit->message.c_str());
    return exit->code;
  }
  const auto& options = std::get<TraceOptions>(parsed);
  setup_logging(options.verbose);
  try {
    return run_trace(options);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
