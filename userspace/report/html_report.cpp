// The postmortem page: one self-contained HTML file (no scripts, no external
// resources), a stacked bar chart as inline SVG (per second or 10 s for a short
// capture, per minute or more for a long one), and the tables: verdicts with
// their meaning and fix, rules, front-ends, jails, and the latest lines.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
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

// The bars of the chart: counts by verdict per bar, each bar's label, and what one bar spans.
struct Bars {
  std::vector<std::map<std::string, uint64_t>> buckets;
  std::vector<std::string> labels;
  std::string per_bar_text;  // "minute", "5 minutes", "second", "10 seconds"
  int label_width = 70;      // pixels a label needs
};

// A short capture (up to 40 minutes, its seconds known): a bar per second, or per 10 s.
std::optional<Bars> second_bars(const Incident& incident) {
  const auto& seconds = incident.per_second();
  if (seconds.empty()) return std::nullopt;
  const int64_t first_second = seconds.begin()->first, last_second = seconds.rbegin()->first;
  const int64_t span = last_second - first_second + 1;
  if (span > 2400) return std::nullopt;
  const int64_t per_bar = span <= 240 ? 1 : 10;
  const int64_t first = first_second - first_second % per_bar;
  Bars bars;
  bars.per_bar_text = per_bar == 1 ? "second" : "10 seconds";
  bars.label_width = 60;
  const int64_t count = (last_second - first) / per_bar + 1;
  bars.buckets.resize(static_cast<size_t>(count));
  for (const auto& [second, counts] : seconds)
    for (const auto& [verdict, n] : counts) bars.buckets[static_cast<size_t>((second - first) / per_bar)][verdict] += n;
  for (int64_t bar = 0; bar < count; ++bar) {
    const std::time_t t = static_cast<std::time_t>(first + bar * per_bar);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[16];
    std::strftime(buffer, sizeof(buffer), "%H:%M:%S", &tm);
    bars.labels.push_back(buffer);
  }
  return bars;
}

Bars minute_bars(const Incident& incident) {
  const auto& timeline = incident.timeline();
  long long first = minute_number(timeline.begin()->first), last = first;
  for (const auto& entry : timeline) {  // text order is time order for valid keys; do not rely on it
    first = std::min(first, minute_number(entry.first));
    last = std::max(last, minute_number(entry.first));
  }
  const long long per_bar = bar_minutes(last - first + 1);
  first = floor_div(first, per_bar) * per_bar;  // bars start on the clock's round times
  const long long span = last - first + 1;
  Bars bars;
  bars.per_bar_text = duration_text(per_bar);
  const bool with_year = minute_label(first, true).substr(0, 4) != minute_label(last, true).substr(0, 4);
  bars.label_width = with_year ? 95 : 70;
  const long long count = (span + per_bar - 1) / per_bar;
  bars.buckets.resize(static_cast<size_t>(count));
  for (const auto& [minute, counts] : timeline) {
    auto& bucket = bars.buckets[static_cast<size_t>((minute_number(minute) - first) / per_bar)];
    for (const auto& [verdict, n] : counts) bucket[verdict] += n;
  }
  for (long long bar = 0; bar < count; ++bar) bars.labels.push_back(minute_label(first + bar * per_bar, with_year));
  return bars;
}

