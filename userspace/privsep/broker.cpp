#include "privsep/broker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace rsttrace {
namespace {

// Requests: op ('R' run, 'O' open), u32 count, then count strings as (u32 length, bytes).
// Replies: 'R': u8 ok, u64 length, bytes; 'O': u8 ok with the descriptor as SCM_RIGHTS.
constexpr uint32_t kMaxStrings = 64;
constexpr uint32_t kMaxString = 4096;

bool write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool send_fd(int socket, char status, int fd) {
  iovec iov{&status, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  return sendmsg(socket, &msg, MSG_NOSIGNAL) == 1;
}

int receive_fd(int socket) {
  char status = 0;
  iovec iov{&status, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(socket, &msg, MSG_CMSG_CLOEXEC) != 1 || status != 1) return -1;
  const cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

// The broker's loop: one request at a time until the collector closes the socket.
[[noreturn]] void serve(int socket) {
  DirectAccess direct;
  for (;;) {
    char op = 0;
    uint32_t count = 0;
    if (!read_all(socket, &op, 1) || !read_all(socket, &count, sizeof(count)) || count > kMaxStrings) _exit(0);
    std::vector<std::string> strings(count);
    for (auto& string : strings) {
      uint32_t length = 0;
      if (!read_all(socket, &length, sizeof(length)) || length > kMaxString) _exit(0);
      string.resize(length);
      if (!read_all(socket, string.data(), length)) _exit(0);
    }
    if (op == 'R') {
      std::optional<std::string> out;
      if (broker_allows_command(strings)) out = direct.run(strings);
      const uint8_t ok = out.has_value();
      const uint64_t length = out ? out->size() : 0;
      if (!write_all(socket, &ok, 1) || !write_all(socket, &length, sizeof(length)) ||
          (length && !write_all(socket, out->data(), length)))
        _exit(0);
    } else if (op == 'O' && count == 1) {
      const int fd = broker_allows_path(strings[0]) ? direct.open_read(strings[0]) : -1;
      const bool sent = send_fd(socket, fd >= 0 ? 1 : 0, fd);
      if (fd >= 0) close(fd);
      if (!sent) _exit(0);
    } else {
      _exit(0);  // a collector that sends garbage is not served further
    }
  }
}

}  // namespace

BrokerAccess::BrokerAccess() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw failed("start", "privileged broker", errno_text(errno));
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    const int err = errno;
    close(pair[0]);
    close(pair[1]);
    throw failed("start", "privileged broker", errno_text(err));
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    prctl(PR_SET_NAME, "rsttrace-broker");
    // Nothing of the collector's: no BPF objects, capture file or metrics socket.
    if (dup2(pair[1], 3) < 0) _exit(1);
    close_range(4, ~0U, 0);
    serve(3);
  }
  close(pair[1]);
  socket_ = pair[0];
}

BrokerAccess::~BrokerAccess() {
  close(socket_);  // the broker reads EOF and exits
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

bool BrokerAccess::send_request(char op, const std::vector<std::string>& strings) {
  if (strings.size() > kMaxStrings) return false;
  std::string message(1, op);
  const uint32_t count = static_cast<uint32_t>(strings.size());
  message.append(reinterpret_cast<const char*>(&count), sizeof(count));
  for (const auto& string : strings) {
    if (string.size() > kMaxString) return false;
    const uint32_t length = static_cast<uint32_t>(string.size());
    message.append(reinterpret_cast<const char*>(&length), sizeof(length));
    message += string;
  }
  return write_all(socket_, message.data(), message.size());
}

std::optional<std::string> BrokerAccess::run(const std::vector<std::string>& argv) {
  uint8_t ok = 0;
  uint64_t length = 0;
  if (!send_request('R', argv) || !read_all(socket_, &ok, 1) || !read_all(socket_, &length, sizeof(length)))
    return std::nullopt;
  std::string out(length, '\0');
  if (length && !read_all(socket_, out.data(), length)) return std::nullopt;
  if (!ok) return std::nullopt;
  return out;
}

int BrokerAccess::open_read(const std::string& path) {
  if (!send_request('O', {path})) return -1;
  return receive_fd(socket_);
}

}  // namespace rsttrace
