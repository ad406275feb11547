// The postmortem page: one self-contained HTML file (no scripts, no external
// resources), a stacked bar chart per minute as inline SVG, and the tables.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "attribute/verdict.h"
#include "text/escape.h"
#include "report/incident.h"

namespace rsttrace {
namespace {

std::string html(const std::string& untrusted) {
  std::string text = escape_untrusted(untrusted), out;  // printable ASCII first, then HTML
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A capture's verdict strings are read back into Verdicts; a name this
// version does not print (another version's capture) gets grey.
const char* colour_of(const std::string& verdict) {
  const std::optional<Verdict> known = parse_verdict(verdict);
  if (!known) return "#666666";
  switch (*known) {
    case Verdict::TcpWrappers: return "#d95f02";
    case Verdict::Firewall: return "#1b9e77";
    case Verdict::Sshd: return "#7570b3";
    case Verdict::NoListener: return "#e7298a";
    case Verdict::Kernel: return "#66a61e";
    case Verdict::Peer: return "#e6ab02";
    case Verdict::Unknown: return "#a6761d";
    case Verdict::None: break;  // never in a capture: --raw lines only
  }
  return "#666666";
}

// "2026-11-25T02:13Z" (a key of Incident::timeline(), always valid) -> minutes since the epoch.
long long minute_number(const std::string& minute) {
  return timestamp_us(minute.substr(0, 16) + ":00Z").value_or(0) / 60'000'000;
}

// "11-25 02:13"; with the year when the chart spans more than one.
std::string minute_label(long long minute, bool with_year) {
  const std::time_t t = static_cast<std::time_t>(minute * 60);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), with_year ? "%Y-%m-%d %H:%M" : "%m-%d %H:%M", &tm);
  return buffer;
}

long long floor_div(long long a, long long b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

// Minutes per bar: a round duration (1, 2, 5 ... minutes, hours, days) giving at most 240 bars.
long long bar_minutes(long long span) {
  static constexpr long long round[] = {1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440};
  for (long long minutes : round)
    if ((span + minutes - 1) / minutes <= 240) return minutes;
  return 1440 * ((span + 1440 * 240 - 1) / (1440 * 240));
}

// "minute", "5 minutes", "hour", "3 hours", "day", "2 days".
std::string duration_text(long long minutes) {
  auto unit = [](long long n, const char* name) { return n == 1 ? std::string(name) : std::to_string(n) + " " + name + "s"; };
  if (minutes % 1440 == 0) return unit(minutes / 1440, "day");
  if (minutes % 60 == 0) return unit(minutes / 60, "hour");
  return unit(minutes, "minute");
}

std::string chart(const Incident& incident) {
  const auto& timeline = incident.timeline();
  if (timeline.empty()) return "<p>No events.</p>";
  long long first = minute_number(timeline.begin()->first), last = first;
  for (const auto& entry : timeline) {  // text order is time order for valid keys; do not rely on it
    first = std::min(first, minute_number(entry.first));
    last = std::max(last, minute_number(entry.first));
  }
  const long long per_bar = bar_minutes(last - first + 1);
  first = floor_div(first, per_bar) * per_bar;  // bars start on the clock's round times
  const long long span = last - first + 1;
  const std::string per_bar_text = duration_text(per_bar);
  const bool with_year = minute_label(first, true).substr(0, 4) != minute_label(last, true).substr(0, 4);
  const long long bars = (span + per_bar - 1) / per_bar;
  std::vector<std::map<std::string, uint64_t>> buckets(static_cast<size_t>(bars));
  std::set<std::string> verdicts;
  for (const auto& [minute, counts] : timeline) {
    auto& bucket = buckets[static_cast<size_t>((minute_number(minute) - first) / per_bar)];
    for (const auto& [verdict, count] : counts) {
      bucket[verdict] += count;
      verdicts.insert(verdict);
    }
  }
  uint64_t peak = 1;
  for (const auto& bucket : buckets) {
    uint64_t total = 0;
    for (const auto& entry : bucket) total += entry.second;
    peak = std::max(peak, total);
  }
  const int width = 960, height = 320, left = 60, right = 20, top = 24, bottom = 50;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const double bar_w = plot_w / static_cast<double>(bars);
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height) + "\" role=\"img\" aria-label=\"events per " +
                    per_bar_text + " by verdict\">\n";
  char buffer[512];
  // Grid lines at whole counts, at most five; the scale's top is the last one.
  const uint64_t step = std::max<uint64_t>(1, (peak + 3) / 4);
  peak = step * ((peak + step - 1) / step);
  for (uint64_t value = 0; value <= peak; value += step) {
    const double y = top + plot_h - plot_h * static_cast<double>(value) / static_cast<double>(peak);
    std::snprintf(buffer, sizeof(buffer),
                  "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                  "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%llu</text>\n",
                  left, y, width - right, y, left - 6, y + 4, static_cast<unsigned long long>(value));
    svg += buffer;
  }
  for (long long bar = 0; bar < bars; ++bar) {
    double y = top + plot_h;
    const double x = left + bar_w * static_cast<double>(bar);
    for (const auto& [verdict, count] : buckets[static_cast<size_t>(bar)]) {
      const double h = plot_h * static_cast<double>(count) / static_cast<double>(peak);
      y -= h;
      // Numbers through snprintf, capture strings (any length) appended whole.
      std::snprintf(buffer, sizeof(buffer),
                    "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>%s ",
                    x + 0.5, y, std::max(bar_w - 1.0, 1.0), h, colour_of(verdict),
                    minute_label(first + bar * per_bar, with_year).c_str());
      svg += buffer + html(verdict) + ": " + std::to_string(count) + "</title></rect>\n";
    }
  }
  std::snprintf(buffer, sizeof(buffer), "<text x=\"%d\" y=\"%d\" font-size=\"11\">events per %s</text>\n", 8, 12,
                per_bar_text.c_str());
  svg += buffer;
  // Time labels: about six along the axis.
  const long long label_every = std::max<long long>(1, bars / 6);
  for (long long bar = 0; bar < bars; bar += label_every) {
    if (bar > 0 && left + bar_w * static_cast<double>(bar) > width - right - (with_year ? 95 : 70)) break;  // cut off
    std::snprintf(buffer, sizeof(buffer), "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%s</text>\n",
                  left + bar_w * static_cast<double>(bar), height - bottom + 16,
                  minute_label(first + bar * per_bar, with_year).c_str());
    svg += buffer;
  }
  std::snprintf(buffer, sizeof(buffer),
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\"/>"
                "<text x=\"%d\" y=\"%d\" font-size=\"11\">UTC, one bar per %s</text>\n",
                left, top + plot_h, width - right, top + plot_h, left, height - 8, per_bar_text.c_str());
  svg += buffer;
  // Legend.
  int x = left + 220;
  for (const auto& verdict : verdicts) {
    if (x > width - 100) break;  // more verdicts than room: the table lists them all
    std::snprintf(buffer, sizeof(buffer),
                  "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                  "<text x=\"%d\" y=\"%d\" font-size=\"12\">",
                  x, height - 19, colour_of(verdict), x + 16, height - 9);
    svg += buffer + html(verdict) + "</text>\n";
    x += 24 + static_cast<int>(verdict.size()) * 8;
  }
  return svg + "</svg>";
}

std::string table(const char* caption, const char* key, const std::vector<std::pair<std::string, uint64_t>>& rows) {
  std::string out = std::string("<table><caption>") + caption + "</caption><tr><th>" + key + "</th><th>events</th></tr>\n";
  if (rows.empty()) out += "<tr><td colspan=\"2\">none</td></tr>\n";
  for (const auto& [name, count] : rows)
    out += "<tr><td>" + html(name) + "</td><td class=\"n\">" + std::to_string(count) + "</td></tr>\n";
  return out + "</table>\n";
}

std::string host_table(const Incident& incident) {
  std::string out = "<table><caption>By host</caption><tr><th>host</th><th>events</th><th>first</th><th>last</th>"
                    "<th>lost</th><th>runs</th></tr>\n";
  if (incident.hosts().empty()) out += "<tr><td colspan=\"6\">none</td></tr>\n";
  for (const auto& [host, counts] : incident.hosts())
    out += "<tr><td>" + html(host) + "</td><td class=\"n\">" + std::to_string(counts.events) + "</td><td>" +
           html(counts.first) + "</td><td>" + html(counts.last) + "</td><td class=\"n\">" +
           std::to_string(counts.lost) + "</td><td class=\"n\">" + std::to_string(counts.runs) + "</td></tr>\n";
  return out + "</table>\n";
}

}  // namespace

