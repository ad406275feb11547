#include "app/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <spdlog/spdlog.h>

#include "error.h"
#include "output/capture_file.h"
#include "output/format.h"
#include "report/capture_reader.h"
#include "report/incident.h"

namespace rsttrace {

int run_report(const ReportOptions& options) {
  // Every file must open before anything is printed: no half report. They are
  // then read one at a time (FILE.1 ... FILE.1000 need not all be open at once).
  for (const auto& file : options.files) {
    std::ifstream probe(file, std::ios::binary);
    if (!probe) throw failed("read", escape_untrusted(file), errno_text(errno));
  }
  // Argument order does not matter: the incident aggregates, time comes from each record.
  Incident incident;
  for (const auto& file : options.files) {
    errno = 0;
    std::ifstream in(file, std::ios::binary);
    if (!in || !read_capture(in, file, incident))
      throw failed("read", escape_untrusted(file), errno_text(errno ? errno : EIO));
  }
  for (const MalformedLine& bad : incident.malformed_lines())
    spdlog::warn("{}:{}: skipped a malformed line: {}", escape_untrusted(bad.file), bad.line, bad.why);
  if (incident.malformed() > incident.malformed_lines().size())
    spdlog::warn("... and {} more malformed lines ({} in all)", incident.malformed() - incident.malformed_lines().size(),
                 incident.malformed());
  if (incident.truncated()) spdlog::warn("{} truncated last line(s) skipped", incident.truncated());

  const std::string text = render_text(incident, options.files);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!options.html.empty()) {
    // 0666 less the umask, as any output file the operator names.
    if (const Result<FileIdentity> written = replace_file(options.html, render_html(incident, options.files), 0666);
        !written)
      throw failed("write", options.html, written.reason());
    spdlog::info("wrote {}", options.html);
  }
  return 0;
}

}  // namespace rsttrace
