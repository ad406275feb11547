// The direct event-line writer (output/format.cpp, output/json_writer.cpp)
// against a straightforward reference: the event built as an nlohmann DOM from
// inet_ntop / snprintf / gmtime renderings and dumped with json_line(), as the
// formatter did before it wrote lines directly. Byte for byte, on many varied
// events with hostile strings (control characters, quotes, backslashes,
// invalid UTF-8).
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "attribute/remedy.h"
#include <cstdio>
#include <ctime>
#include <random>

#include "output/format.h"
#include "output/json_writer.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

// The names docs/events.md gives, written out here: the table in
// attribute/verdict.h must print exactly these.
std::string ref_verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::TcpWrappers: return "tcp-wrappers";
    case Verdict::Firewall: return "firewall";
    case Verdict::Sshd: return "sshd";
    case Verdict::NoListener: return "no-listener";
    case Verdict::Kernel: return "kernel";
    case Verdict::Peer: return "peer";
    case Verdict::Unknown: return "unknown";
    case Verdict::None: return "none";
  }
  return "?";
}

// ---- the reference: no shortcuts ------------------------------------------

std::string ref_escape(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

std::string ref_address(int family, const std::array<uint8_t, 16>& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr.data(), text, sizeof(text))) return "?";
  return text;
}

std::string ref_endpoint(int family, const Endpoint& endpoint) {
  const std::string addr = ref_address(family, endpoint.addr);
  return family == 6 ? "[" + addr + "]:" + std::to_string(endpoint.port) : addr + ":" + std::to_string(endpoint.port);
}

