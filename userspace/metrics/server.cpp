#include "metrics/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "error.h"

namespace rsttrace {
namespace {

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     bool with_body = true, std::string_view extra_header = "") {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_header;
  out += "\r\n";
  if (with_body) out += body;
  return out;
}

}  // namespace

RequestHeadScan scan_request_head(std::string_view received, size_t max_head) {
  const size_t end = received.find("\r\n\r\n");
  if (end != std::string_view::npos) {
    if (end > max_head) return {RequestHeadScan::State::TooLarge, 0};
    return {RequestHeadScan::State::Complete, end};
  }
  // Without its blank line, a head already past the limit cannot end within it.
  if (received.size() >= max_head + 4) return {RequestHeadScan::State::TooLarge, 0};
  return {};
}

std::string_view http_head_too_large_response() {
  return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

std::string http_response(std::string_view head, const std::string& metrics_page) {
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  // "METHOD TARGET HTTP/1.x"
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.substr(second + 1).rfind("HTTP/1.", 0) != 0)
    return response("400 Bad Request", "text/plain", "bad request\n");
  const std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  if (target.empty() || target[0] != '/') return response("400 Bad Request", "text/plain", "bad request\n");
  target = target.substr(0, target.find('?'));  // Prometheus may add parameters
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only)
    return response("405 Method Not Allowed", "text/plain", "only GET and HEAD\n", true, "Allow: GET, HEAD\r\n");
  if (target == "/metrics")
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics_page, !head_only);
  if (target == "/") return response("200 OK", "text/plain", "rsttrace: metrics at /metrics\n", !head_only);
  return response("404 Not Found", "text/plain", "not found: metrics at /metrics\n", !head_only);
}


namespace {

using Clock = std::chrono::steady_clock;

// One exchange: read a head, write the reply, read what follows until the
// client closes (the lingering close), all before one deadline.
struct Connection {
  enum class Phase { Reading, Writing, Lingering };

  Connection(int fd, Clock::time_point now, const MetricsLimits& limits)
      : fd(fd), deadline(now + limits.exchange_deadline), ends(deadline), last_activity(now) {}

  Fd fd;  // the client socket
  Phase phase = Phase::Reading;
  Clock::time_point deadline;       // of the whole exchange
  Clock::time_point ends;           // the deadline, or sooner once lingering
  Clock::time_point last_activity;  // the last byte in or out of the exchange proper
  size_t progress = 0;              // bytes in or out of the exchange proper
  std::string received;
  std::string reply;
  size_t sent = 0;
  size_t drained = 0;

