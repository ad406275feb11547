#include <catch2/catch.hpp>
#include <set>

#include "error.h"
#include "metrics/exposition.h"
#include "metrics/listen_address.h"
#include "metrics/server.h"

using namespace rsttrace;

TEST_CASE("metrics listen addresses: loopback by default, remote only when asked", "[metrics]") {
  const ListenAddress v4 = parse_listen_address("127.0.0.1:9822", false);
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.port == 9822);
  CHECK(v4.loopback);
  CHECK(parse_listen_address("localhost:1", false).host == "127.0.0.1");
  const ListenAddress v6 = parse_listen_address("[::1]:9822", false);
  CHECK(v6.host == "::1");
  CHECK(v6.text() == "[::1]:9822");
  CHECK(parse_listen_address("127.5.6.7:80", false).loopback);
  CHECK_THROWS_WITH(parse_listen_address("0.0.0.0:9822", false), Catch::Contains("--metrics-allow-remote"));
  CHECK_THROWS_WITH(parse_listen_address("[::]:9822", false), Catch::Contains("not a loopback address"));
  CHECK_FALSE(parse_listen_address("0.0.0.0:9822", true).loopback);
  CHECK_THROWS_WITH(parse_listen_address("9822", false), Catch::Contains("expected ADDRESS:PORT"));
  CHECK_THROWS_WITH(parse_listen_address("127.0.0.1:", false), Catch::Contains("expected ADDRESS:PORT"));
  CHECK_THROWS_WITH(parse_listen_address("127.0.0.1:65536", false), Catch::Contains("from 1 to 65535"));
  CHECK_THROWS_WITH(parse_listen_address("127.0.0.1:22x", false), Catch::Contains("from 1 to 65535"));
  CHECK_THROWS_WITH(parse_listen_address("example.org:80", true), Catch::Contains("an IP address"));
}

namespace {

Report report_of(const std::string& verdict, EventKind kind, uint16_t port) {
  Report report;
  report.verdict = verdict;
  report.event.kind = kind;
  report.event.local.port = port;
  return report;
}

}  // namespace

TEST_CASE("metrics page: counters by label, valid text exposition", "[metrics]") {
  EventCounters counters;
  for (int i = 0; i < 3; ++i) counters.add(report_of("tcp-wrappers", EventKind::ResetSent, 22));
  counters.add(report_of("firewall", EventKind::Drop, 22));
  counters.add(report_of("odd \"verdict\"\\\n", EventKind::ResetReceived, 2222));
  CHECK(counters.total() == 5);

  // A storm line counts its events under the storm's watched port, not the example's local port.
  EventCounters storms;
  storms.add(report_of("no-listener", EventKind::ResetSent, 40000), 22, 90000);
  storms.add(report_of("no-listener", EventKind::ResetSent, 40001), 22, 10000);
  CHECK(storms.total() == 100000);

  MetricsSnapshot snapshot;
  snapshot.events = counters.counts();
  snapshot.storm_events = storms.counts();
  snapshot.kernel_aggregated = 100000;
  snapshot.storms_active = 1;
  snapshot.lost = 7;
  snapshot.cpu_seconds = 1.25;
  snapshot.resident_bytes = 4096;
  snapshot.program_stats = true;
  snapshot.programs = {{"handle_send_reset", 10, 5'000}};
  const std::string page = render_prometheus(snapshot);
  CHECK_THAT(page, Catch::Contains(
                       "rsttrace_events_total{verdict=\"tcp-wrappers\",kind=\"reset\",direction=\"sent\",port=\"22\"} 3\n"));
  CHECK_THAT(page, Catch::Contains(
                       "rsttrace_events_total{verdict=\"firewall\",kind=\"drop\",direction=\"dropped\",port=\"22\"} 1\n"));
  CHECK_THAT(page, Catch::Contains("verdict=\"odd \\\"verdict\\\"\\\\\\n\",kind=\"reset\",direction=\"received\""));
  CHECK_THAT(page, Catch::Contains("rsttrace_lost_events_total 7\n"));
  CHECK_THAT(page, Catch::Contains(
                       "rsttrace_storm_events_total{verdict=\"no-listener\",kind=\"reset\",direction=\"sent\",port=\"22\"} 100000\n"));
  CHECK_THAT(page, Catch::Contains("rsttrace_kernel_aggregated_events_total 100000\n"));
  CHECK_THAT(page, Catch::Contains("rsttrace_storms_active 1\n"));
  CHECK_THAT(page, Catch::Contains("process_cpu_seconds_total 1.25\n"));
  CHECK_THAT(page, Catch::Contains("rsttrace_bpf_program_run_seconds_total{program=\"handle_send_reset\"} 5e-06\n"));
  // Every family is declared once, before its samples; every sample line is "name[{labels}] value".
  std::set<std::string> declared;
  size_t start = 0;
  while (start < page.size()) {
    const size_t end = page.find('\n', start);
    REQUIRE(end != std::string::npos);
    const std::string line = page.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(declared.insert(name).second);
    } else if (line.rfind("# HELP ", 0) != 0) {
      const std::string name = line.substr(0, line.find_first_of("{ "));
      CHECK(declared.count(name) == 1);
    }
  }
}

TEST_CASE("metrics page: no BPF run time unless the kernel's stats are on", "[metrics]") {
  MetricsSnapshot snapshot;
  snapshot.programs = {{"handle_send_reset", 0, 0}};
  CHECK_THAT(render_prometheus(snapshot), !Catch::Contains("rsttrace_bpf_program"));
}

TEST_CASE("metrics HTTP: GET and HEAD of /metrics, everything else refused in kind", "[metrics]") {
  const std::string page = "rsttrace_lost_events_total 0\n";
  const std::string ok = http_response("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*", page);
  CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK_THAT(ok, Catch::Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  CHECK_THAT(ok, Catch::Contains("Content-Length: " + std::to_string(page.size()) + "\r\n"));
  CHECK(ok.substr(ok.find("\r\n\r\n") + 4) == page);
  CHECK(http_response("GET /metrics?x=1 HTTP/1.0", page).rfind("HTTP/1.1 200 OK", 0) == 0);

  const std::string head = http_response("HEAD /metrics HTTP/1.1", page);
  CHECK_THAT(head, Catch::Contains("Content-Length: " + std::to_string(page.size()) + "\r\n"));
  CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());

  CHECK(http_response("GET / HTTP/1.1", page).rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(http_response("GET /metricsx HTTP/1.1", page).rfind("HTTP/1.1 404 Not Found", 0) == 0);
  const std::string post = http_response("POST /metrics HTTP/1.1\r\nContent-Length: 3", page);
  CHECK(post.rfind("HTTP/1.1 405 Method Not Allowed", 0) == 0);
  CHECK_THAT(post, Catch::Contains("Allow: GET, HEAD\r\n"));
  for (const char* bad : {"", "GET", "GET /metrics", "GET /metrics SPDY/3", "GET  HTTP/1.1", "\x01\x02 \xff HTTP/1.1"})
    CHECK(http_response(bad, page).rfind("HTTP/1.1 400 Bad Request", 0) == 0);
}
