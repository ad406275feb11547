// sshd's PerSourcePenalties lines (OpenSSH 9.8 and 10.0 formats, bare and
// behind syslog prefixes), the judgement "is a penalty active now", the
// sock_diag dump of listeners, and what explain makes of both.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "explain/sockets.h"
#include "explain/sshd_log.h"
#include "explain/walk.h"

using namespace rsttrace;
using namespace rsttrace::explain;

namespace {

std::array<uint8_t, 16> v4(const char* text) {
  std::array<uint8_t, 16> addr{};
  inet_pton(AF_INET, text, addr.data());
  return addr;
}

constexpr const char* kNoauth = "penalty: connections without attempting authentication";

// 2026-11-30T12:00:00Z
constexpr int64_t kNoon = 1796040000;

}  // namespace

TEST_CASE("sshd log: OpenSSH 10.0's bare lines (sshd -e) at LogLevel VERBOSE", "[sshd-log]") {
  const std::string text = std::string("Server listening on 0.0.0.0 port 22.\r\n") +
                           "Connection closed by 192.0.2.7 port 40101\r\n" +
                           "srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 30 seconds for " + kNoauth + "\r\n" +
                           "drop connection #0 from [192.0.2.7]:40102 on [192.0.2.1]:22 " + kNoauth + "\r\n";
  const auto log = parse_sshd_log(text, 812, 2026);
  REQUIRE(log);
  CHECK(log->lines == 4);
  REQUIRE(log->events.size() == 2);
  CHECK(log->events[0].kind == PenaltyEvent::Kind::Penalised);
  CHECK(log->events[0].seconds == 30);
  CHECK(log->events[0].prefix_bits == 32);
  CHECK(log->events[0].penalty_class == "noauth");
  CHECK_FALSE(log->events[0].time);
  CHECK(log->events[1].kind == PenaltyEvent::Kind::Refused);
  CHECK(log->events[1].addr == v4("192.0.2.7"));

  // Without times: written between the listener's start and the log's last write.
  const PenaltyClock clock{.now = kNoon + 10, .listener_start = kNoon, .log_mtime = kNoon + 8};
  const auto active = judge_penalty(*log, 4, v4("192.0.2.7"), clock);
  CHECK(active.state == PenaltyVerdict::State::Active);
  CHECK(active.penalty_class == "noauth");
  REQUIRE(active.seconds_left);
  CHECK(*active.seconds_left == 20);  // at least: from the start, 30 s
  CHECK_THAT(active.evidence, Catch::Contains("sshd penalised 192.0.2.7/32 for 30 s (noauth)"));
  CHECK(judge_penalty(*log, 4, v4("192.0.2.8"), clock).state == PenaltyVerdict::State::None);
  // Long after: the penalty has run out (the refusal is within it: explained by it).
  const PenaltyClock later{.now = kNoon + 4000, .listener_start = kNoon, .log_mtime = kNoon + 8};
  CHECK(judge_penalty(*log, 4, v4("192.0.2.7"), later).state == PenaltyVerdict::State::Expired);
}

