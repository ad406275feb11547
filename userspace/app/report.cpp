#include "app/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <spdlog/spdlog.h>

#include "error.h"
#include "output/format.h"
#include "report/incident.h"

namespace rsttrace {

int run_report(const ReportOptions& options) {
  // Every file must open before anything is printed: no half report.
  std::vector<std::ifstream> inputs;
  for (const auto& file : options.files) {
    inputs.emplace_back(file, std::ios::binary);
    if (!inputs.back()) throw failed("read", escape_untrusted(file), errno_text(errno));
  }
  Incident incident;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::ifstream& in = inputs[i];
    std::string line;
    uint64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      incident.add_line(options.files[i], number, line, in.eof());  // eof here: no newline after it
    }
    if (in.bad()) throw failed("read", escape_untrusted(options.files[i]), errno_text(errno));
  }
  for (const MalformedLine& bad : incident.malformed_lines())
    spdlog::warn("{}:{}: skipped a malformed line: {}", escape_untrusted(bad.file), bad.line, bad.why);
  if (incident.malformed() > incident.malformed_lines().size())
    spdlog::warn("... {} malformed lines skipped in all", incident.malformed());
  if (incident.truncated()) spdlog::warn("{} truncated last line(s) skipped", incident.truncated());

  const std::string text = render_text(incident, options.files);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!options.html.empty()) {
    const std::string temp = options.html + ".tmp." + std::to_string(getpid());
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out << render_html(incident, options.files);
      out.flush();
      if (!out) {
        const int err = errno;
        std::remove(temp.c_str());
        throw failed("write", options.html, errno_text(err));
      }
    }
    if (std::rename(temp.c_str(), options.html.c_str()) != 0) {
      const int err = errno;
      std::remove(temp.c_str());
      throw failed("write", options.html, errno_text(err));
    }
    spdlog::info("wrote {}", options.html);
  }
  return 0;
}

}  // namespace rsttrace