std::string ref_ts(uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<unsigned>(unix_ns % 1'000'000'000 / 1000));
  return text;
}

std::string ref_flags(uint8_t flags) {
  static const char* const names[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::string out;
  for (int bit = 0; bit < 8; ++bit) {
    if (!(flags & (1u << bit))) continue;
    if (!out.empty()) out += '|';
    out += names[bit];
  }
  return out.empty() ? "none" : out;
}

std::optional<std::string> ref_reason(const KernelNames& names, const TcpEvent& e) {
  if (!e.reason) return std::nullopt;
  const EnumNames& table = e.kind == EventKind::Drop ? names.drop_reasons : names.reset_reasons;
  if (auto name = table.name(*e.reason)) return name;
  return "reason " + std::to_string(*e.reason);
}

std::optional<std::string> ref_state(const KernelNames& names, const TcpEvent& e) {
  if (!e.tcp_state) return std::nullopt;
  if (auto name = names.tcp_states.name(*e.tcp_state)) return name;
  return "state " + std::to_string(*e.tcp_state);
}

nlohmann::ordered_json or_null(const std::optional<std::string>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

std::string ref_event_line(const KernelNames& names, const WallClock& clock, const Attribution& report,
                           const std::string& host = "") {
  const TcpEvent& e = report.event;
  using J = nlohmann::ordered_json;
  J j;
  j["type"] = "event";
  j["ts"] = ref_ts(clock.unix_ns(e.monotonic_ns));
  j["host"] = host;
  j["kind"] = e.kind == EventKind::Drop ? "drop" : "reset";
  j["direction"] = e.kind == EventKind::ResetSent ? "sent" : e.kind == EventKind::ResetReceived ? "received" : "dropped";
  j["family"] = e.family;
  j["local_addr"] = ref_address(e.family, e.local.addr);
  j["local_port"] = e.local.port;
  j["remote_addr"] = ref_address(e.family, e.remote.addr);
  j["remote_port"] = e.remote.port;
  j["netns"] = e.netns;
  j["tcp_state"] = or_null(ref_state(names, e));
  j["kernel_reason"] = or_null(ref_reason(names, e));
  j["pid"] = e.owner ? J(e.owner->pid) : J(nullptr);
  j["comm"] = e.owner ? J(ref_escape(e.owner->comm)) : J(nullptr);
  j["verdict"] = ref_verdict_name(report.verdict);
  j["detail"] = report.detail;
  j["owner_source"] = std::string(owner_source_name(e.owner_source));
  j["context_pid"] = e.context.pid;
  j["context_comm"] = ref_escape(e.context.comm);
  j["packets"] = report.packets;
  j["tcp_flags"] = e.tcp_flags ? J(ref_flags(*e.tcp_flags)) : J(nullptr);
  j["peer_saw"] = or_null(report.peer_saw);
  j["netfilter_hook"] = or_null(report.netfilter_hook);
  if (e.netfilter && (e.netfilter->ct_status & (1u << 5)))
    j["original_dst"] = J{{"addr", ref_address(e.family, e.netfilter->ct_original_daddr)},
                          {"port", e.netfilter->ct_original_dport}};
  else
    j["original_dst"] = nullptr;
  const auto ref_rule = [](const std::optional<FirewallRule>& rule) {
    if (!rule) return J(nullptr);
    return J{{"backend", rule->backend},
             {"family", rule->family},
             {"table", ref_escape(rule->table)},
             {"chain", ref_escape(rule->chain)},
             {"handle", rule->handle ? J(*rule->handle) : J(nullptr)},
             {"text", ref_escape(rule->text)},
             {"verdict", rule->verdict},
             {"packets", rule->packets ? J(*rule->packets) : J(nullptr)},
             {"certain", rule->certain},
             {"undecided", rule->certain ? J(nullptr) : J(ref_escape(rule->undecided))},
             {"counter_moved", rule->counter_moved ? J(*rule->counter_moved) : J(nullptr)},
             {"set_element", rule->set_element ? J(ref_escape(*rule->set_element)) : J(nullptr)}};
  };
  j["rule"] = ref_rule(report.rule);
  j["fail2ban_jail"] = report.fail2ban_jail ? J(ref_escape(*report.fail2ban_jail)) : J(nullptr);
  if (const auto& b = report.blocker)
    j["blocker"] = J{{"tool", b->tool}, {"name", ref_escape(b->name)},
                     {"rule_number", b->rule_number ? J(*b->rule_number) : J(nullptr)},
                     {"permanent", b->permanent ? J(*b->permanent) : J(nullptr)}};
  else
    j["blocker"] = nullptr;
  if (report.wrapper_rule) {
    j["wrapper_rule"] = J{{"file", report.wrapper_rule->file},
                          {"line", report.wrapper_rule->line},
                          {"text", ref_escape(report.wrapper_rule->text)}};
  } else {
    j["wrapper_rule"] = nullptr;
  }
  if (const auto& w = report.written_by) {
    j["written_by"] = J{{"source", "observed"},
                        {"ts", ref_ts(clock.unix_ns(w->monotonic_ns))},
                        {"pid", w->process.pid},
                        {"comm", ref_escape(w->process.comm)},
                        {"parent_pid", w->parent.pid},
                        {"parent_comm", ref_escape(w->parent.comm)},
                        {"parent_thread", ref_escape(w->parent_thread)}};
  } else if (report.written_mtime_unix_ns) {
    j["written_by"] = J{{"source", "mtime"}, {"ts", ref_ts(*report.written_mtime_unix_ns)}};
  } else {
    j["written_by"] = nullptr;
  }
  j["remedy"] = remedy_commands(report);
  j["folded_drops"] = report.folded_drops;
  j["last_drop_ts"] = report.folded_drops ? J(ref_ts(clock.unix_ns(report.last_folded_ns))) : J(nullptr);
  if (const auto& drop = report.netfilter_reset_drop)
    j["netfilter_reset"] = J{{"netns", drop->netns},
                             {"hook", !drop->ingress ? "output" : drop->routed ? "input" : "prerouting"},
                             {"rule", ref_rule(report.reset_rule)}};
  else
    j["netfilter_reset"] = nullptr;
  if (e.full_socket) {
    j["bytes_received"] = e.bytes_received;
    j["bytes_acked"] = e.bytes_acked;
    j["unread_bytes"] = e.unread_bytes;
  }
  return json_line(j);
}

std::string ref_event_text(const KernelNames& names, const WallClock& clock, const Attribution& report) {
  const TcpEvent& e = report.event;
  std::string line = ref_ts(clock.unix_ns(e.monotonic_ns));
  line += ' ';
  line += kind_name(e.kind);
  line += ' ';
  line += direction_name(e.kind);
  line += ' ' + ref_endpoint(e.family, e.local) + " <> " + ref_endpoint(e.family, e.remote);
  line += " netns " + std::to_string(e.netns);
  if (auto state = ref_state(names, e)) line += " state " + *state;
  if (auto reason = ref_reason(names, e)) line += " reason " + *reason;
  if (e.owner) line += " owner " + ref_escape(e.owner->comm) + "[" + std::to_string(e.owner->pid) + "]";
  if (report.packets > 1) line += " packets " + std::to_string(report.packets);
  line.insert(line.find(' ') + 1, ref_verdict_name(report.verdict) + " ");
  if (!report.detail.empty()) line += ": " + report.detail;
  const auto remedy = remedy_commands(report);
  for (size_t i = 0; i < remedy.size(); ++i) line += (i == 0 ? "; fix: " : " ; ") + remedy[i];
  return line;
}

// ---- varied input ----------------------------------------------------------

KernelNames sample_names() {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NOT_SPECIFIED", 0}, {"SK_RST_REASON_NO_SOCKET", 1},
                                   {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11}, {"SK_RST_REASON_TCP_STATE", 14}});
  types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NO_SOCKET", 3}, {"SKB_DROP_REASON_NETFILTER_DROP", 12},
                                     {"SKB_DROP_REASON_QUEUE_PURGE", 104}});
  types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_CLOSE", 7}, {"TCP_LISTEN", 10}});
  return KernelNames::from_btf(types.get());
}

