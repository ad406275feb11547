#include "privsep/broker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <spdlog/spdlog.h>

#include "error.h"
#include "privsep/fd_passing.h"
#include "fd.h"

namespace rsttrace {
namespace {

// Requests: op ('R' run, 'O' open, 'S' sshd -T), u32 count, then count strings as (u32 length, bytes).
// Replies: 'R': u8 ok, u64 length, bytes; 'O': u8 ok with the descriptor as SCM_RIGHTS;
// 'S' (one string, the listener's pid): u8 ok, u64 length, then the output or the reason.
// File ops (serve_file_op(), no strings): 'A' open the capture file, 'T' rotate
// it and open the new one: u8 ok with the descriptor, then u16 length and the
// error; 'Y' write the ready file, 'U' remove it: u8 ok, u16 length, error.
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

// The reply to an open: 1 and the descriptor, or 0 alone.
bool send_fd(int socket, bool ok, int fd) { return send_word_and_fd(socket, ok ? 1 : 0, ok ? fd : -1); }

// The descriptor, or -1 (refused, or the broker is gone).
int receive_fd(int socket) {
  int32_t ok = 0;
  int fd = -1;
  if (receive_word_and_fd(socket, ok, fd) && ok == 1 && fd >= 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

bool send_error(int socket, const std::string& error) {
  const uint16_t length = static_cast<uint16_t>(std::min<size_t>(error.size(), 1024));
  return write_all(socket, &length, sizeof(length)) && (length == 0 || write_all(socket, error.data(), length));
}

bool receive_error(int socket, std::string& error) {
  uint16_t length = 0;
  if (!read_all(socket, &length, sizeof(length)) || length > 1024) return false;
  error.assign(length, '\0');
  return length == 0 || read_all(socket, error.data(), length);
}

// The capture and ready files, only at the paths fixed when the broker was
// forked: the collector names an operation, never a path. False: the
// request is unknown or the reply could not be sent (the broker then exits).
bool serve_file_op(int socket, char op, const BrokerFiles& files, std::optional<FileIdentity>& ready) {
  if (op == 'A' || op == 'T') {
    OpenedFile opened = Failure{"no capture file was named at start"};
    if (!files.capture.empty())
      opened = open_capture_path(files.capture, op == 'T' ? CaptureOpen::Rotate : CaptureOpen::Append,
                                 files.capture_keep, files.collector_uid);
    return opened ? send_fd(socket, true, opened->get()) && send_error(socket, "")
                  : send_fd(socket, false, -1) && send_error(socket, opened.reason());
  }
  if (op == 'Y' || op == 'U') {
    std::string error = files.ready.empty() ? "no ready file was named at start" : "";
    if (error.empty() && op == 'Y') {
      const Result<FileIdentity> written = write_ready_file(files.ready, getppid());  // the collector's pid
      if (written) ready = *written;
      else error = written.reason();
    } else if (error.empty()) {
      if (!ready || !remove_ready_file(files.ready, *ready)) error = "not the file written at start, or gone";
      ready.reset();
    }
    const uint8_t ok = error.empty();
    return write_all(socket, &ok, 1) && send_error(socket, error);
  }
  return false;
}

// As receive_fd(), telling a refusal (ok false, fd -1) from a lost connection (false).
bool receive_fd_status(int socket, bool& ok, int& fd) {
  int32_t word = 0;
  if (!receive_word_and_fd(socket, word, fd)) return false;
  ok = word == 1 && fd >= 0;
  if (!ok && fd >= 0) {
    close(fd);
    fd = -1;
  }
  return true;
}

// The broker's loop: one request at a time until the collector closes the socket.
[[noreturn]] void serve(int socket, const BrokerFiles& files) {
  DirectAccess direct;
  std::optional<FileIdentity> ready;
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
    } else if (op == 'S' && count == 1) {
      // Only a pid: what runs, where and how is decided here (sshd_test_mode.h), from the process itself.
      pid_t pid = 0;
      const std::string& digits = strings[0];
      const bool number = !digits.empty() && digits.size() <= 9 && digits[0] != '0' &&
                          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (number) pid = static_cast<pid_t>(std::stol(digits));
      const Result<std::string> answer = number ? direct.sshd_test_output(pid) : Failure{"not a pid"};
      const std::string& text = answer ? *answer : answer.reason();
      const uint8_t ok = answer.ok();
      const uint64_t length = text.size();
      if (!write_all(socket, &ok, 1) || !write_all(socket, &length, sizeof(length)) ||
          (length && !write_all(socket, text.data(), length)))
        _exit(0);
    } else if (op == 'O' && count == 1) {
      const int fd = broker_allows_path(strings[0]) ? direct.open_read(strings[0]) : -1;
      const bool sent = send_fd(socket, fd >= 0, fd);
      if (fd >= 0) close(fd);
      if (!sent) _exit(0);
    } else if (count == 0 && serve_file_op(socket, op, files, ready)) {
      // served
    } else {
      _exit(0);  // a collector that sends garbage is not served further
    }
  }
}

}  // namespace

BrokerAccess::BrokerAccess(const char* name, BrokerFiles files) {
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
    prctl(PR_SET_NAME, name);
    // Nothing of the collector's: no BPF objects, capture file or metrics socket.
    if (dup2(pair[1], 3) < 0) _exit(1);
    // Not the collector's stdin and stdout: a broker that outlives it for a
    // moment must not hold its output pipe open (stderr stays, for its errors).
    if (const int null = open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      if (null > 3) close(null);
    }
    close_range(4, ~0U, 0);
    fcntl(3, F_SETFD, FD_CLOEXEC);  // the commands it runs get no channel to the collector
    serve(3, files);
  }
  close(pair[1]);
  socket_.reset(pair[0]);
}

