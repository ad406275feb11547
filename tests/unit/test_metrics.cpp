#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "error.h"
#include "metrics/exposition.h"
#include "metrics/listen_address.h"
#include "metrics/peers.h"
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

Attribution report_of(Verdict verdict, EventKind kind, uint16_t port) {
  Attribution report;
  report.verdict = verdict;
  report.event.kind = kind;
  report.event.local.port = port;
  return report;
}

}  // namespace

TEST_CASE("metrics page: counters by label, valid text exposition", "[metrics]") {
  EventCounters counters;
  for (int i = 0; i < 3; ++i) counters.add(report_of(Verdict::TcpWrappers, EventKind::ResetSent, 22));
  counters.add(report_of(Verdict::Firewall, EventKind::Drop, 22));
  counters.add(report_of(Verdict::Peer, EventKind::ResetReceived, 2222));
  CHECK(counters.total() == 5);

  // A storm line counts its events under the storm's watched port, not the example's local port.
  EventCounters storms;
  storms.add(report_of(Verdict::NoListener, EventKind::ResetSent, 40000), 22, 90000);
  storms.add(report_of(Verdict::NoListener, EventKind::ResetSent, 40001), 22, 10000);
  CHECK(storms.total() == 100000);

  MetricsSnapshot snapshot;
  snapshot.events = counters.counts();
  snapshot.storm_events = storms.counts();
  snapshot.kernel_aggregated = 100000;
  snapshot.storms_active = 1;
  snapshot.lost = 7;
  snapshot.kernel_failed_reads = 3;
  snapshot.cpu_seconds = 1.25;
  snapshot.resident_bytes = 4096;
  snapshot.program_stats = true;
  snapshot.programs = {{"handle_send_reset", 10, 5'000}, {"odd \"name\"\\\n", 1, 1}};
  const std::string page = render_prometheus(snapshot);
  CHECK_THAT(page, Catch::Contains(
                       "rsttrace_events_total{verdict=\"tcp-wrappers\",kind=\"reset\",direction=\"sent\",port=\"22\"} 3\n"));
  CHECK_THAT(page, Catch::Contains(
                       "rsttrace_events_total{verdict=\"firewall\",kind=\"drop\",direction=\"dropped\",port=\"22\"} 1\n"));
  CHECK_THAT(page, Catch::Contains("verdict=\"peer\",kind=\"reset\",direction=\"received\",port=\"2222\"} 1\n"));
  // Label values are escaped (text format 0.0.4): backslash, double quote, newline.
  CHECK_THAT(page, Catch::Contains("program=\"odd \\\"name\\\"\\\\\\n\"}"));
  CHECK_THAT(page, Catch::Contains("rsttrace_lost_events_total 7\n"));
  CHECK_THAT(page, Catch::Contains("rsttrace_kernel_stats_read_failures_total 3\n"));
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

TEST_CASE("metrics HTTP: where a request head ends, and when it is too long", "[metrics]") {
  using State = RequestHeadScan::State;
  CHECK(scan_request_head("", 16).state == State::Incomplete);
  CHECK(scan_request_head("GET / HTTP/1.1\r\n", 16).state == State::Incomplete);
  const RequestHeadScan whole = scan_request_head("GET / HTTP/1.1\r\n\r\nbody", 64);
  CHECK(whole.state == State::Complete);
  CHECK(whole.head_length == 14);
  // A head of exactly the limit is read; one byte more, or no end in sight, is not.
  CHECK(scan_request_head(std::string(16, 'a') + "\r\n\r\n", 16).state == State::Complete);
  CHECK(scan_request_head(std::string(17, 'a') + "\r\n\r\n", 16).state == State::TooLarge);
  CHECK(scan_request_head(std::string(20, 'a'), 16).state == State::TooLarge);
  CHECK(scan_request_head(std::string(19, 'a'), 16).state == State::Incomplete);
  CHECK(std::string(http_head_too_large_response()).rfind("HTTP/1.1 431 ", 0) == 0);
}

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A test client's socket.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { close(fd_); }
  int fd() const { return fd_; }

  // False when the server has closed or reset the connection.
  bool send_text(std::string_view text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }

  // Reads until the server closes (true) or resets (false), or the time is up (nullopt).
  std::optional<bool> read_to_end(std::string& out, Clock::duration limit) {
    const Clock::time_point until = Clock::now() + limit;
    char buffer[65536];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd ready{fd_, POLLIN, 0};
      if (poll(&ready, 1, static_cast<int>(left.count())) <= 0) continue;
      const ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
      if (got == 0) return true;
      if (got < 0) return false;
      out.append(buffer, static_cast<size_t>(got));
    }
  }

  // Has the server closed or reset the connection? Looks without waiting,
  // reading (and dropping) what the server sent.
  bool closed_by_server() {
    char buffer[65536];
    for (;;) {
      const ssize_t got = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (got == 0) return true;
      if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int fd_;
};

// One good scrape, given a generous time to finish: the response, or "" when none came.
std::string scrape(uint16_t port, const char* request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") {
  Client client(port);
  if (!client.send_text(request)) return "";
  std::string response;
  return client.read_to_end(response, 2s) == std::optional<bool>(true) ? response : "";
}

ListenAddress loopback_any_port() { return {"127.0.0.1", 0, true}; }

const std::string kPage = "rsttrace_lost_events_total 0\n";

bool serves_page(const std::string& response) {
  return response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && response.size() >= kPage.size() &&
         response.compare(response.size() - kPage.size(), kPage.size(), kPage) == 0;
}

}  // namespace

TEST_CASE("metrics server: a client trickling a byte a second starves no scrape", "[metrics][server]") {
  MetricsServer server(loopback_any_port());
  server.publish(kPage);
  server.serve();
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  Client trickler(server.port());
  size_t trickled = 0;
  Clock::time_point last_byte{};
  int served = 0;
  // 20 scrapes spread over about 2 s, the trickler's byte a second between them.
  for (int i = 0; i < 20; ++i) {
    if (Clock::now() - last_byte >= 1s) {
      CHECK(trickler.send_text(request.substr(trickled++, 1)));
      last_byte = Clock::now();
    }
    served += serves_page(scrape(server.port())) ? 1 : 0;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(served == 20);
  CHECK(trickled >= 2);
  // The scrapes were served beside the trickler, not after it was dropped;
  // and it is served too once its head is whole.
  CHECK_FALSE(trickler.closed_by_server());
  REQUIRE(trickler.send_text(request.substr(trickled)));
  std::string response;
  CHECK(trickler.read_to_end(response, 2s) == std::optional<bool>(true));
  CHECK(serves_page(response));
}

TEST_CASE("metrics server: clients holding their connection after the response starve no scrape",
          "[metrics][server]") {
  MetricsServer server(loopback_any_port());
  server.publish(kPage);
  server.serve();
  // Ten clients get their page, then neither close nor stop sending.
  std::vector<std::unique_ptr<Client>> holders;
  for (int i = 0; i < 10; ++i) {
    holders.push_back(std::make_unique<Client>(server.port()));
    REQUIRE(holders.back()->send_text("GET /metrics HTTP/1.1\r\n\r\n"));
    std::string response;
    REQUIRE(holders.back()->read_to_end(response, 2s) == std::optional<bool>(true));  // the server's FIN
    CHECK(serves_page(response));
  }
  // Meanwhile each holder sends a byte every 100 ms until the server has
  // closed it: the lingering close is bounded, whatever the client sends.
  std::vector<bool> closed(holders.size(), false);
  std::thread holding([&] {
    const Clock::time_point until = Clock::now() + MetricsLimits{}.linger_time + 2s;
    while (Clock::now() < until && std::count(closed.begin(), closed.end(), true) < static_cast<long>(closed.size())) {
      for (size_t h = 0; h < holders.size(); ++h) {
        pollfd ready{holders[h]->fd(), POLLIN, 0};
        // Once the server has closed, the kernel answers the next byte with a RST.
        if (!closed[h])
          closed[h] = !holders[h]->send_text("x") || (poll(&ready, 1, 0) > 0 && (ready.revents & POLLERR));
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  int served = 0;
  for (int i = 0; i < 20; ++i) served += serves_page(scrape(server.port())) ? 1 : 0;
  holding.join();
  CHECK(served == 20);
  CHECK(std::count(closed.begin(), closed.end(), true) == static_cast<long>(closed.size()));
}

TEST_CASE("metrics server: 200 idle connections opened first starve no scrape", "[metrics][server]") {
  MetricsServer server(loopback_any_port());
  server.publish(kPage);
  server.serve();
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<Client>(server.port()));
  int served = 0;
  for (int i = 0; i < 20; ++i) served += serves_page(scrape(server.port())) ? 1 : 0;
  CHECK(served == 20);
  // The bound holds: the idlest were dropped to make room.
  size_t still_open = 0;
  for (auto& client : idle) still_open += client->closed_by_server() ? 0 : 1;
  CHECK(still_open <= MetricsLimits{}.max_connections);
  CHECK(still_open > 0);
}

TEST_CASE("metrics server: the deadline covers the whole exchange", "[metrics][server]") {
  MetricsLimits limits;
  limits.exchange_deadline = 1s;
  MetricsServer server(loopback_any_port(), limits);

  SECTION("a client trickling its head, a byte every 100 ms, is closed at the deadline") {
    server.publish(kPage);
    server.serve();
    Client slow(server.port());
    const Clock::time_point start = Clock::now();
    const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(200, 'a');
    bool closed = false;
    for (size_t i = 0; i < head.size() && !closed; ++i) {
      closed = !slow.send_text(head.substr(i, 1)) || slow.closed_by_server();
      if (!closed) std::this_thread::sleep_for(100ms);
      if (Clock::now() - start > limits.exchange_deadline + 2s) break;
    }
    CHECK(closed);  // each byte was progress, yet the exchange as a whole ran out
    CHECK(Clock::now() - start >= limits.exchange_deadline);
    CHECK(serves_page(scrape(server.port())));
  }

  SECTION("a client that never reads a large page is cut off at the deadline") {
    server.publish(std::string(8 << 20, 'x'));
    server.serve();
    Client reader(server.port());
    const int small = 64 * 1024;  // fixed, so the kernel cannot grow it to take the page
    REQUIRE(setsockopt(reader.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
    REQUIRE(reader.send_text("GET /metrics HTTP/1.1\r\n\r\n"));
    std::this_thread::sleep_for(limits.exchange_deadline + 500ms);
    std::string response;
    const std::optional<bool> end = reader.read_to_end(response, 2s);
    CHECK(end.has_value());  // closed or reset, not still trickling
    CHECK(response.size() < (8u << 20));
  }
}

TEST_CASE("metrics server: an oversized request reads its 431, not a reset", "[metrics][server]") {
  MetricsServer server(loopback_any_port());
  server.publish(kPage);
  server.serve();
  Client client(server.port());
  REQUIRE(client.send_text("GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"));
  std::string response;
  CHECK(client.read_to_end(response, 2s) == std::optional<bool>(true));
  CHECK(response.rfind("HTTP/1.1 431 ", 0) == 0);
  // A head of exactly the limit is still served.
  const std::string prefix = "GET /metrics HTTP/1.1\r\nX: ";
  const std::string largest = prefix + std::string(MetricsServer::kMaxRequestHead - prefix.size(), 'a') + "\r\n\r\n";
  CHECK(serves_page(scrape(server.port(), largest.c_str())));
}

TEST_CASE("metrics server: stopping does not wait for clients and closes them all", "[metrics][server]") {
  auto server = std::make_unique<MetricsServer>(loopback_any_port());
  server->publish(kPage);
  server->serve();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<Client>(server->port()));
    REQUIRE(clients.back()->send_text("GET /metr"));
  }
  REQUIRE(serves_page(scrape(server->port())));  // the loop is up and has taken the clients
  const Clock::time_point start = Clock::now();
  server.reset();
  CHECK(Clock::now() - start < MetricsLimits{}.exchange_deadline);  // stopped at once, not at a deadline
  for (auto& client : clients) CHECK(client->closed_by_server());
}

TEST_CASE("metrics server: every scrape sees the latest published page", "[metrics][server]") {
  MetricsServer server(loopback_any_port());
  server.serve();
  CHECK(scrape(server.port()).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);  // empty before the first publish
  for (int i = 0; i < 5; ++i) {
    const std::string page = "rsttrace_events_per_second " + std::to_string(i) + "\n";
    server.publish(page);
    const std::string response = scrape(server.port());
    CHECK(response.substr(response.find("\r\n\r\n") + 4) == page);
  }
}

namespace {
Attribution peer_report(int family, const char* remote, Verdict verdict) {
  Attribution report;
  report.event.family = family;
  inet_pton(family == 6 ? AF_INET6 : AF_INET, remote, report.event.remote.addr.data());
  report.verdict = verdict;
  return report;
}
}  // namespace

TEST_CASE("metrics peers: top addresses and prefixes, bounded; new refused addresses", "[metrics][peers]") {
  CHECK(network_prefix(4, peer_report(4, "192.0.2.77", Verdict::Peer).event.remote.addr) == "192.0.2.0/24");
  CHECK(network_prefix(6, peer_report(6, "2001:db8:1:2::9", Verdict::Peer).event.remote.addr) == "2001:db8:1::/48");
  PeerCounters peers;
  peers.add(peer_report(4, "192.0.2.7", Verdict::Firewall), 5);
  peers.add(peer_report(4, "192.0.2.8", Verdict::Firewall), 1);
  peers.add(peer_report(4, "192.0.2.7", Verdict::Firewall), 1);  // not new
  peers.add(peer_report(4, "192.0.2.7", Verdict::TcpWrappers), 1);  // new for wrappers
  peers.add(peer_report(4, "198.51.100.1", Verdict::NoListener), 2);  // not a refusal
  CHECK(peers.new_refused(Verdict::Firewall) == 2);
  CHECK(peers.new_refused(Verdict::TcpWrappers) == 1);
  const auto remotes = peers.top_remotes();
  REQUIRE(remotes.size() == 3);
  CHECK(remotes[0] == std::pair<std::string, uint64_t>{"192.0.2.7", 7});
  CHECK(remotes[1] == std::pair<std::string, uint64_t>{"198.51.100.1", 2});
  CHECK(peers.top_prefixes()[0] == std::pair<std::string, uint64_t>{"192.0.2.0/24", 8});
  // A scan from many addresses: at most kTopPeers series, the rest bounded in memory.
  for (unsigned i = 0; i < 3 * PeerCounters::kMaxPeers; ++i) {
    const std::string address = "10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
                                std::to_string(i & 255);
    peers.add(peer_report(4, address.c_str(), Verdict::NoListener), 1);
  }
  CHECK(peers.top_remotes().size() == PeerCounters::kTopPeers);
  CHECK(peers.top_remotes()[0].first == "other");  // the overflow key carries the rest of the scan

  MetricsSnapshot snapshot;
  snapshot.top_remotes = peers.top_remotes();
  snapshot.top_prefixes = peers.top_prefixes();
  snapshot.new_refused_firewall = 2;
  const std::string page = render_prometheus(snapshot);
  CHECK_THAT(page, Catch::Contains("rsttrace_refused_new_addresses_total{verdict=\"firewall\"} 2\n"));
  CHECK_THAT(page, Catch::Contains("rsttrace_top_prefix_events{prefix=\"10.0.0.0/24\"} 256\n"));  // the scan's /24s lead
  CHECK(std::count(page.begin(), page.end(), '\n') < 200);
}