std::string chart(const Incident& incident) {
  if (incident.timeline().empty()) return "<p>No events.</p>";
  const auto short_capture = second_bars(incident);
  const Bars chosen = short_capture ? *short_capture : minute_bars(incident);
  const auto& buckets = chosen.buckets;
  const std::string& per_bar_text = chosen.per_bar_text;
  const long long bars = static_cast<long long>(buckets.size());
  std::set<std::string> verdicts;
  for (const auto& bucket : buckets)
    for (const auto& entry : bucket) verdicts.insert(entry.first);
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
                    chosen.labels[static_cast<size_t>(bar)].c_str());
      svg += buffer + html(verdict) + ": " + std::to_string(count) + "</title></rect>\n";
    }
  }
  std::snprintf(buffer, sizeof(buffer), "<text x=\"%d\" y=\"%d\" font-size=\"11\">events per %s</text>\n", 8, 12,
                per_bar_text.c_str());
  svg += buffer;
  // Time labels: about six along the axis.
  const long long label_every = std::max<long long>(1, bars / 6);
  for (long long bar = 0; bar < bars; bar += label_every) {
    if (bar > 0 && left + bar_w * static_cast<double>(bar) > width - right - chosen.label_width) break;  // cut off
    std::snprintf(buffer, sizeof(buffer), "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%s</text>\n",
                  left + bar_w * static_cast<double>(bar), height - bottom + 16,
                  chosen.labels[static_cast<size_t>(bar)].c_str());
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

// What each verdict means for the operator (docs/attribution.md has the evidence).
const char* meaning_of(const std::string& verdict) {
  const std::optional<Verdict> known = parse_verdict(verdict);
  if (!known) return "a verdict this version of rsttrace does not print";
  switch (*known) {
    case Verdict::TcpWrappers: return "sshd's TCP wrappers (libwrap) refused the client: a hosts.allow/hosts.deny line, often fail2ban's hostsdeny action";
    case Verdict::Firewall: return "netfilter dropped or rejected the client's packets: an nftables or iptables rule (fail2ban, sshguard, ufw, firewalld or a hand-written one)";
    case Verdict::Sshd: return "sshd itself closed the connection: MaxStartups or PerSourcePenalties at the listener, LoginGraceTime, a killed child, a bad banner";
    case Verdict::NoListener: return "nothing listened on the port: sshd was down or restarting, and the kernel refused the SYN";
    case Verdict::Kernel: return "the TCP stack reset or dropped it for a reason of its own (a connection that no longer exists, a full queue)";
    case Verdict::Peer: return "the other end reset or aborted the connection";
    case Verdict::Unknown: return "no rule matched, or a process that is not sshd closed it";
    case Verdict::None: break;
  }
  return "ordinary teardown";
}

std::string verdict_table(const Incident& incident) {
  std::string out =
      "<table id=\"verdicts\"><caption>What each verdict means, and the fix</caption>"
      "<tr><th>verdict</th><th>events</th><th>meaning</th><th>fix (commands to run as root; rsttrace never runs them)</th></tr>\n";
  const auto& remedies = incident.remedies_by_verdict();
  for (const auto& [verdict, count] : incident.verdicts_by_count()) {
    out += "<tr><td>" + html(verdict) + "</td><td class=\"n\">" + std::to_string(count) + "</td><td>" +
           html(meaning_of(verdict)) + "</td><td>";
    const auto found = remedies.find(verdict);
    if (found == remedies.end()) out += "none known";
    else
      for (const auto& [command, n] : found->second)
        out += "<code>" + html(command) + "</code> (" + std::to_string(n) + ")<br>";
    out += "</td></tr>\n";
  }
  return out + "</table>\n";
}

std::string latest_table(const Incident& incident) {
  const auto lines = incident.latest_lines();
  std::string out = "<table id=\"latest\"><caption>The latest " + std::to_string(lines.size()) +
                    " lines</caption><tr><th>time (UTC)</th><th>verdict</th><th>remote</th><th>rule or line</th>"
                    "<th>jail</th><th>detail</th><th>fix</th></tr>\n";
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    std::string fix;
    for (const std::string& command : line->remedy) fix += "<code>" + html(command) + "</code><br>";
    out += "<tr><td>" + html(line->ts) + "</td><td>" + html(line->verdict) + "</td><td>" + html(line->remote) +
           "</td><td>" + html(line->rule) + "</td><td>" + html(line->jail) + "</td><td class=\"d\">" +
           html(line->detail) + "</td><td>" + fix + "</td></tr>\n";
  }
  return out + "</table>\n";
}

// Class storms (docs/events.md: many peers, none above the threshold alone): where they come from.
std::string class_storm_tables(const Incident& incident) {
  const auto prefixes = incident.top_class_prefixes(20), peers = incident.top_class_peers(20);
  if (prefixes.empty() && peers.empty() && !incident.class_storm_connections()) return "";
  return "<p id=\"class-storms\">Class storms (many peers, none above the threshold alone): " +
         std::to_string(incident.class_storm_connections()) +
         " connections; each storm line names its top 10 peers and networks, so peers outside them are "
         "under no address.</p>\n" +
         table("Top networks of class storms", "network (/24, /64)", prefixes) +
         table("Top peers of class storms", "peer address", peers);
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
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}td.n{text-align:right}.note{color:#a00}"
      "td.d{max-width:480px;font-size:12px}code{font-size:12px;background:#f4f4f4}\n"
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
          table("Top remote addresses", "remote address", incident.top_remotes(20)) + class_storm_tables(incident) +
          table("fail2ban jails", "jail", incident.top_jails(20)) +
          table("Front-ends behind the blocks", "tool", incident.top_front_ends(20)) + host_table(incident) +
          "</div>\n" + verdict_table(incident) +
          table("Rules and lines involved", "rule or hosts line", incident.top_rules(20)) + latest_table(incident);
  for (const std::string& note : clock_order_notes(incident))
    page += "<p" + std::string(incident.clock_steps_back() ? " class=\"note\"" : "") + ">" + html(note) + "</p>\n";
  page += "</body></html>\n";
  return page;
}

}  // namespace rsttrace