class Random {
 public:
  explicit Random(uint32_t seed) : engine_(seed) {}
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(engine_); }
  bool coin() { return below(2) == 0; }
  uint64_t u64() { return std::uniform_int_distribution<uint64_t>()(engine_); }

  // Bytes a hostile process name, peer or ruleset may hold.
  std::string hostile(size_t max_length) {
    static const std::string pieces[] = {"\"", "\\", "\n", "\r", "\t", "\b", "\f", std::string(1, '\0'), "\x01",
                                         "\x1b[31m", "\x7f", "\x80", "\xff", "\xc3\xa9", "\xe2\x82\xac", "\xc3",
                                         "\xed\xa0\x80", "}{", "sshd", " ", "/", "<script>", "\\u0000", "%s%n"};
    std::string out;
    const size_t length = below(max_length + 1);
    while (out.size() < length) {
      if (coin())
        out += static_cast<char>(below(256));
      else
        out += pieces[below(std::size(pieces))];
    }
    out.resize(length);
    return out;
  }

  // Exactly `length` ASCII bytes, many of them escaped in JSON (quotes, backslashes, control characters).
  std::string ascii_hostile(size_t length) {
    std::string out(length, ' ');
    for (char& c : out) c = coin() ? static_cast<char>(below(0x80)) : "\"\\\n\x01"[below(4)];
    return out;
  }

  std::array<uint8_t, 16> address(int family) {
    std::array<uint8_t, 16> addr{};
    if (family == 4) {
      for (int i = 0; i < 4; ++i) addr[i] = static_cast<uint8_t>(coin() ? below(256) : (coin() ? 0 : 255));
      return addr;
    }
    for (int word = 0; word < 8; ++word) {  // zero runs of every length and place, mapped forms
      const uint64_t pick = below(5);
      const unsigned value = pick < 2 ? 0 : pick == 2 ? 0xffff : pick == 3 ? static_cast<unsigned>(below(16)) : static_cast<unsigned>(below(65536));
      addr[2 * word] = static_cast<uint8_t>(value >> 8);
      addr[2 * word + 1] = static_cast<uint8_t>(value);
    }
    return addr;
  }

 private:
  std::mt19937_64 engine_;
};

