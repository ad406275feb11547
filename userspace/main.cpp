#include <cstdio>
#include <spdlog/spdlog.h>

#include "app/check.h"
#include "app/logging.h"
#include "app/report.h"
#include "app/trace.h"
#include "cli/options.h"
#include "selftest/lab_client.h"
#include "selftest/selftest.h"
#include "error.h"
#include "explain/command.h"
#include "privsep/system_access.h"
#include "provenance/firewall/nft_netlink.h"
#include <string_view>

int main(int argc, char** argv) {
  using namespace rsttrace;
  // The broker's netlink reader, run inside a namespace (system_access.cpp): before any option parsing.
  if (argc == 2 && std::string_view(argv[1]) == kNftNetlinkDump) return firewall::run_nft_netlink_dump();
  const ParsedCommandLine parsed = parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (const auto* exit = std::get_if<CliExit>(&parsed)) {
    std::fprintf(exit->to_stderr ? stderr : stdout, exit->to_stderr ? "rsttrace: %s\n" : "%s",
                 exit->message.c_str());
    return exit->code;
  }
  if (const auto* client = std::get_if<LabClientOptions>(&parsed)) return run_lab_client(*client);
  if (const auto* explain = std::get_if<ExplainOptions>(&parsed)) {
    setup_logging(false);
    return run_explain(*explain);  // its own exit codes: 2 on error
  }
  try {
    if (const auto* selftest = std::get_if<SelftestOptions>(&parsed)) {
      setup_logging(selftest->verbose);
      return run_selftest(*selftest);
    }
    if (const auto* report = std::get_if<ReportOptions>(&parsed)) {
      setup_logging(false);
      return run_report(*report);
    }
    if (const auto* check = std::get_if<CheckOptions>(&parsed)) {
      setup_logging(check->verbose);
      return run_check();
    }
    const auto& options = std::get<TraceOptions>(parsed);
    setup_logging(options.verbose);
    return run_trace(options);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Not ours (the standard library, a JSON accessor): still one line and a
    // non-zero exit, never std::terminate's abort.
    spdlog::error("failed to run rsttrace: {}", e.what());
    return 1;
  } catch (...) {
    spdlog::error("failed to run rsttrace: unknown exception");
    return 1;
  }
}
