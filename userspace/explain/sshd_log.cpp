#include "explain/sshd_log.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace rsttrace::explain {
namespace {

constexpr size_t kMaxLineBytes = 8192;  // sshd's own cap is 1024 (MSGBUFSIZ); more is not its line

bool take(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// Up to `max_digits` decimal digits.
std::optional<uint64_t> take_number(std::string_view& text, size_t max_digits = 10) {
  uint64_t value = 0;
  size_t digits = 0;
  while (digits < text.size() && digits < max_digits && text[digits] >= '0' && text[digits] <= '9')
    value = value * 10 + static_cast<uint64_t>(text[digits++] - '0');
  if (digits == 0) return std::nullopt;
  text.remove_prefix(digits);
  return value;
}

std::string_view take_until(std::string_view& text, char end) {
  const size_t at = text.find(end);
  const std::string_view head = text.substr(0, at);
  text.remove_prefix(at == std::string_view::npos ? text.size() : at);
  return head;
}

// An address as sshd prints it (inet_ntop), into network order.
bool parse_address(std::string_view text, int& family, std::array<uint8_t, 16>& addr) {
  if (text.empty() || text.size() > 45) return false;
  const std::string copy(text);
  addr = {};
  if (inet_pton(AF_INET, copy.c_str(), addr.data()) == 1) return family = 4, true;
  if (inet_pton(AF_INET6, copy.c_str(), addr.data()) == 1) return family = 6, true;
  return false;
}

// "192.0.2.0/24" (addr_masklen_ntop).
bool parse_netblock(std::string_view text, PenaltyEvent& event) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || !parse_address(text.substr(0, slash), event.family, event.addr)) return false;
  std::string_view bits = text.substr(slash + 1);
  const auto value = take_number(bits, 3);
  if (!value || !bits.empty() || *value > (event.family == 4 ? 32u : 128u)) return false;
  event.prefix_bits = static_cast<int>(*value);
  return true;
}

// srclimit_penalise's reasons, as PerSourcePenalties names their classes.
std::optional<std::string> penalty_class(std::string_view reason) {
  if (!take(reason, "penalty: ")) return std::nullopt;
  if (reason == "connections without attempting authentication") return "noauth";
  if (reason == "failed authentication") return "authfail";
  if (reason == "caused crash") return "crash";
  if (reason == "exceeded LoginGraceTime") return "grace-exceeded";
  if (reason == "connection prohibited by RefuseConnection") return "refuseconnection";
  return std::nullopt;
}

// "penalty of N seconds for penalty: REASON"
bool parse_penalty_tail(std::string_view text, PenaltyEvent& event) {
  if (!take(text, "penalty of ")) return false;
  const auto seconds = take_number(text);
  if (!seconds || *seconds > UINT32_MAX || !take(text, " seconds for ")) return false;
  const auto klass = penalty_class(text);
  if (!klass) return false;
  event.seconds = static_cast<uint32_t>(*seconds);
  event.penalty_class = *klass;
  return true;
}

std::optional<PenaltyEvent> parse_message(std::string_view message) {
  PenaltyEvent event;
  take(message, "srclimit_penalise: ");  // verbose_f names its function
  if (take(message, "ipv4: new ") || take(message, "ipv6: new ")) {
    const std::string_view netblock = take_until(message, ' ');
    if (!parse_netblock(netblock, event)) return std::nullopt;
    if (take(message, " active ")) event.active = true;
    else if (take(message, " deferred ")) event.active = false;
    else return std::nullopt;
    if (!parse_penalty_tail(message, event)) return std::nullopt;
    return event;
  }
  if (take(message, "drop connection #")) {
    if (!take_number(message) || !take(message, " from [")) return std::nullopt;
    if (!parse_address(take_until(message, ']'), event.family, event.addr)) return std::nullopt;
    if (!take(message, "]:") || !take_number(message, 5) || !take(message, " on [")) return std::nullopt;
    take_until(message, ']');
    if (!take(message, "]:") || !take_number(message, 5) || !take(message, " ")) return std::nullopt;
    event.prefix_bits = event.family == 4 ? 32 : 128;
    if (message == "too many penalised addresses") {
      event.kind = PenaltyEvent::Kind::RefusedTableFull;
      return event;
    }
    const auto klass = penalty_class(message);
    if (!klass) return std::nullopt;  // MaxStartups ("past Maxstartups", "Maxstartups")
    event.kind = PenaltyEvent::Kind::Refused;
    event.penalty_class = *klass;
    return event;
  }
  // "192.0.2.0/24: activating ipv4 penalty of 40 seconds for penalty: ..."
  const std::string_view netblock = take_until(message, ':');
  if (!parse_netblock(netblock, event)) return std::nullopt;
  if (!take(message, ": activating ipv4 ") && !take(message, ": activating ipv6 ")) return std::nullopt;
  if (!parse_penalty_tail(message, event)) return std::nullopt;
  return event;
}

