#include "metrics/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

MetricsServer::MetricsServer(const ListenAddress& address) {
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
  listener_ = socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener_ < 0) throw failed("bind", "metrics address " + address.text(), errno_text(errno));
  // SO_REUSEADDR, never SO_REUSEPORT: a second rsttrace on the same port must
  // fail to bind, not silently take half the scrapes.
  const int yes = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  if (storage.ss_family == AF_INET6) setsockopt(listener_, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof(yes));
  if (bind(listener_, reinterpret_cast<sockaddr*>(&storage), length) != 0 || listen(listener_, 16) != 0) {
    const int err = errno;
    close(listener_);
    throw failed("bind", "metrics address " + address.text(), errno_text(err));
  }
  stop_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_ < 0) {
    const int err = errno;
    close(listener_);
    throw failed("create", "metrics server stop event", errno_text(err));
  }
  port_ = address.port;
}

void MetricsServer::serve() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

MetricsServer::~MetricsServer() {
  const uint64_t one = 1;
  if (write(stop_, &one, sizeof(one)) != sizeof(one)) {
    // Cannot happen on an eventfd below its maximum; the thread would then run on.
  }
  if (thread_.joinable()) thread_.join();
  close(stop_);
  close(listener_);
}

void MetricsServer::publish(std::string page) {
  std::lock_guard lock(mutex_);
  page_ = std::move(page);
}

void MetricsServer::run() {
  pollfd fds[2] = {{listener_, POLLIN, 0}, {stop_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;  // gone before accept, or out of descriptors: the next scrape retries
    answer(client);
    linger_close(client);
  }
}

// Closing with unread request bytes would make the kernel answer with a RST,
// which can destroy the response before the client reads it (a 431 for an
// oversized head): say we are done writing, then read what is left for a
// bounded time and amount before closing.
void MetricsServer::linger_close(int client) {
  shutdown(client, SHUT_WR);
  const timeval timeout{1, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char buffer[4096];
  for (size_t drained = 0; drained < (1u << 20);) {
    const ssize_t got = recv(client, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    drained += static_cast<size_t>(got);
  }
  close(client);
}

// One request per connection, each step bounded by a 5 s timeout: a stalled
// client holds this thread for seconds at most, never the trace loop.
void MetricsServer::answer(int client) {
  const timeval timeout{5, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string head;
  char buffer[2048];
  size_t end = std::string::npos;
  // The timeout bounds each read; a client trickling a byte at a time meets this deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (end == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return;
    const ssize_t got = recv(client, buffer, sizeof(buffer), 0);
    if (got <= 0) return;
    head.append(buffer, static_cast<size_t>(got));
    end = head.find("\r\n\r\n");
    if (end == std::string::npos && head.size() > kMaxRequestHead) {
      const std::string reply = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
      return;
    }
  }
  std::string reply;
  {
    std::lock_guard lock(mutex_);
    reply = http_response(std::string_view(head).substr(0, end), page_);
  }
  for (size_t sent = 0; sent < reply.size();) {
    const ssize_t n = send(client, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace rsttrace
