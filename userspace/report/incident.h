// `rsttrace report`: the story of an incident from capture files (the JSON
// lines of docs/events.md). Pure: lines in, an Incident out, text or HTML
// rendered from it. Aggregates as it reads, so a capture of any size streams.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "output/tally.h"

namespace rsttrace {

struct MalformedLine {
  std::string file;
  uint64_t line = 0;
  std::string why;
};

// One event line as the page's table of the latest lines shows it (strings as captured: escape to show).
struct LineSummary {
  std::string ts, verdict, remote, detail, rule, jail;
  std::vector<std::string> remedy;
};

// One host's part of the capture (the lines' "host"; "(no host)" for lines
// written before rsttrace had the field).
struct HostCounts {
  uint64_t events = 0;  // event lines, plus the counts of storm lines
  uint64_t lost = 0;
  uint64_t runs = 0;  // summary lines
  std::string first, last;  // RFC 3339, "" when no event
  int64_t first_us = 0, last_us = 0;
};

// A line whose time is more than kClockStepBackUs earlier than a line before
// it in the same file: the host's clock was set back between two runs (one
// run's times all come from one clock reading at its start), or files were
// joined out of order. Lines are written at most --provenance-deadline (10 s
// by default) after their event, so a smaller step is ordinary.
struct ClockStepBack {
  std::string host, file;
  uint64_t line = 0;
  std::string ts, after;  // this line's time, and the latest time before it in the file
};

class Incident {
 public:
  static constexpr size_t kLatestKept = 50;
  static constexpr size_t kSecondsKept = 3600;  // per-second counts kept for captures up to an hour
  static constexpr const char* kNoHost = "(no host)";
  static constexpr const char* kOtherHosts = "(other hosts)";  // past kMaxHosts distinct hosts
  static constexpr size_t kMaxHosts = 10000;
  static constexpr int64_t kClockStepBackUs = 60'000'000;

  static constexpr const char* kOtherVerdicts = "(other verdicts)";  // past 64 distinct verdicts

  // One line of `file` (1-based `number`), without its newline.
  // `last_unterminated`: the file's last line had no newline (a capture cut
  // while being written): if it does not parse it is counted as truncated, not malformed.
  void add_line(const std::string& file, uint64_t number, const std::string& line, bool last_unterminated = false);

  uint64_t events() const { return events_; }  // event lines, plus the counts of storm lines
  uint64_t storm_events() const { return storm_events_; }
  const std::map<std::string, uint64_t>& by_verdict() const { return by_verdict_.all(); }
  std::vector<std::pair<std::string, uint64_t>> verdicts_by_count() const { return by_verdict_.top(SIZE_MAX); }
  std::vector<std::pair<std::string, uint64_t>> top_remotes(size_t n) const;
  std::vector<std::pair<std::string, uint64_t>> top_jails(size_t n) const;
  // Class storms' networks (/24, /64) by connections, from their lines' top_prefixes.
  std::vector<std::pair<std::string, uint64_t>> top_class_prefixes(size_t n) const { return by_class_prefix_.top(n); }
  // Class storms' peers alone (top_remotes() counts them among every line's remotes), from their lines' top_peers.
  std::vector<std::pair<std::string, uint64_t>> top_class_peers(size_t n) const { return by_class_peer_.top(n); }
  uint64_t class_storm_connections() const { return class_storm_connections_; }  // of lines with "peerless": true
  const std::string& first_seen() const { return first_; }  // RFC 3339, "" when no event
  const std::string& last_seen() const { return last_; }
  // Events per minute ("2026-11-25T02:13Z") and verdict, minutes in order.
  const std::map<std::string, std::map<std::string, uint64_t>>& timeline() const { return timeline_; }
  // Events per second (seconds since the epoch) and verdict, while the capture has at most
  // kSecondsKept distinct seconds (short captures get bars per second or per 10 s); else empty.
  const std::map<int64_t, std::map<std::string, uint64_t>>& per_second() const { return per_second_; }
  // Rules by "backend family table chain [handle N]: text" with the tool behind them, and remedy commands, by events.
  std::vector<std::pair<std::string, uint64_t>> top_rules(size_t n) const { return by_rule_.top(n); }
  std::vector<std::pair<std::string, uint64_t>> top_front_ends(size_t n) const { return by_front_end_.top(n); }
  std::vector<std::pair<std::string, uint64_t>> top_remedies(size_t n) const { return by_remedy_.top(n); }
  // Remedy commands by the verdict of their lines (at most 20 distinct commands each).
  const std::map<std::string, std::map<std::string, uint64_t>>& remedies_by_verdict() const { return remedies_by_verdict_; }
  // The latest event lines (by ts), newest last.
  std::vector<LineSummary> latest_lines() const;
  uint64_t lost() const { return lost_; }  // kernel events lost, from `lost` lines
  uint64_t malformed() const { return malformed_count_; }
  const std::vector<MalformedLine>& malformed_lines() const { return malformed_; }  // the first 20
  uint64_t truncated() const { return truncated_; }
  uint64_t runs() const { return summaries_; }  // `summary` lines: rsttrace runs that ended cleanly