int two_digits(std::string_view text, size_t at) {
  if (at + 2 > text.size() || text[at] < '0' || text[at] > '9' || text[at + 1] < '0' || text[at + 1] > '9') return -1;
  return (text[at] - '0') * 10 + (text[at + 1] - '0');
}

// "2026-11-30T19:57:40.123456+00:00 " (RFC 3339): unix seconds, and the line after it.
std::optional<int64_t> take_rfc3339(std::string_view& line) {
  if (line.size() < 21 || line[4] != '-' || line[7] != '-' || line[10] != 'T' || line[13] != ':' || line[16] != ':')
    return std::nullopt;
  std::string_view year_text = line.substr(0, 4);
  const auto year = take_number(year_text, 4);
  const int month = two_digits(line, 5), day = two_digits(line, 8), hour = two_digits(line, 11),
            minute = two_digits(line, 14), second = two_digits(line, 17);
  if (!year || !year_text.empty() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60 || hour < 0 || minute < 0 || second < 0)
    return std::nullopt;
  size_t at = 19;
  if (at < line.size() && line[at] == '.') {
    ++at;
    while (at < line.size() && at < 40 && line[at] >= '0' && line[at] <= '9') ++at;
  }
  int64_t offset = 0;
  if (at < line.size() && line[at] == 'Z') {
    ++at;
  } else if (at + 6 <= line.size() && (line[at] == '+' || line[at] == '-') && line[at + 3] == ':') {
    const int oh = two_digits(line, at + 1), om = two_digits(line, at + 4);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return std::nullopt;
    offset = (line[at] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at >= line.size() || line[at] != ' ') return std::nullopt;
  std::tm tm{};
  tm.tm_year = static_cast<int>(*year) - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  line.remove_prefix(at + 1);
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

// "Nov 30 19:57:40 " (BSD syslog, local time, no year).
std::optional<int64_t> take_bsd_time(std::string_view& line, int year) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (line.size() < 16 || line[3] != ' ' || line[6] != ' ' || line[9] != ':' || line[12] != ':' || line[15] != ' ')
    return std::nullopt;
  int month = -1;
  for (int m = 0; m < 12; ++m)
    if (line.substr(0, 3) == kMonths[m]) month = m;
  // "Nov  3": a space-padded day.
  const int day_value = line[4] == ' ' ? (line[5] >= '1' && line[5] <= '9' ? line[5] - '0' : -1) : two_digits(line, 4);
  const int hour = two_digits(line, 7), minute = two_digits(line, 10), second = two_digits(line, 13);
  if (month < 0 || day_value < 1 || day_value > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
      second > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day_value;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  tm.tm_isdst = -1;
  line.remove_prefix(16);
  return static_cast<int64_t>(mktime(&tm));
}

bool same_block(int family, const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  const int total = family == 4 ? 32 : 128;
  bits = std::clamp(bits, 0, total);
  const int whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[static_cast<size_t>(whole)] & mask) == (b[static_cast<size_t>(whole)] & mask);
}

std::string block_text(const PenaltyEvent& event) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(event.family == 4 ? AF_INET : AF_INET6, event.addr.data(), text, sizeof(text));
  const bool whole = event.prefix_bits == (event.family == 4 ? 32 : 128);
  return std::string(text) + (event.kind == PenaltyEvent::Kind::Penalised || !whole ? "/" + std::to_string(event.prefix_bits) : "");
}

std::string when_text(const PenaltyEvent& event, const PenaltyClock& clock) {
  if (event.time) return std::to_string(std::max<int64_t>(clock.now - *event.time, 0)) + " s ago";
  return "at a time the log does not give, between the listener's start " +
         std::to_string(std::max<int64_t>(clock.now - clock.listener_start, 0)) + " s ago and the log's last write " +
         std::to_string(std::max<int64_t>(clock.now - clock.log_mtime, 0)) + " s ago";
}

}  // namespace