BrokerAccess::~BrokerAccess() {
  socket_.reset();  // the broker reads EOF and exits
  if (reaped_) return;
  // A broker busy in a command must not hold up rsttrace's exit: it is waited
  // for briefly, then left to read EOF once its command ends (each is bounded
  // by capture_output()'s timeout). PR_SET_PDEATHSIG is no help here: once
  // this process has dropped privileges, the kernel's permission check stops
  // its death signal to a root broker.
  for (int tries = 0; tries < 10; ++tries) {
    int status = 0;
    const pid_t waited = waitpid(pid_, &status, WNOHANG);
    if (waited == pid_ || (waited < 0 && errno != EINTR)) return;
    usleep(10'000);
  }
}

bool BrokerAccess::alive() {
  if (exited_) return false;
  std::lock_guard lock(reap_);
  int status = 0;
  const pid_t waited = waitpid(pid_, &status, WNOHANG);
  if (waited == pid_ || (waited < 0 && errno == ECHILD)) {
    reaped_ = true;
    const std::string how = waited != pid_          ? "reaped elsewhere"
                            : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                  : "status " + std::to_string(WEXITSTATUS(status));
    exited(how);
  }
  return !exited_;
}

void BrokerAccess::exited(const std::string& how) {
  if (exited_.exchange(true)) return;
  // Not restarted: forking a new broker needs the privileges this process gave up for good.
  spdlog::warn("broker exited ({}): provenance unavailable; it cannot be restarted without privileges "
               "(restart rsttrace to get it back)",
               how);
}

void BrokerAccess::cancel() {
  cancelled_ = true;
  shutdown(socket_.get(), SHUT_RDWR);
}

void BrokerAccess::lost_connection() {
  if (cancelled_) return;  // we hung up: not the broker's death
  // EOF or EPIPE: the broker is gone or going; its exit status follows within moments.
  for (int tries = 0; tries < 50 && alive(); ++tries) usleep(10'000);
  exited("connection lost");  // no-op once reaped
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
  if (write_all(socket_.get(), message.data(), message.size())) return true;
  lost_connection();
  return false;
}

std::optional<std::string> BrokerAccess::run(const std::vector<std::string>& argv) {
  if (exited_ || cancelled_) return std::nullopt;
  std::lock_guard lock(exchange_);
  uint8_t ok = 0;
  uint64_t length = 0;
  if (!send_request('R', argv)) return std::nullopt;
  if (!read_all(socket_.get(), &ok, 1) || !read_all(socket_.get(), &length, sizeof(length))) {
    lost_connection();
    return std::nullopt;
  }
  std::string out(length, '\0');
  if (length && !read_all(socket_.get(), out.data(), length)) {
    lost_connection();
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return out;
}

Result<std::string> BrokerAccess::sshd_test_output(pid_t pid) {
  const Failure gone{"the broker exited"};
  if (exited_ || cancelled_) return gone;
  std::lock_guard lock(exchange_);
  uint8_t ok = 0;
  uint64_t length = 0;
  if (!send_request('S', {std::to_string(pid)})) return gone;
  // The broker caps the output (64 KiB) and the reason; more is a broken broker.
  if (!read_all(socket_.get(), &ok, 1) || !read_all(socket_.get(), &length, sizeof(length)) || length > (1u << 20)) {
    lost_connection();
    return gone;
  }
  std::string text(length, '\0');
  if (length && !read_all(socket_.get(), text.data(), length)) {
    lost_connection();
    return gone;
  }
  if (!ok) return Failure{text};
  return text;
}

int BrokerAccess::open_read(const std::string& path) {
  if (exited_ || cancelled_) return -1;
  std::lock_guard lock(exchange_);
  if (!send_request('O', {path})) return -1;
  return receive_fd(socket_.get());
}

OpenedFile BrokerAccess::open_capture(CaptureOpen how) {
  const Failure gone{"the broker exited"};
  if (exited_) return gone;
  std::lock_guard lock(exchange_);
  if (!send_request(how == CaptureOpen::Rotate ? 'T' : 'A', {})) return gone;
  bool ok = false;
  int received = -1;
  std::string error;
  const bool answered = receive_fd_status(socket_.get(), ok, received);
  Fd fd(received);  // closed on every path but success
  if (!answered || !receive_error(socket_.get(), error)) {
    lost_connection();
    return gone;
  }
  if (!ok) return Failure{error};
  return fd;
}

Result<void> BrokerAccess::write_ready() { return ready_op('Y'); }

bool BrokerAccess::remove_ready() { return ready_op('U').ok(); }

Result<void> BrokerAccess::ready_op(char op) {
  const Failure gone{"the broker exited"};
  if (exited_) return gone;
  std::lock_guard lock(exchange_);
  uint8_t ok = 0;
  std::string error;
  if (!send_request(op, {})) return gone;
  if (!read_all(socket_.get(), &ok, 1) || !receive_error(socket_.get(), error)) {
    lost_connection();
    return gone;
  }
  if (!ok) return Failure{error};
  return {};
}

}  // namespace rsttrace
