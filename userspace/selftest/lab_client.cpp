#include "selftest/lab_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace rsttrace {
namespace {

bool make_address(const std::string& addr, uint16_t port, sockaddr_storage& out, socklen_t& length) {
  out = {};
  if (addr.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(*v6);
    return inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  length = sizeof(*v4);
  return inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1;
}

// "\r\n" written on the command line means CR LF.
std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      const char c = text[++i];
      out += c == 'r' ? '\r' : c == 'n' ? '\n' : c;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Reads until a newline, EOF or an error; returns false on EOF/error (reported).
bool read_line(int fd) {
  char c;
  for (;;) {
    const ssize_t n = read(fd, &c, 1);
    if (n == 1 && c == '\n') return true;
    if (n == 1) continue;
    std::fprintf(stderr, n == 0 ? "read: closed by peer\n" : "read: %s\n", std::strerror(errno));
    return false;
  }
}

// Waits (at most a minute) until `path` exists: the lab's signal that the server is ready for it.
bool wait_for_file(const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  struct stat st{};
  while (stat(path.c_str(), &st) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "lab-client: %s did not appear\n", path.c_str());
      return false;
    }
    poll(nullptr, 0, 5);
  }
  return true;
}

// The server closed its end: send `data` into the closed connection and
// report the reset that answers it (from the server's TIME_WAIT socket). Reads
// only repeat the end of file: the reset shows as an error on the socket, which
// the kernel gives as EPIPE in CLOSE_WAIT (tcp_reset()).
int send_after_close(int fd, const std::string& data) {
  if (send(fd, data.data(), data.size(), MSG_NOSIGNAL) < 0) {
    std::fprintf(stderr, "write: %s\n", std::strerror(errno));
    return 1;
  }
  pollfd pfd{fd, 0, 0};  // POLLERR and POLLHUP only
  if (poll(&pfd, 1, 10'000) <= 0) {
    std::fprintf(stderr, "no reset within 10 s\n");
    return 1;
  }
  int error = 0;
  socklen_t length = sizeof(error);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  std::fprintf(stderr, "reset after the write: %s\n", error ? std::strerror(error) : "no error");
  return 1;
}

}  // namespace

int run_lab_client(const LabClientOptions& options) {
  sockaddr_storage target{}, local{};
  socklen_t target_length = 0, local_length = 0;
  if (!make_address(options.connect, options.port, target, target_length)) {
    std::fprintf(stderr, "lab-client: bad address %s\n", options.connect.c_str());
    return 2;
  }
  const int fd = socket(target.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return 2;
  if (!options.bind.empty()) {
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!make_address(options.bind, options.bind_port, local, local_length) ||
        bind(fd, reinterpret_cast<sockaddr*>(&local), local_length) != 0) {
      std::fprintf(stderr, "bind: %s\n", std::strerror(errno));
      return 2;
    }
  }
  if (!options.connect_when.empty() && !wait_for_file(options.connect_when)) return 2;
  if (connect(fd, reinterpret_cast<sockaddr*>(&target), target_length) != 0) {
    std::fprintf(stderr, "connect: %s\n", std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "connected\n");
  if (options.read_first && !read_line(fd)) return 1;
  if (!options.send.empty()) {
    const std::string data = unescape(options.send);
    if (write(fd, data.data(), data.size()) < 0) std::fprintf(stderr, "write: %s\n", std::strerror(errno));
  }
  if (!options.later.empty()) {
    if (!options.send_when.empty() && !wait_for_file(options.send_when)) return 2;
    const std::string data = unescape(options.later);
    if (send(fd, data.data(), data.size(), MSG_NOSIGNAL) < 0) std::fprintf(stderr, "write: %s\n", std::strerror(errno));
  }
  if (options.linger0) {
    const linger abort_close{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
    close(fd);
    std::fprintf(stderr, "aborted with a reset\n");
    return 0;
  }
  // Hold the connection (or read until it ends), reporting how it ended.
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.hold_seconds);
  char buffer[4096];
  bool answered = false;
  while (options.hold_seconds <= 0 || std::chrono::steady_clock::now() < end) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0 && options.until_answered && !answered) {
      // The peer answered what was sent: end cleanly, with nothing left unread (no reset).
      answered = true;
      shutdown(fd, SHUT_WR);
      std::fprintf(stderr, "answered; half-closed\n");
    }
    if (n > 0) continue;
    std::fprintf(stderr, n == 0 ? "read: closed by peer\n" : "read: %s\n", std::strerror(errno));
    if (n == 0 && !options.after_close.empty()) return send_after_close(fd, unescape(options.after_close));
    return n == 0 ? 0 : 1;
  }
  close(fd);
  return 0;
}

}  // namespace rsttrace