Result<SshdLog> parse_sshd_log(std::string_view text, uint32_t listener_pid, int year) {
  if (text.size() > kMaxLogBytes)
    return Failure{"the log text is " + std::to_string(text.size()) + " bytes, over " + std::to_string(kMaxLogBytes)};
  SshdLog log;
  while (!text.empty()) {
    std::string_view line = take_until(text, '\n');
    if (!text.empty()) text.remove_prefix(1);
    if (++log.lines > kMaxLogLines) return Failure{"the log has over " + std::to_string(kMaxLogLines) + " lines"};
    if (line.size() > kMaxLineBytes) {
      ++log.skipped;
      continue;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    std::optional<int64_t> time = take_rfc3339(line);
    if (!time) time = take_bsd_time(line, year);
    if (time) {
      // "host tag[pid]: message"
      take_until(line, ' ');
      if (!take(line, " ")) continue;
      const std::string_view tag = take_until(line, ':');
      if (!take(line, ": ")) continue;
      const size_t open = tag.find('[');
      const std::string_view name = tag.substr(0, open);
      std::string_view pid_text = open == std::string_view::npos ? std::string_view() : tag.substr(open + 1);
      const auto pid = take_number(pid_text);
      if (!name.starts_with("sshd") || (listener_pid && (!pid || *pid != listener_pid || pid_text != "]"))) {
        ++log.skipped;
        continue;
      }
    } else {
      take(line, "sshd: ");  // -e with a program name (log_on_stderr > 1)
    }
    if (auto event = parse_message(line)) {
      event->time = time;
      log.events.push_back(std::move(*event));
    }
  }
  return log;
}

PenaltyVerdict judge_penalty(const SshdLog& log, int family, const std::array<uint8_t, 16>& addr, const PenaltyClock& clock) {
  PenaltyVerdict verdict;
  int block_bits = family == 4 ? 32 : 128;  // PerSourceNetBlockSize's default, until a penalty line shows its size
  for (const PenaltyEvent& e : log.events)
    if (e.kind == PenaltyEvent::Kind::Penalised && e.family == family) block_bits = e.prefix_bits;
  const PenaltyEvent* expiring = nullptr;  // the penalty known to last longest
  int64_t expiry = 0;
  const PenaltyEvent* refused = nullptr;  // the latest refusal
  const PenaltyEvent* seen = nullptr;
  for (const PenaltyEvent& e : log.events) {
    if (e.family != family) continue;
    if (e.time && *e.time + 1 < clock.listener_start) continue;  // an earlier sshd's: its memory is gone
    const bool matches = e.kind == PenaltyEvent::Kind::RefusedTableFull ||
                         same_block(family, e.addr, addr, e.kind == PenaltyEvent::Kind::Penalised ? e.prefix_bits : block_bits);
    if (!matches) continue;
    seen = &e;
    const int64_t written = e.time ? *e.time : clock.listener_start;  // the earliest it can have been written
    if (e.kind == PenaltyEvent::Kind::Penalised) {
      if (e.active && written + e.seconds >= expiry) expiring = &e, expiry = written + e.seconds;
    } else {
      refused = &e;
    }
  }
  if (!seen) return verdict;
  if (expiring && expiry > clock.now) {
    verdict.state = PenaltyVerdict::State::Active;
    verdict.penalty_class = expiring->penalty_class;
    verdict.seconds_left = expiry - clock.now;
    verdict.evidence = "sshd penalised " + block_text(*expiring) + " for " + std::to_string(expiring->seconds) +
                       " s (" + expiring->penalty_class + ") " + when_text(*expiring, clock);
    return verdict;
  }
  // A refusal after every penalty known to have ended: a penalty whose length was not logged (LogLevel INFO).
  const int64_t refused_latest = refused ? (refused->time ? *refused->time : clock.log_mtime) : 0;
  const int64_t refused_earliest = refused ? (refused->time ? *refused->time : clock.listener_start) : 0;
  if (refused && refused_earliest >= expiry && refused_latest + clock.max_seconds > clock.now) {
    verdict.state = PenaltyVerdict::State::Active;
    verdict.penalty_class = refused->kind == PenaltyEvent::Kind::RefusedTableFull ? "max-sources" : refused->penalty_class;
    verdict.evidence = "sshd refused " + block_text(*refused) + " for PerSourcePenalties (" +
                       (refused->kind == PenaltyEvent::Kind::RefusedTableFull ? std::string("too many penalised addresses")
                                                                              : refused->penalty_class) +
                       ") " + when_text(*refused, clock) + "; the penalty's length is not logged at LogLevel INFO (at most " +
                       std::to_string(clock.max_seconds) + " s, PerSourcePenalties max's default)";
    return verdict;
  }
  verdict.state = PenaltyVerdict::State::Expired;
  const PenaltyEvent& last = expiring ? *expiring : *seen;
  verdict.penalty_class = last.penalty_class;
  verdict.evidence = "the last penalty evidence for " + block_text(last) + " (" +
                     (last.penalty_class.empty() ? std::string("too many penalised addresses") : last.penalty_class) +
                     ", " + when_text(last, clock) + ") has run out";
  return verdict;
}

}  // namespace rsttrace::explain
