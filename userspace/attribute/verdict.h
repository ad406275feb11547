// What a report concludes: the cause of a reset or drop. One table of names,
// the words printed in every output (JSON "verdict", text lines, metrics
// labels, summaries); parse_verdict() reads them back (capture files).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace rsttrace {

// In the order of their names: a map keyed by Verdict lists them as one keyed
// by name would (summaries and metrics pages keep their order).
enum class Verdict : uint8_t {
  Firewall,     // netfilter dropped or rejected its packets
  Kernel,       // the TCP stack reset or dropped it for a reason of its own
  NoListener,   // nothing listens on the port
  None,         // ordinary teardown, not a failure (--raw lines, storm classes)
  Peer,         // the other end reset or aborted it
  Sshd,         // sshd (or its child) closed it: MaxStartups, LoginGraceTime, ...
  TcpWrappers,  // libwrap refused the client (hosts.allow / hosts.deny)
  Unknown,      // no rule matched, or a process that is not sshd closed it
};

inline constexpr std::array<std::pair<Verdict, std::string_view>, 8> kVerdictNames{{
    {Verdict::Firewall, "firewall"},
    {Verdict::Kernel, "kernel"},
    {Verdict::NoListener, "no-listener"},
    {Verdict::None, "none"},
    {Verdict::Peer, "peer"},
    {Verdict::Sshd, "sshd"},
    {Verdict::TcpWrappers, "tcp-wrappers"},
    {Verdict::Unknown, "unknown"},
}};
inline constexpr size_t kVerdictCount = kVerdictNames.size();

constexpr bool verdicts_in_name_order() {
  for (size_t i = 0; i < kVerdictCount; ++i) {
    if (static_cast<size_t>(kVerdictNames[i].first) != i) return false;
    if (i > 0 && !(kVerdictNames[i - 1].second < kVerdictNames[i].second)) return false;
  }
  return true;
}
static_assert(verdicts_in_name_order(), "kVerdictNames: one entry per Verdict, in enum order, names ascending");

constexpr std::string_view verdict_name(Verdict verdict) {
  const auto index = static_cast<size_t>(verdict);
  return index < kVerdictCount ? kVerdictNames[index].second : "unknown";
}

// nullopt: not a name rsttrace prints (e.g. a capture file of another version).
constexpr std::optional<Verdict> parse_verdict(std::string_view name) {
  for (const auto& [value, known] : kVerdictNames)
    if (known == name) return value;
  return std::nullopt;
}

}  // namespace rsttrace
