#include <catch2/catch.hpp>

#include "report/incident.h"

using namespace rsttrace;

namespace {

std::string event(const std::string& ts, const std::string& verdict, const std::string& remote,
                  const std::string& jail = "") {
  return R"({"type":"event","ts":")" + ts + R"(","kind":"reset","direction":"sent","remote_addr":")" + remote +
         R"(","verdict":")" + verdict + "\"" + (jail.empty() ? "" : R"(,"fail2ban_jail":")" + jail + "\"") + "}";
}

}  // namespace

TEST_CASE("report: counts, top remotes and jails, first and last, per minute", "[report]") {
  Incident incident;
  uint64_t n = 0;
  // Rotated file first on the command line, newer lines later: order does not matter.
  incident.add_line("cap", ++n, event("2026-11-25T02:16:01.000000Z", "firewall", "10.0.0.9", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:13:08.939998Z", "tcp-wrappers", "127.0.0.2", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:13:59.000001Z", "tcp-wrappers", "127.0.0.2", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:14:00.000000Z", "sshd", "127.0.0.3"));
  incident.add_line("cap.1", ++n, R"({"type":"lost","ts":"2026-11-25T02:14:00.000000Z","count":7,"total":7})");
  incident.add_line("cap.1", ++n, R"({"type":"lost","ts":"2026-11-25T02:15:00.000000Z","count":3,"total":10})");
  incident.add_line("cap.1", ++n, R"({"type":"summary","events":4})");
  CHECK(incident.events() == 4);
  CHECK(incident.by_verdict().at("tcp-wrappers") == 2);
  CHECK(incident.by_verdict().at("firewall") == 1);
  CHECK(incident.by_verdict().at("sshd") == 1);
  CHECK(incident.lost() == 10);
  CHECK(incident.runs() == 1);
  CHECK(incident.first_seen() == "2026-11-25T02:13:08.939998Z");
  CHECK(incident.last_seen() == "2026-11-25T02:16:01.000000Z");
  const auto remotes = incident.top_remotes(2);
  REQUIRE(remotes.size() == 2);
  CHECK(remotes[0] == std::pair<std::string, uint64_t>{"127.0.0.2", 2});
  CHECK(remotes[1] == std::pair<std::string, uint64_t>{"10.0.0.9", 1});  // ties by address
  CHECK(incident.top_jails(5) == std::vector<std::pair<std::string, uint64_t>>{{"sshd", 3}});
  const auto& timeline = incident.timeline();
  REQUIRE(timeline.size() == 3);
  CHECK(timeline.at("2026-11-25T02:13Z").at("tcp-wrappers") == 2);
  CHECK(timeline.at("2026-11-25T02:14Z").at("sshd") == 1);
  CHECK(timeline.at("2026-11-25T02:16Z").at("firewall") == 1);
}

TEST_CASE("report: malformed lines are counted with their line numbers, a cut last line is truncated", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, "{not json");
  incident.add_line("cap", 2, R"({"type":"event","verdict":"sshd"})");            // no ts
  incident.add_line("cap", 3, R"({"type":"event","ts":"yesterday","verdict":"sshd"})");
  incident.add_line("cap", 4, R"(["an","array"])");
  incident.add_line("cap", 5, R"({"type":"mystery"})");
  incident.add_line("cap", 6, R"({"type":"lost","count":-1})");
  incident.add_line("cap", 7, "");
  incident.add_line("cap", 8, R"({"type":"event","ts":"2026-11-25T02:1)", true);
  CHECK(incident.events() == 0);
  CHECK(incident.malformed() == 6);
  CHECK(incident.truncated() == 1);
  REQUIRE(incident.malformed_lines().size() == 6);
  CHECK(incident.malformed_lines()[0].line == 1);
  CHECK(incident.malformed_lines()[1].why == "event without an RFC 3339 \"ts\"");
  CHECK(incident.malformed_lines()[5].line == 6);
  // A whole last line without a newline still counts.
  incident.add_line("cap", 9, event("2026-11-25T02:13:08Z", "sshd", "::1"), true);
  CHECK(incident.events() == 1);
}

TEST_CASE("report: minute_of takes RFC 3339 UTC only", "[report]") {
  CHECK(minute_of("2026-11-25T02:13:08.939998Z") == "2026-11-25T02:13Z");
  CHECK(minute_of("2026-11-25T02:13:08Z") == "2026-11-25T02:13Z");
  CHECK_FALSE(minute_of("2026-11-25T02:13:08+01:00"));
  CHECK_FALSE(minute_of("2026-11-25 02:13:08Z"));
  CHECK_FALSE(minute_of(""));
}

TEST_CASE("report: text and HTML escape what came from the capture", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, event("2026-11-25T02:13:08Z", "firewall", "<script>alert(1)</script>\\u001b[31m",
                                    "jail\\\"><img src=x>"));
  incident.add_line("cap", 2, event("2026-11-25T02:20:08Z", "sshd", "127.0.0.1"));
  const std::string text = render_text(incident, {"cap\n"});
  CHECK_THAT(text, !Catch::Contains("\x1b"));
  CHECK_THAT(text, Catch::Contains("cap\\x0a"));
  const std::string page = render_html(incident, {"cap<b>"});
  CHECK_THAT(page, !Catch::Contains("<script>"));
  CHECK_THAT(page, !Catch::Contains("<img"));
  CHECK_THAT(page, !Catch::Contains("<b>"));
  CHECK_THAT(page, Catch::Contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m"));
  CHECK_THAT(page, Catch::Contains("<svg"));
  CHECK_THAT(page, Catch::Contains("fill=\"#1b9e77\""));  // firewall's colour
  CHECK_THAT(page, Catch::Contains("fill=\"#7570b3\""));  // sshd's
  CHECK_THAT(page, !Catch::Contains("<script"));
  CHECK_THAT(page, !Catch::Contains("http://www.w3.org/1999"));  // nothing external but the SVG namespace
}