TEST_CASE("sshd log: rsyslog's RFC 3339 lines of OpenSSH 9.8, the listener's pid only", "[sshd-log]") {
  const std::string text =
      std::string("2026-11-30T12:00:00.123456+00:00 host sshd[812]: srclimit_penalise: ipv4: new 192.0.2.0/24 active "
                  "penalty of 90 seconds for penalty: caused crash\n") +
      // Another sshd (or a forger with logger -t) writing about the same address: not the listener's memory.
      "2026-11-30T12:00:01+00:00 host sshd[999]: srclimit_penalise: ipv4: new 192.0.2.0/24 active penalty of 600 "
      "seconds for penalty: failed authentication\n" +
      "2026-11-30T13:00:05+01:00 host sshd[812]: srclimit_penalise: 192.0.2.0/24: activating ipv4 penalty of 100 "
      "seconds for penalty: exceeded LoginGraceTime\n" +
      "2026-11-30T12:00:06+00:00 host sshd-session[900]: Connection closed by 192.0.2.7 port 1 [preauth]\n";
  const auto log = parse_sshd_log(text, 812, 2026);
  REQUIRE(log);
  REQUIRE(log->events.size() == 2);
  CHECK(log->skipped == 2);
  CHECK(*log->events[0].time == kNoon);
  CHECK(*log->events[1].time == kNoon + 5);  // +01:00
  CHECK(log->events[1].penalty_class == "grace-exceeded");
  // The netblock (PerSourceNetBlockSize 24) holds every address in it.
  const PenaltyClock clock{.now = kNoon + 50, .listener_start = kNoon - 100, .log_mtime = kNoon + 6};
  const auto verdict = judge_penalty(*log, 4, v4("192.0.2.99"), clock);
  CHECK(verdict.state == PenaltyVerdict::State::Active);
  CHECK(verdict.penalty_class == "grace-exceeded");
  CHECK(*verdict.seconds_left == 55);
  CHECK(judge_penalty(*log, 4, v4("192.0.3.1"), clock).state == PenaltyVerdict::State::None);
  // An sshd started after these lines remembers none of them.
  const PenaltyClock restarted{.now = kNoon + 50, .listener_start = kNoon + 20, .log_mtime = kNoon + 6};
  CHECK(judge_penalty(*log, 4, v4("192.0.2.99"), restarted).state == PenaltyVerdict::State::None);
}

TEST_CASE("sshd log: LogLevel INFO logs only the refusal, in BSD syslog lines", "[sshd-log]") {
  const std::string text =
      std::string("Nov 30 12:00:00 host sshd[812]: drop connection #2 from [2001:db8::7]:40102 on [2001:db8::1]:22 ") +
      kNoauth + "\n" + "Nov  3 12:00:00 host sshd[812]: drop connection #2 from [192.0.2.9]:1 on [192.0.2.1]:22 past Maxstartups\n";
  const auto log = parse_sshd_log(text, 812, 2026);
  REQUIRE(log);
  REQUIRE(log->events.size() == 1);  // MaxStartups is not a penalty
  const auto& refusal = log->events[0];
  CHECK(refusal.family == 6);
  REQUIRE(refusal.time);
  std::array<uint8_t, 16> client{};
  inet_pton(AF_INET6, "2001:db8::7", client.data());
  const PenaltyClock soon{.now = *refusal.time + 30, .listener_start = *refusal.time - 600, .log_mtime = *refusal.time};
  const auto active = judge_penalty(*log, 6, client, soon);
  CHECK(active.state == PenaltyVerdict::State::Active);
  CHECK_FALSE(active.seconds_left);  // INFO does not log its length
  CHECK_THAT(active.evidence, Catch::Contains("not logged at LogLevel INFO"));
  const PenaltyClock late{.now = *refusal.time + 601, .listener_start = *refusal.time - 600, .log_mtime = *refusal.time};
  CHECK(judge_penalty(*log, 6, client, late).state == PenaltyVerdict::State::Expired);
}

