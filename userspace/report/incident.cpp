#include "report/incident.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "output/format.h"

namespace rsttrace {
namespace {

constexpr size_t kMaxMalformedKept = 20;

std::string string_field(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::optional<std::string> minute_of(const std::string& ts) {
  static const std::regex rfc3339(R"((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}):\d{2}(\.\d+)?Z)");
  std::smatch match;
  if (!std::regex_match(ts, match, rfc3339)) return std::nullopt;
  return match[1].str() + "Z";
}

void Incident::malformed(const std::string& file, uint64_t number, std::string why) {
  ++malformed_count_;
  if (malformed_.size() < kMaxMalformedKept) malformed_.push_back({file, number, std::move(why)});
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
  if (type == "lost") {
    const auto count = record.find("count");
    if (count == record.end() || !count->is_number_unsigned()) return malformed(file, number, "lost without a count");
    lost_ += count->get<uint64_t>();
    return;
  }
  if (type == "summary") {
    ++summaries_;
    return;
  }
  if (type != "event") return malformed(file, number, type.empty() ? "no \"type\"" : "unknown type");
  const std::string ts = string_field(record, "ts");
  const std::string verdict = string_field(record, "verdict");
  const auto minute = minute_of(ts);
  if (!minute) return malformed(file, number, "event without an RFC 3339 \"ts\"");
  if (verdict.empty()) return malformed(file, number, "event without a \"verdict\"");
  ++events_;
  by_verdict_.add(verdict);
  by_remote_.add(string_field(record, "remote_addr"));
  if (const std::string jail = string_field(record, "fail2ban_jail"); !jail.empty()) by_jail_.add(jail);
  if (first_.empty() || ts < first_) first_ = ts;  // same format, UTC: text order is time order
  if (last_.empty() || ts > last_) last_ = ts;
  auto& minute_counts = timeline_[*minute];
  if (minute_counts.count(verdict) || minute_counts.size() < 64) ++minute_counts[verdict];
}

std::vector<std::pair<std::string, uint64_t>> Incident::top_remotes(size_t n) const { return by_remote_.top(n); }
std::vector<std::pair<std::string, uint64_t>> Incident::top_jails(size_t n) const { return by_jail_.top(n); }

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
         escape_untrusted(incident.last_seen()));
  }
  line("lost in the kernel: " + std::to_string(incident.lost()) +
       (incident.lost() ? " (the counts below miss these)" : ""));
  if (incident.malformed() || incident.truncated())
    line("skipped lines: " + std::to_string(incident.malformed()) + " malformed, " +
         std::to_string(incident.truncated()) + " truncated");
  line("");
  line("by verdict:");
  const auto verdicts = incident.verdicts_by_count();
  char buffer[256];
  for (const auto& [verdict, count] : verdicts) {
    std::snprintf(buffer, sizeof(buffer), "  %-14s %10llu", escape_untrusted(verdict).c_str(),
                  static_cast<unsigned long long>(count));
    line(buffer);
  }
  line("top remote addresses:");
  for (const auto& [address, count] : incident.top_remotes(10)) {
    std::snprintf(buffer, sizeof(buffer), "  %-40s %10llu", escape_untrusted(address).c_str(),
                  static_cast<unsigned long long>(count));
    line(buffer);
  }
  const auto jails = incident.top_jails(10);
  line(jails.empty() ? "fail2ban jails: none" : "fail2ban jails:");
  for (const auto& [jail, count] : jails) {
    std::snprintf(buffer, sizeof(buffer), "  %-40s %10llu", escape_untrusted(jail).c_str(),
                  static_cast<unsigned long long>(count));
    line(buffer);
  }
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