Attribution random_report(Random& r) {
  TcpEvent e;
  e.kind = static_cast<EventKind>(r.below(3));
  e.monotonic_ns = r.below(4'000'000'000'000'000'000ULL);
  e.family = r.coin() ? 4 : 6;
  e.local = Endpoint{r.address(e.family), static_cast<uint16_t>(r.below(65536))};
  e.remote = Endpoint{r.address(e.family), static_cast<uint16_t>(r.below(65536))};
  e.netns = static_cast<uint32_t>(r.u64());
  if (r.coin()) e.tcp_state = static_cast<uint8_t>(r.coin() ? r.below(13) : r.below(256));
  if (r.coin()) e.reason = static_cast<uint32_t>(r.coin() ? r.below(16) : r.u64());
  if (r.coin()) e.owner = Process{static_cast<uint32_t>(r.u64()), r.hostile(16)};
  e.owner_source = static_cast<OwnerSource>(r.below(6));
  e.context = Process{r.coin() ? 0u : static_cast<uint32_t>(r.u64()), r.hostile(16)};
  e.full_socket = r.coin();
  e.bytes_received = r.coin() ? r.u64() : r.below(100);
  e.bytes_acked = r.u64();
  e.unread_bytes = static_cast<uint32_t>(r.u64());
  if (r.coin()) e.tcp_flags = static_cast<uint8_t>(r.below(256));

  static const Verdict verdicts[] = {Verdict::TcpWrappers, Verdict::Firewall, Verdict::Sshd, Verdict::NoListener,
                                     Verdict::Kernel,      Verdict::Peer,     Verdict::Unknown, Verdict::None};
  // Lengths around the writer's buffer (2048 bytes) and its limits for
  // escaping in place (341 and 409 bytes), and far beyond.
  static const size_t long_lengths[] = {300, 340, 341, 342, 408, 409, 410, 2040, 5000};
  const size_t detail_length = r.below(4) == 0 ? long_lengths[r.below(std::size(long_lengths))] : 300;
  Attribution report{e, verdicts[r.below(8)],
                r.coin() ? "the peer " + ref_escape(r.hostile(60)) + " sent a reset" : r.hostile(detail_length)};
  if (r.below(8) == 0) report.detail = std::string(detail_length, 'a');  // plain ASCII of exactly that length
  else if (r.below(8) == 0) report.detail = r.ascii_hostile(detail_length);
  report.packets = static_cast<uint32_t>(r.coin() ? 1 : r.u64());
  if (r.coin()) report.peer_saw = r.coin() ? "reset" : "silence";
  if (r.coin()) report.netfilter_hook = r.coin() ? "input" : r.hostile(8);
  if (r.coin()) {
    FirewallRule rule;
    rule.backend = r.coin() ? "nftables" : r.hostile(10);
    rule.family = "inet";
    rule.table = r.hostile(20);
    rule.chain = r.hostile(20);
    if (r.coin()) rule.handle = r.u64();
    rule.text = r.hostile(r.below(4) == 0 ? long_lengths[r.below(std::size(long_lengths))] : 120);
    rule.verdict = r.coin() ? "drop" : "policy drop";
    if (r.coin()) rule.packets = r.u64();
    rule.certain = r.coin();
    rule.undecided = r.hostile(40);
    if (r.coin()) rule.counter_moved = r.coin();
    if (r.coin()) rule.set_element = r.hostile(20);
    report.rule = rule;
    if (r.coin()) {  // issue 16: the reset netfilter built for a client end, with the same rule or none
      TcpEvent drop = e;
      drop.ingress = r.coin();
      drop.routed = r.coin();
      report.netfilter_reset_drop = drop;
      if (r.coin()) report.reset_rule = rule;
    }
  }
  if (r.coin()) {
    report.folded_drops = static_cast<uint32_t>(r.u64());
    report.last_folded_ns = r.below(4'000'000'000'000'000'000ULL);
  }
  if (r.coin()) report.fail2ban_jail = r.hostile(20);
  if (r.coin())
    report.blocker = Blocker{r.coin() ? "ufw" : "fail2ban", r.hostile(20), r.coin() ? std::optional<uint64_t>(r.u64()) : std::nullopt};
  if (r.coin()) {
    NetfilterEvidence evidence;
    evidence.ct_status = r.coin() ? 1u << 5 : 0;
    evidence.ct_original_dport = static_cast<uint16_t>(r.u64());
    for (auto& byte : evidence.ct_original_daddr) byte = static_cast<uint8_t>(r.u64());
    report.event.netfilter = evidence;
  }
  if (r.coin())
    report.wrapper_rule = WrapperRule{r.coin() ? "/etc/hosts.deny" : r.hostile(20), static_cast<int>(r.below(100000)) + 1, 0,
                                      r.hostile(r.below(4) == 0 ? 1000 : 80)};
  if (r.coin()) {
    WrapperOpen w;
    w.monotonic_ns = r.below(4'000'000'000'000'000'000ULL);
    w.process = Process{static_cast<uint32_t>(r.u64()), r.hostile(16)};
    w.parent = Process{static_cast<uint32_t>(r.u64()), r.hostile(16)};
    w.parent_thread = r.hostile(16);
    report.written_by = w;
  } else if (r.coin()) {
    report.written_mtime_unix_ns = r.below(4'000'000'000'000'000'000ULL);
  }
  return report;
}

}  // namespace