TEST_CASE("sshd log: deferred penalties, a full table, and lines that are not sshd's", "[sshd-log]") {
  const std::string text =
      std::string("srclimit_penalise: ipv4: new 192.0.2.7/32 deferred penalty of 1 seconds for ") + kNoauth + "\n" +
      "drop connection #0 from [198.51.100.1]:5 on [192.0.2.1]:22 too many penalised addresses\n" +
      "srclimit_penalise: ipv4: new 192.0.2.7/33 active penalty of 30 seconds for " + kNoauth + "\n" +
      "srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 30 seconds for penalty: made up\n" +
      "drop connection #0 from [not-an-address]:5 on [192.0.2.1]:22 " + kNoauth + "\n" +
      "drop connection #0 from [192.0.2.7]:99999999 on [192.0.2.1]:22 " + kNoauth + "\n" +
      "2026-11-30T12:00:00Z host sshd[812] drop connection #0 from [192.0.2.7]:1 on [192.0.2.1]:22 " + kNoauth + "\n" +
      std::string(9000, 'x') + "\n";
  const auto log = parse_sshd_log(text, 812, 2026);
  REQUIRE(log);
  REQUIRE(log->events.size() == 2);
  CHECK_FALSE(log->events[0].active);
  CHECK(log->events[1].kind == PenaltyEvent::Kind::RefusedTableFull);
  CHECK(log->skipped == 1);  // the long line
  const PenaltyClock clock{.now = kNoon + 5, .listener_start = kNoon, .log_mtime = kNoon + 4};
  // The table-full refusal holds every IPv4 source (PerSourcePenaltyExemptList aside).
  const auto verdict = judge_penalty(*log, 4, v4("192.0.2.7"), clock);
  CHECK(verdict.state == PenaltyVerdict::State::Active);
  CHECK(verdict.penalty_class == "max-sources");
  // Limits: a Failure, not a parse of part of it.
  CHECK_FALSE(parse_sshd_log(std::string(kMaxLogBytes + 1, '\n'), 0, 2026));
  const auto many = parse_sshd_log(std::string(kMaxLogLines + 1, '\n'), 0, 2026);
  REQUIRE_FALSE(many);
  CHECK_THAT(many.reason(), Catch::Contains("lines"));
}

namespace {

std::vector<char> diag_dump(uint32_t rqueue, uint32_t wqueue, bool done) {
  std::vector<char> out;
  auto append = [&out](uint16_t type, const void* payload, size_t size) {
    nlmsghdr header{};
    header.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(size));
    header.nlmsg_type = type;
    header.nlmsg_seq = 1;
    const size_t at = out.size();
    out.resize(at + NLMSG_ALIGN(header.nlmsg_len));
    std::memcpy(out.data() + at, &header, sizeof(header));
    if (size) std::memcpy(out.data() + at + NLMSG_HDRLEN, payload, size);
  };
  inet_diag_msg message{};
  message.idiag_family = AF_INET;
  message.idiag_state = 10;
  message.id.idiag_sport = htons(22);
  inet_pton(AF_INET, "127.0.0.1", message.id.idiag_src);
  message.idiag_rqueue = rqueue;
  message.idiag_wqueue = wqueue;
  message.idiag_inode = 4242;
  append(SOCK_DIAG_BY_FAMILY, &message, sizeof(message));
  message.idiag_state = 1;  // ESTABLISHED: not a listener
  append(SOCK_DIAG_BY_FAMILY, &message, sizeof(message));
  if (done) {
    const int zero = 0;
    append(NLMSG_DONE, &zero, sizeof(zero));
  }
  return out;
}

}  // namespace

TEST_CASE("sock_diag: listeners with their accept queue and backlog", "[explain]") {
  std::vector<ListeningSocket> sockets;
  const auto more = diag_dump(3, 128, false);
  auto done = parse_inet_diag_dump(more.data(), more.size(), 1, sockets);
  REQUIRE(done);
  CHECK_FALSE(*done);
  const auto last = diag_dump(0, 1, true);
  done = parse_inet_diag_dump(last.data(), last.size(), 1, sockets);
  REQUIRE(done);
  CHECK(*done);
  REQUIRE(sockets.size() == 2);
  CHECK(sockets[0].port == 22);
  CHECK(sockets[0].accept_queue == 3);
  CHECK(*sockets[0].backlog == 128);
  CHECK(sockets[0].inode == 4242);
  CHECK(sockets[0].addr == v4("127.0.0.1"));
  // A message cut short, or one too small for its struct: a Failure.
  auto cut = diag_dump(0, 1, true);
  cut.resize(cut.size() - 30);
  CHECK_FALSE(parse_inet_diag_dump(cut.data(), cut.size(), 1, sockets));
  nlmsghdr tiny{.nlmsg_len = NLMSG_LENGTH(4), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = 0, .nlmsg_seq = 1, .nlmsg_pid = 0};
  std::vector<char> small(NLMSG_ALIGN(tiny.nlmsg_len));
  std::memcpy(small.data(), &tiny, sizeof(tiny));
  CHECK_FALSE(parse_inet_diag_dump(small.data(), small.size(), 1, sockets));
  // A length over 2 GiB (negative as libmnl's int) once walked it off the buffer (fuzz_explain).
  auto huge = diag_dump(0, 1, true);
  const uint32_t length = 0xdddddddd;
  std::memcpy(huge.data(), &length, sizeof(length));
  CHECK_FALSE(parse_inet_diag_dump(huge.data(), huge.size(), 1, sockets));
}

