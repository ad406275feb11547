#include "app/logging.h"

#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace rsttrace {
namespace {

int forward_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (!spdlog::should_log(spdlog::level::debug)) return 0;
  // Whole, however long: a verifier log is one message, its error at the end.
  va_list copy;
  va_copy(copy, args);
  const int length = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (length <= 0) return length;
  std::string line(static_cast<size_t>(length) + 1, '\0');
  std::vsnprintf(line.data(), line.size(), format, args);
  line.pop_back();
  while (!line.empty() && line.back() == '\n') line.pop_back();
  const auto spd_level = level == LIBBPF_WARN ? spdlog::level::warn
                         : level == LIBBPF_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  spdlog::log(spd_level, "libbpf: {}", line);
  return length;
}

}  // namespace

void setup_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("rsttrace");
  logger->set_pattern("rsttrace: %^%l%$: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
  libbpf_set_print(forward_libbpf);
}

}  // namespace rsttrace
