#include "report/incident.h"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>

#include "attribute/remedy.h"
#include "text/escape.h"

namespace rsttrace {
namespace {

constexpr size_t kMaxMalformedKept = 20;

int64_t floor_seconds(int64_t us) { return us / 1'000'000 - (us % 1'000'000 < 0); }

std::string string_field(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : "";
}

// `[{"addr", "count"}, ...]` of a class storm's line (docs/events.md) into `counts`:
// at most 10 entries read, each count at most the line's (a hostile capture counts no more).
void add_shares(const nlohmann::json& record, const char* key, uint64_t line_count,
                std::initializer_list<BoundedCounts*> counts) {
  const auto list = record.find(key);
  if (list == record.end() || !list->is_array()) return;
  size_t read = 0;
  for (const auto& share : *list) {
    if (++read > 10) return;
    if (!share.is_object()) continue;
    const std::string addr = string_field(share, "addr");
    const auto count = share.find("count");
    if (addr.empty() || addr.size() > 64 || count == share.end() || !count->is_number_unsigned()) continue;
    if (const uint64_t n = std::min(count->get<uint64_t>(), line_count))
      for (BoundedCounts* into : counts) into->add(addr, n);
  }
}

}  // namespace

std::optional<int64_t> timestamp_us(const std::string& ts) {
  // YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z.
  static constexpr char shape[] = "dddd-dd-ddTdd:dd:dd";
  constexpr size_t fixed = sizeof(shape) - 1;
  if (ts.size() < fixed + 1 || ts.back() != 'Z') return std::nullopt;
  for (size_t i = 0; i < fixed; ++i) {
    const bool digit = ts[i] >= '0' && ts[i] <= '9';
    if (shape[i] == 'd' ? !digit : ts[i] != shape[i]) return std::nullopt;
  }
  auto number = [&ts](size_t at, size_t digits) {
    int value = 0;
    for (size_t i = at; i < at + digits; ++i) value = value * 10 + (ts[i] - '0');
    return value;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const int hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  static constexpr int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day < 1 || day > month_days[month - 1] + (month == 2 && leap)) return std::nullopt;
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  int64_t micros = 0;
  const size_t fraction = ts.size() - 1 - fixed;  // characters between the seconds and the Z
  if (fraction > 0) {
    if (fraction < 2 || fraction > 10 || ts[fixed] != '.') return std::nullopt;  // "." and 1 to 9 digits
    for (size_t i = 0; i < 6; ++i) {
      const size_t at = fixed + 1 + i;
      const char c = at < ts.size() - 1 ? ts[at] : '0';
      if (c < '0' || c > '9') return std::nullopt;
      micros = micros * 10 + (c - '0');
    }
    for (size_t at = fixed + 7; at < ts.size() - 1; ++at)
      if (ts[at] < '0' || ts[at] > '9') return std::nullopt;
  }
  // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
  const int y = year - (month <= 2);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  return ((days * 24 + hour) * 60 + minute) * 60'000'000LL + second * 1'000'000LL + micros;
}

std::optional<std::string> minute_of(const std::string& ts) {
  if (!timestamp_us(ts)) return std::nullopt;
  return ts.substr(0, 16) + "Z";
}

void Incident::malformed(const std::string& file, uint64_t number, std::string why) {
  ++malformed_count_;
  if (malformed_.size() < kMaxMalformedKept) malformed_.push_back({file, number, std::move(why)});
}

HostCounts& Incident::host_of(const nlohmann::json& record) {
  const auto field = record.find("host");
  std::string host = field != record.end() && field->is_string() ? field->get<std::string>() : kNoHost;
  if (!hosts_.count(host) && hosts_.size() >= kMaxHosts) host = kOtherHosts;
  return hosts_[host];
}

void Incident::check_clock_order(const std::string& file, uint64_t number, const std::string& host,
                                 const std::string& ts, int64_t when_us) {
  if (file != order_file_ || order_latest_.empty()) {
    if (file != order_file_) order_file_ = file;
    order_latest_ = ts, order_latest_us_ = when_us;
    return;
  }
  if (when_us < order_latest_us_ - kClockStepBackUs) {
    ++clock_steps_back_;
    if (clock_step_back_lines_.size() < kMaxMalformedKept)
      clock_step_back_lines_.push_back({host, file, number, ts, order_latest_});
    // The lines after it are measured from it: one step is one note, not one per line.
    order_latest_ = ts, order_latest_us_ = when_us;
    return;
  }
  if (when_us > order_latest_us_) order_latest_ = ts, order_latest_us_ = when_us;
}

void Incident::add_line(const std::string& file, uint64_t number, const std::string& line, bool last_unterminated) {
  if (line.empty()) return;
  const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
  if (record.is_discarded() || !record.is_object()) {
    if (last_unterminated)
      ++truncated_;
    else
      malformed(file, number, "not a JSON object");
    return;
  }
  const std::string type = string_field(record, "type");
  const std::string line_ts = string_field(record, "ts");
  if (const auto when = timestamp_us(line_ts)) {
    const auto host = record.find("host");
    check_clock_order(file, number, host != record.end() && host->is_string() ? host->get<std::string>() : kNoHost,
                      line_ts, *when);
  }
  if (type == "lost") {
    const auto count = record.find("count");
    if (count == record.end() || !count->is_number_unsigned()) return malformed(file, number, "lost without a count");
    lost_ += count->get<uint64_t>();
    host_of(record).lost += count->get<uint64_t>();
    return;
  }
  if (type == "summary") {
    ++summaries_;
    ++host_of(record).runs;
    return;
  }
  // A storm line stands for `connections` (else `count`) connections of its class (docs/events.md).
  const bool storm = type == "storm";
  if (type != "event" && !storm) return malformed(file, number, type.empty() ? "no \"type\"" : "unknown type");
  const std::string ts = string_field(record, "ts");
  const std::string verdict = string_field(record, "verdict");
  const auto when = timestamp_us(ts);
  if (!when) return malformed(file, number, type + " without an RFC 3339 \"ts\"");
  if (verdict.empty()) return malformed(file, number, type + " without a \"verdict\"");
  uint64_t count = 1;
  if (storm) {
    const auto field = record.find("count");
    if (field == record.end() || !field->is_number_unsigned()) return malformed(file, number, "storm without a count");
    count = field->get<uint64_t>();
    // Connections, not ends: a loopback twin's line (the client ends of the
    // connections another storm counts) has "connections" 0. Captures from
    // before that field count every event.
    if (const auto connections = record.find("connections"); connections != record.end()) {
      if (!connections->is_number_unsigned() || connections->get<uint64_t>() > count)
        return malformed(file, number, "storm with a bad \"connections\"");
      count = connections->get<uint64_t>();
    }
    storm_events_ += count;
    if (count == 0) return;
  }
  events_ += count;
  by_verdict_.add(verdict, count);
  // Past the bound on distinct verdicts, the timeline counts under the same overflow key.
  const std::string verdict_key = by_verdict_.all().count(verdict) ? verdict : kOtherVerdicts;
  if (const std::string remote = string_field(record, storm ? "peer_addr" : "remote_addr"); !remote.empty())
    by_remote_.add(remote, count);
  if (storm && count) {  // a class storm's top peers and prefixes, each with its connections since its previous line
    add_shares(record, "top_peers", count, {&by_remote_, &by_class_peer_});
    add_shares(record, "top_prefixes", count, {&by_class_prefix_});
    if (const auto peerless = record.find("peerless"); peerless != record.end() && peerless->is_boolean() && *peerless)
      class_storm_connections_ += count;
  }
  if (const std::string jail = string_field(record, "fail2ban_jail"); !jail.empty()) by_jail_.add(jail, count);
  if (first_.empty() || *when < first_us_) first_ = ts, first_us_ = *when;
  if (last_.empty() || *when > last_us_) last_ = ts, last_us_ = *when;
  timeline_[ts.substr(0, 16) + "Z"][verdict_key] += count;
  if (!seconds_overflowed_) {
    per_second_[floor_seconds(*when)][verdict_key] += count;
    if (per_second_.size() > kSecondsKept) {
      per_second_.clear();
      seconds_overflowed_ = true;
    }
  }
  add_provenance(record, verdict_key, count, storm, ts, *when, verdict);
  HostCounts& host = host_of(record);
  host.events += count;
  if (host.first.empty() || *when < host.first_us) host.first = ts, host.first_us = *when;
  if (host.last.empty() || *when > host.last_us) host.last = ts, host.last_us = *when;
}

void Incident::add_provenance(const nlohmann::json& record, const std::string& verdict_key, uint64_t count, bool storm,
                              const std::string& ts, int64_t when_us, const std::string& verdict) {
  const std::string jail = string_field(record, "fail2ban_jail");
  std::string rule_text;
  if (const auto rule = record.find("rule"); rule != record.end() && rule->is_object()) {
    const std::string backend = string_field(*rule, "backend"), table = string_field(*rule, "table"),
                      chain = string_field(*rule, "chain"), text = string_field(*rule, "text");
    const auto handle = rule->find("handle");
    rule_text = backend + " " + string_field(*rule, "family") + " " + table + " " + chain +
                (handle != rule->end() && handle->is_number_unsigned() ? " handle " + std::to_string(handle->get<uint64_t>()) : "") +
                ": " + text;
    by_rule_.add(rule_text, count);
    const auto blocker = record.find("blocker");
    const std::string tool = blocker != record.end() && blocker->is_object() ? string_field(*blocker, "tool") : "";
    by_front_end_.add(!tool.empty() ? tool : firewall_front_end(backend, table, chain, text, !jail.empty()), count);
  } else if (const auto wrapper = record.find("wrapper_rule"); wrapper != record.end() && wrapper->is_object()) {
    const auto line = wrapper->find("line");
    rule_text = string_field(*wrapper, "file") + " line " +
                (line != wrapper->end() && line->is_number_unsigned() ? std::to_string(line->get<uint64_t>()) : "?") + ": " +
                string_field(*wrapper, "text");
    by_rule_.add(rule_text, count);
    by_front_end_.add(jail.empty() ? "tcp-wrappers" : "fail2ban", count);
  } else if (!jail.empty()) {
    by_front_end_.add("fail2ban", count);
  }
  std::vector<std::string> remedy;
  if (const auto field = record.find("remedy"); field != record.end() && field->is_array())
    for (const auto& command : *field)
      if (command.is_string() && remedy.size() < 8) remedy.push_back(command.get<std::string>());
  for (const std::string& command : remedy) {
    by_remedy_.add(command, count);
    auto& commands = remedies_by_verdict_[verdict_key];
    if (commands.count(command) || commands.size() < 20) commands[command] += count;
  }
  if (storm) return;
  if (latest_.size() >= kLatestKept) {
    if (when_us < latest_.begin()->first) return;
    latest_.erase(latest_.begin());
  }
  latest_.emplace(when_us, LineSummary{ts, verdict, string_field(record, "remote_addr"),
                                       string_field(record, "detail").substr(0, 2000), rule_text.substr(0, 2000), jail,
                                       std::move(remedy)});
}

std::vector<LineSummary> Incident::latest_lines() const {
  std::vector<LineSummary> out;
  for (const auto& entry : latest_) out.push_back(entry.second);
  return out;
}


std::vector<std::pair<std::string, uint64_t>> Incident::top_remotes(size_t n) const { return by_remote_.top(n); }
std::vector<std::pair<std::string, uint64_t>> Incident::top_jails(size_t n) const { return by_jail_.top(n); }

std::vector<std::string> clock_order_notes(const Incident& incident) {
  std::vector<std::string> notes;
  if (incident.clock_steps_back() == 0) {
    notes.push_back("clock order: no line more than 60 s earlier than a line before it in its file" +
                    std::string(incident.hosts().size() > 1
                                    ? "; hosts are merged by their own clocks (keep them synchronized, e.g. NTP)"
                                    : ""));
    return notes;
  }
  notes.push_back("clock order: " + std::to_string(incident.clock_steps_back()) +
                  " step(s) back: a line more than 60 s earlier than a line before it in its file (a clock set "
                  "back between runs, or files joined out of order): times around them are not in order");
  for (const ClockStepBack& step : incident.clock_step_back_lines())
    notes.push_back("  " + escape_untrusted(step.file) + ":" + std::to_string(step.line) + ": host " +
                    escape_untrusted(step.host) + " at " + escape_untrusted(step.ts) + ", after " +
                    escape_untrusted(step.after));
  return notes;
}

std::string render_text(const Incident& incident, const std::vector<std::string>& files) {
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  std::string names;
  for (const auto& file : files) names += (names.empty() ? "" : ", ") + escape_untrusted(file);
  line("rsttrace report: " + names);
  if (incident.events() == 0) {
    line("no events");
  } else {
    line(std::to_string(incident.events()) + " events from " + escape_untrusted(incident.first_seen()) + " to " +
         escape_untrusted(incident.last_seen()) +
         (incident.storm_events() ? " (" + std::to_string(incident.storm_events()) + " of them counted in storms)" : ""));
  }
  line("lost in the kernel: " + std::to_string(incident.lost()) +
       (incident.lost() ? " (the counts below miss these)" : ""));
  if (incident.malformed() || incident.truncated())
    line("skipped lines: " + std::to_string(incident.malformed()) + " malformed, " +
         std::to_string(incident.truncated()) + " truncated");
  line("");
  line("by verdict:");
  const auto verdicts = incident.verdicts_by_count();
  char buffer[32];
  // "  name      count": the name escaped and whole (however long), the count right-aligned.
  auto row = [&](const std::string& name, size_t width, uint64_t count) {
    std::string text = "  " + escape_untrusted(name);
    if (text.size() < width + 2) text.append(width + 2 - text.size(), ' ');
    std::snprintf(buffer, sizeof(buffer), " %10llu", static_cast<unsigned long long>(count));
    line(text + buffer);
  };
  for (const auto& [verdict, count] : verdicts) row(verdict, 14, count);
  line("top remote addresses:");
  for (const auto& [address, count] : incident.top_remotes(10)) row(address, 40, count);
  if (incident.class_storm_connections())
    line("class storms (many peers, none above the threshold alone): " +
         std::to_string(incident.class_storm_connections()) +
         " connections; peers outside each line's top 10 are under no address");
  if (const auto prefixes = incident.top_class_prefixes(10); !prefixes.empty()) {
    line("top networks of class storms (many peers):");
    for (const auto& [prefix, count] : prefixes) row(prefix, 40, count);
  }
  if (const auto peers = incident.top_class_peers(10); !peers.empty()) {
    line("top peers of class storms (many peers):");
    for (const auto& [peer, count] : peers) row(peer, 40, count);
  }
  const auto jails = incident.top_jails(10);
  line(jails.empty() ? "fail2ban jails: none" : "fail2ban jails:");
  for (const auto& [jail, count] : jails) row(jail, 40, count);
  const auto front_ends = incident.top_front_ends(10);
  line(front_ends.empty() ? "front-ends behind the blocks: none" : "front-ends behind the blocks:");
  for (const auto& [tool, count] : front_ends) row(tool, 40, count);
  const auto rules = incident.top_rules(10);
  line(rules.empty() ? "rules and hosts lines: none" : "rules and hosts lines:");
  for (const auto& [rule, count] : rules) row(rule, 40, count);
  const auto remedies = incident.top_remedies(10);
  line(remedies.empty() ? "fixes: none known" : "fixes (run as root; rsttrace never runs them):");
  for (const auto& [command, count] : remedies) row(command, 40, count);
  line("by host:");
  for (const auto& [host, counts] : incident.hosts()) {
    std::string text = "  " + escape_untrusted(host);
    if (text.size() < 26) text.append(26 - text.size(), ' ');
    std::snprintf(buffer, sizeof(buffer), " %10llu events", static_cast<unsigned long long>(counts.events));
    text += buffer;
    if (!counts.first.empty()) text += ", " + escape_untrusted(counts.first) + " to " + escape_untrusted(counts.last);
    text += ", lost " + std::to_string(counts.lost) + ", runs " + std::to_string(counts.runs);
    line(text);
  }
  for (const auto& note : clock_order_notes(incident)) line(note);
  line("per minute (UTC):");
  for (const auto& [minute, counts] : incident.timeline()) {
    std::string row = "  " + minute.substr(0, 16) + " ";
    uint64_t total = 0;
    std::string detail;
    for (const auto& [verdict, count] : counts) {
      total += count;
      detail += (detail.empty() ? "" : ", ") + escape_untrusted(verdict) + " " + std::to_string(count);
    }
    std::snprintf(buffer, sizeof(buffer), "%8llu", static_cast<unsigned long long>(total));
    line(row + buffer + "  " + detail);
  }
  return out;
}

}  // namespace rsttrace
