#include "explain/probe_listener.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "fd.h"

namespace rsttrace::explain {
namespace {

std::string read_proc(const std::string& path, size_t max) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return "";
  std::string text(max, '\0');
  const ssize_t n = read(fd.get(), text.data(), max);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

// When the process started (unix seconds): /proc/PID/stat's starttime (field
// 22, clock ticks after boot) and /proc/stat's btime. 0 when unknown.
int64_t process_start(uint32_t pid) {
  const std::string stat = read_proc("/proc/" + std::to_string(pid) + "/stat", 4096);
  const size_t comm_end = stat.rfind(')');  // the name may hold spaces and ')'
  if (comm_end == std::string::npos) return 0;
  size_t at = comm_end + 2;
  for (int field = 3; field < 22 && at < stat.size(); ++field) {
    at = stat.find(' ', at);
    if (at == std::string::npos) return 0;
    ++at;
  }
  const unsigned long long ticks = std::strtoull(stat.c_str() + std::min(at, stat.size()), nullptr, 10);
  const std::string proc_stat = read_proc("/proc/stat", 1 << 16);
  const size_t btime = proc_stat.find("\nbtime ");
  if (btime == std::string::npos || ticks == 0) return 0;
  const long hz = sysconf(_SC_CLK_TCK);
  return std::strtoll(proc_stat.c_str() + btime + 7, nullptr, 10) + static_cast<int64_t>(ticks / static_cast<unsigned long long>(hz > 0 ? hz : 100));
}

struct Tail {
  std::string text;
  int64_t mtime = 0;
  bool cut = false;
};

// The last kMaxLogBytes of a regular file, from its first whole line.
std::optional<Tail> read_tail(SystemAccess& access, const std::string& path, std::string& why) {
  Fd fd(access.open_read(path));
  if (!fd) {
    why = path + ": not there or not readable";
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    why = path + ": not a regular file";
    return std::nullopt;
  }
  Tail tail;
  tail.mtime = st.st_mtim.tv_sec;
  const off_t size = st.st_size;
  const off_t start = size > static_cast<off_t>(kMaxLogBytes) ? size - static_cast<off_t>(kMaxLogBytes) : 0;
  tail.text.resize(static_cast<size_t>(size - start));
  size_t got = 0;
  while (got < tail.text.size()) {
    const ssize_t n = pread(fd.get(), tail.text.data() + got, tail.text.size() - got, start + static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  tail.text.resize(got);
  if (start > 0) {
    tail.cut = true;
    const size_t newline = tail.text.find('\n');
    tail.text.erase(0, newline == std::string::npos ? tail.text.size() : newline + 1);
  }
  return tail;
}

}  // namespace

Result<std::vector<ListeningSocket>> read_diag_listeners(int family) {
  Fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!sock) return Failure{"failed to open a sock_diag socket: " + errno_text(errno)};
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};  // the kernel answers at once; never wait forever
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  constexpr uint32_t kSequence = 1;
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = kSequence;
  message.request.sdiag_family = static_cast<uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << 10;  // TCP_LISTEN
  if (send(sock.get(), &message, sizeof(message), 0) < 0) return Failure{"failed to ask sock_diag: " + errno_text(errno)};
  std::vector<ListeningSocket> sockets;
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  for (int datagrams = 0; datagrams < 10000; ++datagrams) {
    const ssize_t n = recv(sock.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) return Failure{"failed to read sock_diag's answer: " + errno_text(errno)};
    const auto done = parse_inet_diag_dump(buffer.data(), static_cast<size_t>(n), kSequence, sockets);
    if (!done) return Failure{"failed to read sock_diag's answer: " + done.reason()};
    if (*done) return sockets;
  }
  return Failure{"failed to read sock_diag's answer: it did not end"};
}

SshdLogFacts read_sshd_log(const ListenerProcess& listener, const ClientAddress& client, SystemAccess& access) {
  SshdLogFacts facts;
  const std::string proc = "/proc/" + std::to_string(listener.pid);
  PenaltyClock clock;
  clock.now = time(nullptr);
  clock.listener_start = process_start(listener.pid);
  std::tm local{};
  localtime_r(&clock.now, &local);
  // Its standard error first (sshd -D -e under a supervisor, -E FILE), then the
  // syslog file of its root. Its stderr is read only for a root-owned listener:
  // a user's process could point it at a file it may not read itself.
  struct stat owner {};
  std::vector<std::pair<std::string, std::string>> sources;  // path, as named
  if (stat(proc.c_str(), &owner) == 0 && owner.st_uid == 0)
    sources.emplace_back(proc + "/fd/2", "its standard error (" + proc + "/fd/2)");
  sources.emplace_back(proc + "/root/var/log/auth.log", proc + "/root/var/log/auth.log");
  std::string notes;
  for (const auto& [path, name] : sources) {
    std::string why;
    auto tail = read_tail(access, path, why);
    if (!tail) {
      notes += (notes.empty() ? "" : "; ") + why;
      continue;
    }
    // A regular file sshd only writes: the year of its BSD-syslog lines is this year's.
    const auto log = parse_sshd_log(tail->text, listener.pid, local.tm_year + 1900);
    if (!log) {
      notes += (notes.empty() ? "" : "; ") + name + ": " + log.reason();
      continue;
    }
    clock.log_mtime = tail->mtime;
    facts.read = true;
    facts.source += (facts.source.empty() ? "" : " and ") + name + (tail->cut ? " (its last 1 MiB)" : "");
    facts.lines += log->lines;
    facts.penalty_lines += log->events.size();
    const PenaltyVerdict verdict = judge_penalty(*log, client.family, client.addr, clock);
    if (verdict.state > facts.penalty.state) facts.penalty = verdict;
    if (facts.penalty.state == PenaltyVerdict::State::Active) break;
  }
  if (!facts.read) facts.note = "no log of it could be read (" + notes + ")";
  return facts;
}

}  // namespace rsttrace::explain