  short events() const { return phase == Phase::Writing ? POLLOUT : POLLIN; }
  void moved(size_t bytes, Clock::time_point now) {
    progress += bytes;
    last_activity = now;
  }
};

// The connection to close for a newcomer: one already answered and
// lingering first, then the one idle longest, then the one with least done.
bool idler(const Connection& a, const Connection& b) {
  const bool a_done = a.phase == Connection::Phase::Lingering;
  const bool b_done = b.phase == Connection::Phase::Lingering;
  if (a_done != b_done) return a_done;
  if (a.last_activity != b.last_activity) return a.last_activity < b.last_activity;
  return a.progress < b.progress;
}

// Ends a connection the server gives up on (its deadline passed, or a
// newcomer needs its place). One already answered closes cleanly: read what
// the client sent, without waiting and up to a bound, so that the close does
// not answer unread bytes with a RST that could destroy the reply in flight
// (a 431 to an oversized head). One not yet answered is reset, which also
// frees whatever the kernel still holds for it.
void give_up(Connection& connection, size_t max_drain_bytes) {
  if (connection.phase == Connection::Phase::Lingering) {
    char buffer[4096];
    for (size_t drained = 0; drained < max_drain_bytes;) {
      const ssize_t got = recv(connection.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
      if (got <= 0) break;
      drained += static_cast<size_t>(got);
    }
  } else {
    const linger abort{1, 0};
    setsockopt(connection.fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  }
  connection.fd.reset();
}

// Lingering: the reply is written and our side shut; read until the client
// closes. False when the connection is done.
bool read_to_close(Connection& connection, const MetricsLimits& limits) {
  char buffer[4096];
  for (;;) {
    const ssize_t got = recv(connection.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got <= 0) return false;  // the client closed, or the connection failed
    connection.drained += static_cast<size_t>(got);
    if (connection.drained > limits.max_linger_bytes) return false;
  }
}

// Writes what the socket takes of the reply; once all is written, shuts our
// side and lingers. False when the connection is done.
bool write_reply(Connection& connection, Clock::time_point now, const MetricsLimits& limits) {
  while (connection.sent < connection.reply.size()) {
    const ssize_t n = send(connection.fd.get(), connection.reply.data() + connection.sent,
                           connection.reply.size() - connection.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    connection.sent += static_cast<size_t>(n);
    connection.moved(static_cast<size_t>(n), now);
  }
  shutdown(connection.fd.get(), SHUT_WR);
  connection.phase = Connection::Phase::Lingering;
  connection.ends = std::min(connection.deadline, now + limits.linger_time);
  std::string().swap(connection.reply);
  std::string().swap(connection.received);
  return read_to_close(connection, limits);
}

// Reads the request head, at most kMaxRequestHead (and its blank line) of
// it; once it is complete or too large, answers. False when the connection is done.
template <typename PageSource>
bool read_head(Connection& connection, Clock::time_point now, const MetricsLimits& limits,
               const PageSource& current_page) {
  char buffer[4096];
  for (;;) {
    const size_t room = MetricsServer::kMaxRequestHead + 4 - connection.received.size();
    const ssize_t got = recv(connection.fd.get(), buffer, std::min(sizeof(buffer), room), MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got <= 0) return false;  // gone before a whole head: nothing to answer
    connection.received.append(buffer, static_cast<size_t>(got));
    connection.moved(static_cast<size_t>(got), now);
    const RequestHeadScan scan = scan_request_head(connection.received, MetricsServer::kMaxRequestHead);
    if (scan.state == RequestHeadScan::State::Incomplete) continue;
    if (scan.state == RequestHeadScan::State::Complete) {
      const std::shared_ptr<const std::string> page = current_page();
      connection.reply = http_response(std::string_view(connection.received).substr(0, scan.head_length), *page);
    } else {
      connection.reply = std::string(http_head_too_large_response());
    }
    connection.phase = Connection::Phase::Writing;
    return write_reply(connection, now, limits);
  }
}

// Moves one connection on after poll() reported it. False when it is done.
template <typename PageSource>
bool advance(Connection& connection, Clock::time_point now, const MetricsLimits& limits,
             const PageSource& current_page) {
  switch (connection.phase) {
    case Connection::Phase::Reading:
      return read_head(connection, now, limits, current_page);
    case Connection::Phase::Writing:
      return write_reply(connection, now, limits);
    case Connection::Phase::Lingering:
      return read_to_close(connection, limits);
  }
  return false;
}

int poll_timeout_ms(const std::vector<Connection>& connections, Clock::time_point now,
                    Clock::time_point listener_paused_until) {
  Clock::time_point next = Clock::time_point::max();
  for (const Connection& connection : connections) next = std::min(next, connection.ends);
  if (listener_paused_until > now) next = std::min(next, listener_paused_until);
  if (next == Clock::time_point::max()) return -1;
  if (next <= now) return 0;
  // Rounded up: waking a little late is harmless, waking early spins.
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
  return static_cast<int>(std::min<int64_t>(wait.count(), 60'000));
}

}  // namespace

MetricsServer::MetricsServer(const ListenAddress& address, MetricsLimits limits)
    : limits_(limits), page_(std::make_shared<const std::string>()) {
  if (limits_.max_connections == 0) limits_.max_connections = 1;
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    length = sizeof(*v4);
  } else if (inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    length = sizeof(*v6);
  } else {
    throw failed("bind", "metrics address " + address.text(), "not an IP address");
  }
  listener_.reset(socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener_) throw failed("bind", "metrics address " + address.text(), errno_text(errno));
  // SO_REUSEADDR, never SO_REUSEPORT: a second rsttrace on the same port must
  // fail to bind, not silently take half the scrapes.
  const int yes = 1;
  setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  if (storage.ss_family == AF_INET6) setsockopt(listener_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof(yes));
  // A backlog of a few bounds' worth: a burst of connections waits in the
  // kernel for the loop to take (and drop) them, not for a SYN retransmission.
  const int backlog = static_cast<int>(std::min<size_t>(limits_.max_connections * 4, 4096));
  if (bind(listener_.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      listen(listener_.get(), backlog) != 0)
    throw failed("bind", "metrics address " + address.text(), errno_text(errno));
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  port_ = address.port;
  if (getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0)
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  stop_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) throw failed("create", "metrics server stop event", errno_text(errno));
}

void MetricsServer::serve() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

MetricsServer::~MetricsServer() {
  const uint64_t one = 1;
  if (write(stop_.get(), &one, sizeof(one)) != sizeof(one)) {
    // Cannot happen on an eventfd below its maximum; the thread would then run on.
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::publish(std::string page) {
  auto next = std::make_shared<const std::string>(std::move(page));
  std::lock_guard lock(mutex_);
  page_.swap(next);
  // The previous page is freed here or by the last reply built from it.
}

std::shared_ptr<const std::string> MetricsServer::current_page() {
  std::lock_guard lock(mutex_);
  return page_;
}

// One thread serves every client: each poll() round moves each ready
// connection on as far as its socket allows, without ever waiting on one.
void MetricsServer::run() {
  std::vector<Connection> connections;
  connections.reserve(limits_.max_connections);
  std::vector<pollfd> fds;
  Clock::time_point listener_paused_until{};
  const auto page_source = [this] { return current_page(); };
  for (;;) {
    Clock::time_point now = Clock::now();
    std::erase_if(connections, [&](Connection& connection) {
      if (connection.ends > now) return false;
      give_up(connection, limits_.max_linger_bytes);
      return true;
    });

    fds.clear();
    fds.push_back({stop_.get(), POLLIN, 0});
    // Out of descriptors, accepting again at once would spin: the listener rests.
    const bool listening = listener_paused_until <= now;
    fds.push_back({listening ? listener_.get() : -1, POLLIN, 0});
    for (const Connection& connection : connections) fds.push_back({connection.fd.get(), connection.events(), 0});

    if (poll(fds.data(), fds.size(), poll_timeout_ms(connections, now, listener_paused_until)) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;  // stop: every client closes with `connections`
    now = Clock::now();

    // Ready connections first: a request that has arrived is answered before
    // a newcomer may take its place.
    for (size_t i = 0; i < connections.size(); ++i)
      if (fds[i + 2].revents && !advance(connections[i], now, limits_, page_source)) connections[i].fd.reset();
    std::erase_if(connections, [](const Connection& connection) { return connection.fd.get() < 0; });

    if (!(fds[1].revents & POLLIN)) continue;
    for (size_t accepted = 0; accepted < limits_.max_connections; ++accepted) {
      const int client = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          listener_paused_until = now + std::chrono::milliseconds(100);
        break;  // EAGAIN: none left; anything else: the next round retries
      }
      if (connections.size() >= limits_.max_connections) {
        const auto idlest = std::min_element(connections.begin(), connections.end(), idler);
        give_up(*idlest, limits_.max_linger_bytes);
        connections.erase(idlest);
      }
      connections.emplace_back(client, now, limits_);
    }
  }
}

}  // namespace rsttrace