std::string render_html(const Incident& incident, const std::vector<std::string>& files) {
  std::string names;
  for (const auto& file : files) names += (names.empty() ? "" : ", ") + html(file);
  const auto verdicts = incident.verdicts_by_count();
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<title>rsttrace report</title>\n<style>\n"
      "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}"
      "table{border-collapse:collapse;margin:12px 24px 12px 0;display:inline-table;vertical-align:top}"
      "caption{text-align:left;font-weight:bold;padding:4px 0}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}td.n{text-align:right}.note{color:#a00}\n"
      "</style></head><body>\n<h1>rsttrace report</h1>\n<p>Capture: " + names + "</p>\n";
  if (incident.events())
    page += "<p>" + std::to_string(incident.events()) + " events from " + html(incident.first_seen()) + " to " +
            html(incident.last_seen()) + ".</p>\n";
  page += "<p" + std::string(incident.lost() ? " class=\"note\"" : "") + ">Events lost in the kernel: " +
          std::to_string(incident.lost()) + (incident.lost() ? " (not in the counts below)." : ".") + "</p>\n";
  if (incident.malformed() || incident.truncated())
    page += "<p class=\"note\">Skipped lines: " + std::to_string(incident.malformed()) + " malformed, " +
            std::to_string(incident.truncated()) + " truncated.</p>\n";
  page += chart(incident) + "\n<div>\n" + table("By verdict", "verdict", verdicts) +
          table("Top remote addresses", "remote address", incident.top_remotes(20)) +
          table("fail2ban jails", "jail", incident.top_jails(20)) + host_table(incident) + "</div>\n";
  for (const std::string& note : clock_order_notes(incident))
    page += "<p" + std::string(incident.clock_steps_back() ? " class=\"note\"" : "") + ">" + html(note) + "</p>\n";
  page += "</body></html>\n";
  return page;
}

}  // namespace rsttrace
