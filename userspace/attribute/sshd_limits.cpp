#include "attribute/sshd_limits.h"

#include <charconv>
#include <climits>

namespace rsttrace {
namespace {

// sshd keeps these in ints: anything larger is not sshd's.
constexpr uint64_t kMaxValue = INT_MAX;

std::optional<uint32_t> number(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || text.size() > 10) return std::nullopt;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > kMaxValue) return std::nullopt;
  return static_cast<uint32_t>(value);
}

// Seconds, "30" (10.0 prints ints) or "30.5" (a later sshd may print fractions).
std::optional<double> seconds(std::string_view text) {
  const size_t dot = text.find('.');
  const auto whole = number(text.substr(0, dot));
  if (!whole) return std::nullopt;
  if (dot == std::string_view::npos) return *whole;
  const std::string_view fraction = text.substr(dot + 1);
  const auto part = number(fraction);
  if (!part || fraction.size() > 6) return std::nullopt;
  double scale = 1;
  for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
  return *whole + *part / scale;
}

// "a:b:c" into exactly `count` numbers.
bool numbers(std::string_view text, size_t count, uint32_t* out) {
  for (size_t i = 0; i < count; ++i) {
    const size_t colon = i + 1 < count ? text.find(':') : text.size();
    if (colon == std::string_view::npos) return false;
    const auto value = number(text.substr(0, colon));
    if (!value) return false;
    out[i] = *value;
    text.remove_prefix(std::min(text.size(), colon + 1));
  }
  return true;
}

Failure bad(std::string_view key, std::string_view value) {
  // The value is cut: it is hostile text, quoted by whoever prints the reason.
  return Failure{"not sshd -T output: " + std::string(key) + " has " +
                 (value.empty() ? std::string("no value") : "the value \"" + std::string(value.substr(0, 40)) + "\"")};
}

Result<SourcePenalties> penalties(std::string_view value) {
  SourcePenalties out;
  out.refuseconnection.reset();
  bool crash = false, authfail = false, noauth = false, grace = false, max = false, min = false;
  while (!value.empty()) {
    const size_t space = value.find(' ');
    const std::string_view word = value.substr(0, space);
    value = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
    const size_t colon = word.find(':');
    if (colon == std::string_view::npos) return bad("persourcepenalties", word);
    const std::string_view name = word.substr(0, colon), setting = word.substr(colon + 1);
    if (name == "overflow" || name == "overflow6") {
      if (setting != "permissive" && setting != "deny-all") return bad("persourcepenalties", word);
      (name == "overflow" ? out.overflow : out.overflow6) = std::string(setting);
      continue;
    }
    if (name == "max-sources4" || name == "max-sources6") {
      const auto count = number(setting);
      if (!count) return bad("persourcepenalties", word);
      (name == "max-sources4" ? out.max_sources4 : out.max_sources6) = *count;
      continue;
    }
    const auto duration = seconds(setting);
    if (!duration) return bad("persourcepenalties", word);
    if (name == "crash") out.crash = *duration, crash = true;
    else if (name == "authfail") out.authfail = *duration, authfail = true;
    else if (name == "noauth") out.noauth = *duration, noauth = true;
    else if (name == "grace-exceeded") out.grace_exceeded = *duration, grace = true;
    else if (name == "refuseconnection") out.refuseconnection = *duration;
    else if (name == "max") out.max = *duration, max = true;
    else if (name == "min") out.min = *duration, min = true;
    // A class a later sshd adds is not one rsttrace tells: skipped.
  }
  if (!(crash && authfail && noauth && grace && max && min))
    return Failure{"not sshd -T output: persourcepenalties lacks one of crash, authfail, noauth, grace-exceeded, max, min"};
  return out;
}

}  // namespace

std::string SshdLimits::max_startups_text() const {
  return std::to_string(max_startups_start) + ":" + std::to_string(max_startups_rate) + ":" +
         std::to_string(max_startups_full);
}

std::string SshdLimitsSource::words() const {
  return from_sshd ? "sshd -T" : "defaults (sshd -T not run: " + not_run_reason + ")";
}

Result<SshdLimits> parse_sshd_limits(std::string_view text) {
  if (text.size() > kMaxSshdTestOutput)
    return Failure{"not sshd -T output: more than " + std::to_string(kMaxSshdTestOutput) + " bytes"};
  SshdLimits limits;
  limits.penalties.reset();
  limits.penalties_line = false;
  bool startups = false, netblock = false, grace = false, per_source = false, exempt = false;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t space = line.find(' ');
    const std::string_view key = line.substr(0, space);
    const std::string_view value = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    bool* seen = key == "maxstartups"                  ? &startups
                 : key == "persourcenetblocksize"      ? &netblock
                 : key == "logingracetime"             ? &grace
                 : key == "persourcemaxstartups"       ? &per_source
                 : key == "persourcepenaltyexemptlist" ? &exempt
                 : key == "persourcepenalties"         ? &limits.penalties_line
                                                       : nullptr;
    if (!seen) continue;  // every other setting
    if (*seen) return Failure{"not sshd -T output: " + std::string(key) + " printed twice"};
    *seen = true;
    if (key == "maxstartups") {
      uint32_t values[3];
      if (!numbers(value, 3, values) || values[1] == 0 || values[1] > 100 || values[0] > values[2])
        return bad(key, value);
      limits.max_startups_start = values[0], limits.max_startups_rate = values[1], limits.max_startups_full = values[2];
    } else if (key == "persourcenetblocksize") {
      uint32_t values[2];
      if (!numbers(value, 2, values) || values[0] > 32 || values[1] > 128) return bad(key, value);
      limits.netblock4 = values[0], limits.netblock6 = values[1];
    } else if (key == "logingracetime") {
      const auto value_seconds = number(value);
      if (!value_seconds) return bad(key, value);
      limits.login_grace_time = *value_seconds;
    } else if (key == "persourcemaxstartups") {
      if (value != "none") {
        const auto count = number(value);
        if (!count) return bad(key, value);
        limits.per_source_max_startups = *count;
      }
    } else if (key == "persourcepenaltyexemptlist") {
      if (value.empty() || value.size() > 1024) return bad(key, value);
      if (value != "none") limits.penalty_exempt_list = std::string(value);
    } else if (value != "no") {
      auto parsed = penalties(value);
      if (!parsed) return Failure{parsed.reason()};
      limits.penalties = std::move(*parsed);
    }
  }
  if (!startups || !netblock || !grace)
    return Failure{std::string("not sshd -T output: no ") +
                   (!startups ? "maxstartups" : !netblock ? "persourcenetblocksize" : "logingracetime") + " line"};
  return limits;
}

}  // namespace rsttrace