TEST_CASE("the direct event line is byte for byte the DOM's dump, on varied and hostile events", "[format]") {
  const KernelNames names = sample_names();
  Random r(20261125);
  for (int i = 0; i < 5000; ++i) {
    // Host labels are printable ASCII (cli/options.h), quotes and backslashes included.
    const Formatter formatter{names, WallClock{static_cast<int64_t>(r.below(2'000'000'000'000'000'000ULL))},
                              r.coin() ? "web-01.example" : "a\"b\\c"};
    const Attribution report = random_report(r);
    const std::string expected = ref_event_line(names, formatter.clock, report, formatter.host);
    REQUIRE(formatter.event_line(report) == expected);
    std::string appended = "prefix";
    formatter.append_event_line(appended, report);
    REQUIRE(appended == "prefix" + expected);
    REQUIRE(formatter.event_text(report) == ref_event_text(names, formatter.clock, report));
  }
}

TEST_CASE("addresses are formatted exactly as inet_ntop does", "[format]") {
  // IPv6: every word 0, 1, 0xffff or 0xabcd: zero runs of each length and place, ::a.b.c.d and ::ffff:a.b.c.d.
  static constexpr unsigned values[] = {0, 1, 0xffff, 0xabcd};
  for (unsigned pattern = 0; pattern < (1u << 16); ++pattern) {
    std::array<uint8_t, 16> addr{};
    for (int word = 0; word < 8; ++word) {
      const unsigned value = values[(pattern >> (2 * word)) & 3];
      addr[2 * word] = static_cast<uint8_t>(value >> 8);
      addr[2 * word + 1] = static_cast<uint8_t>(value);
    }
    REQUIRE(format_address(6, addr) == ref_address(6, addr));
    REQUIRE(format_endpoint(6, Endpoint{addr, static_cast<uint16_t>(pattern)}) ==
            ref_endpoint(6, Endpoint{addr, static_cast<uint16_t>(pattern)}));
  }
  Random r(7);
  for (int i = 0; i < 20000; ++i) {
    const int family = r.coin() ? 4 : 6;
    const std::array<uint8_t, 16> addr = r.address(family);
    REQUIRE(format_address(family, addr) == ref_address(family, addr));
  }
  std::array<uint8_t, 16> v4{};
  for (unsigned octet = 0; octet < 256; ++octet) {
    v4 = {static_cast<uint8_t>(octet), 0, static_cast<uint8_t>(255 - octet), 9};
    REQUIRE(format_endpoint(4, Endpoint{v4, 65535}) == ref_endpoint(4, Endpoint{v4, 65535}));
  }
}

TEST_CASE("untrusted strings: escaped once, JSON-escaped in the same pass", "[format]") {
  for (unsigned c = 0; c < 256; ++c) {
    const std::string byte(1, static_cast<char>(c));
    REQUIRE(escape_untrusted(byte) == ref_escape(byte));
    std::string direct, twice;
    append_json_untrusted(direct, byte);
    append_json_string(twice, ref_escape(byte));
    REQUIRE(direct == twice);
  }
  Random r(11);
  for (int i = 0; i < 20000; ++i) {
    const std::string raw = r.hostile(40);
    REQUIRE(escape_untrusted(raw) == ref_escape(raw));
    std::string direct, twice;
    append_json_untrusted(direct, raw);
    append_json_string(twice, ref_escape(raw));
    REQUIRE(direct == twice);
    // Any bytes, any length (the 8-byte steps and their tails): as nlohmann dumps them.
    std::string mine = "x";
    append_json_string(mine, raw);
    std::string expected = "x";  // (not "x" + dump(): GCC 12 warns falsely on it)
    expected += nlohmann::json(raw).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    REQUIRE(mine == expected);
  }
}

TEST_CASE("timestamps and flags as the reference renders them", "[format]") {
  Random r(3);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t ns = i % 2 ? r.below(4'000'000'000'000'000'000ULL) : 1'795'000'000'000'000'000ULL + r.below(3'000'000'000ULL);
    REQUIRE(format_rfc3339_micro(ns) == ref_ts(ns));
  }
  for (unsigned flags = 0; flags < 256; ++flags) REQUIRE(format_tcp_flags(static_cast<uint8_t>(flags)) == ref_flags(static_cast<uint8_t>(flags)));
}