  const std::map<std::string, HostCounts>& hosts() const { return hosts_; }
  uint64_t clock_steps_back() const { return clock_steps_back_; }  // later lines are measured from the step
  const std::vector<ClockStepBack>& clock_step_back_lines() const { return clock_step_back_lines_; }  // the first 20

  // A line skipped for a reason found before parsing (e.g. far too long).
  void malformed(const std::string& file, uint64_t number, std::string why);

 private:
  // The rule, front-end, jail and remedy of one line, and the line itself for the latest table.
  void add_provenance(const nlohmann::json& record, const std::string& verdict_key, uint64_t count, bool storm,
                      const std::string& ts, int64_t when_us, const std::string& verdict);

  uint64_t events_ = 0, storm_events_ = 0, lost_ = 0, malformed_count_ = 0, truncated_ = 0, summaries_ = 0;
  BoundedCounts by_verdict_{64, kOtherVerdicts}, by_remote_{100000, "(others)"}, by_jail_{100000, "(others)"};
  BoundedCounts by_class_prefix_{100000, "(others)"}, by_class_peer_{100000, "(others)"};
  uint64_t class_storm_connections_ = 0;
  std::string first_, last_;
  int64_t first_us_ = 0, last_us_ = 0;  // first_ and last_ as microseconds since the epoch
  std::map<std::string, std::map<std::string, uint64_t>> timeline_;
  std::vector<MalformedLine> malformed_;
  std::map<int64_t, std::map<std::string, uint64_t>> per_second_;
  bool seconds_overflowed_ = false;
  BoundedCounts by_rule_{10000, "(others)"}, by_front_end_{1000, "(others)"}, by_remedy_{10000, "(others)"};
  std::map<std::string, std::map<std::string, uint64_t>> remedies_by_verdict_;
  std::multimap<int64_t, LineSummary> latest_;  // by ts in microseconds, at most kLatestKept
  HostCounts& host_of(const nlohmann::json& record);
  void check_clock_order(const std::string& file, uint64_t number, const std::string& host, const std::string& ts,
                         int64_t when_us);
  std::map<std::string, HostCounts> hosts_;
  std::string order_file_, order_latest_;  // the file being read and its latest time so far
  int64_t order_latest_us_ = 0;
  uint64_t clock_steps_back_ = 0;
  std::vector<ClockStepBack> clock_step_back_lines_;
};


// The minute of an RFC 3339 UTC timestamp ("2026-11-25T02:13:08.939998Z" ->
// "2026-11-25T02:13Z"), or nullopt if it is not one.
std::optional<std::string> minute_of(const std::string& ts);

// An RFC 3339 UTC timestamp ("YYYY-MM-DDTHH:MM:SS[.fraction]Z", a real
// calendar date) as microseconds since the epoch, or nullopt.
std::optional<int64_t> timestamp_us(const std::string& ts);

// What the report says about time order: clock steps back, or that there were none.
std::vector<std::string> clock_order_notes(const Incident& incident);

std::string render_text(const Incident& incident, const std::vector<std::string>& files);
std::string render_html(const Incident& incident, const std::vector<std::string>& files);

}  // namespace rsttrace