namespace {

Facts sshd_facts() {
  Facts facts;
  facts.client = *parse_client_address("192.0.2.7");
  facts.server_address = "192.0.2.1";
  facts.routing = {.known = true, .route_type = "unicast", .reply_interface = "eth0", .local_address = "192.0.2.1",
                   .rp_filter_all = 0, .rp_filter_interface = 0};
  facts.firewall_read = true;
  facts.hooks = {"prerouting", "input"};
  facts.listener.read = true;
  facts.listener.listening = true;
  facts.listener.bound = "0.0.0.0:22";
  facts.listener.backlog = 128;
  facts.listener.sockets_source = "sock_diag";
  facts.listener.processes = {{.pid = 812, .comm = "sshd", .title = "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                               .exe = "sshd"}};
  facts.wrappers_note = "sshd[812] does not use TCP wrappers";
  facts.bans.note = "no fail2ban";
  return facts;
}

}  // namespace

TEST_CASE("explain: a penalty in sshd's log predicts sshd, probable, with its fix", "[explain]") {
  Facts facts = sshd_facts();
  facts.sshd_log.read = true;
  facts.sshd_log.source = "its standard error (/proc/812/fd/2)";
  facts.sshd_log.lines = 4;
  facts.sshd_log.penalty_lines = 1;
  facts.sshd_log.penalty = {.state = PenaltyVerdict::State::Active, .penalty_class = "noauth", .seconds_left = 20,
                            .evidence = "sshd penalised 192.0.2.7/32 for 30 s (noauth) 10 s ago"};
  const Explanation e = explain_facts(facts);
  CHECK(verdict_text(e) == "sshd");
  CHECK_FALSE(e.certain);
  CHECK(e.steps[3].result == "block");
  CHECK_THAT(e.steps[3].detail, Catch::Contains("a noauth penalty holds 192.0.2.7 (at least 20 s left)"));
  REQUIRE_FALSE(e.remedy.empty());
  CHECK_THAT(e.remedy[0], Catch::Contains("PerSourcePenaltyExemptList 192.0.2.7"));
  // What was read, when nothing holds the address.
  facts.sshd_log.penalty = {};
  const Explanation allowed = explain_facts(facts);
  CHECK(verdict_text(allowed) == "allowed");
  CHECK_THAT(allowed.steps[3].detail, Catch::Contains("no penalty for 192.0.2.7 in its log (read 4 lines"));
  facts.sshd_log = {.read = false, .note = "no log of it could be read (x)"};
  CHECK_THAT(explain_facts(facts).steps[3].detail, Catch::Contains("its log was not read: no log of it could be read"));
}

TEST_CASE("explain: a listener whose accept queue is over its backlog predicts kernel", "[explain]") {
  Facts facts = sshd_facts();
  facts.listener.accept_queue = 3;
  facts.listener.backlog = 2;
  const Explanation full = explain_facts(facts);
  CHECK(verdict_text(full) == "kernel");
  CHECK_FALSE(full.certain);
  CHECK_THAT(full.steps[2].detail, Catch::Contains("its accept queue is full: 3 waiting, backlog 2 (sock_diag)"));
  facts.listener.accept_queue = 2;  // sk_acceptq_is_full: more than the backlog
  const Explanation room = explain_facts(facts);
  CHECK(verdict_text(room) == "allowed");
  CHECK_THAT(room.steps[2].detail, Catch::Contains("2 waiting, backlog 2 (sock_diag)"));
  facts.listener.backlog.reset();
  facts.listener.sockets_source = "/proc/net/tcp (failed to open a sock_diag socket: x)";
  CHECK_THAT(explain_facts(facts).steps[2].detail, Catch::Contains("its backlog is not known"));
}
