#include "privsep/sshd_test_mode.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "attribute/sshd_limits.h"
#include "clock.h"
#include "fd.h"
#include "privsep/safe_access.h"

namespace rsttrace {
namespace {

constexpr auto kWallLimit = std::chrono::seconds(2);
constexpr uint64_t kRerunAfterNs = 60'000'000'000ULL;  // at most once a minute per listener
constexpr size_t kMaxErrorText = 512;
constexpr const char* kDefaultConfig = "/etc/ssh/sshd_config";

bool plain_absolute_path(std::string_view path) {
  if (path.size() < 2 || path.size() > 1024 || path[0] != '/' || path.back() == '/') return false;
  if (!std::all_of(path.begin(), path.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '+' || c == '/';
      }))
    return false;
  const std::string with_end = std::string(path) + "/";
  return with_end.find("//") == std::string::npos && with_end.find("/./") == std::string::npos &&
         with_end.find("/../") == std::string::npos;
}

// The words of a command line: its NUL-separated arguments, or the words of
// sshd's listener title (setproctitle() writes one string over argv).
std::vector<std::string_view> command_words(std::string_view cmdline) {
  std::vector<std::string_view> words;
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.remove_suffix(1);
  if (cmdline.find('\0') == std::string_view::npos && cmdline.starts_with("sshd: ")) {
    cmdline.remove_prefix(6);
    if (const size_t title = cmdline.find(" [listener]"); title != std::string_view::npos) cmdline = cmdline.substr(0, title);
    for (size_t start = 0; start <= cmdline.size();) {
      const size_t space = std::min(cmdline.find(' ', start), cmdline.size());
      if (space > start) words.push_back(cmdline.substr(start, space - start));
      start = space + 1;
    }
    return words;
  }
  for (size_t start = 0; start <= cmdline.size();) {
    const size_t nul = std::min(cmdline.find('\0', start), cmdline.size());
    words.push_back(cmdline.substr(start, nul - start));
    start = nul + 1;
  }
  return words;
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The start of /proc/PID/NAME (proc: /proc/PID), NUL-terminated; false if unread.
template <size_t Size>
bool read_proc(int proc, const char* name, char (&buffer)[Size]) {
  Fd file(openat(proc, name, O_RDONLY | O_CLOEXEC));
  const ssize_t n = file ? read(file.get(), buffer, Size - 1) : -1;
  if (n <= 0) return false;
  buffer[n] = '\0';
  return true;
}

// /proc/PID/stat's starttime (field 22), after the command name's last ')'.
bool start_ticks(int proc, uint64_t& ticks) {
  char buffer[1024];
  if (!read_proc(proc, "stat", buffer)) return false;
  const char* p = strrchr(buffer, ')');
  if (!p) return false;
  // ") S ppid ..." : field 3 is the state; starttime is field 22.
  for (int field = 2; field < 22 && p; ++field) p = strchr(p + 1, ' ');
  unsigned long long value = 0;
  if (!p || std::sscanf(p + 1, "%llu", &value) != 1) return false;
  ticks = value;
  return true;
}

// CapEff, CapBnd and Seccomp of /proc/PID/status (proc_dir: /proc/PID, or /proc/self).
struct Privileges {
  uint64_t effective = 0, bounding = 0;
  unsigned seccomp = 0;
};

bool privileges(int proc_dir, Privileges& out) {
  char buffer[8192];
  if (!read_proc(proc_dir, "status", buffer)) return false;
  int found = 0;
  for (char* line = buffer; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : nullptr) {
    unsigned long long value = 0;
    if (std::sscanf(line, "CapEff: %llx", &value) == 1) out.effective = value, found |= 1;
    if (std::sscanf(line, "CapBnd: %llx", &value) == 1) out.bounding = value, found |= 2;
    if (std::sscanf(line, "Seccomp: %llu", &value) == 1) out.seccomp = static_cast<unsigned>(value), found |= 4;
  }
  return (found & 3) == 3;  // Seccomp is absent without CONFIG_SECCOMP: none
}

// In the child, between fork() and exec: raw syscalls, no allocation.
[[noreturn]] void child_fails(int status_fd, const char* what, const char* why) {
  if (write(status_fd, what, strlen(what)) < 0 || (why && write(status_fd, why, strlen(why)) < 0)) {
    // Nothing to tell it with: the parent reports an empty status as a failed exec.
  }
  _exit(127);
}

struct ChildFds {
  int proc, root, mnt, exe, null, out, err, status;
};

[[noreturn]] void run_child(const ChildFds& fds, const struct stat& exe_st, const char* config, char* const argv[]) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (fds.mnt >= 0 && setns(fds.mnt, CLONE_NEWNS) != 0) child_fails(fds.status, "cannot join its mount namespace", nullptr);
  if (fchdir(fds.root) != 0 || chroot(".") != 0 || chdir("/") != 0) child_fails(fds.status, "cannot enter its root", nullptr);
  // Its executable's path as its own root names it (the link is read relative to ours, now that root).
  char link[4096];
  const ssize_t n = readlinkat(fds.proc, "exe", link, sizeof(link) - 1);
  if (n <= 0) child_fails(fds.status, "its executable's path cannot be read", nullptr);
  link[n] = '\0';
  if (const char* why = root_owned_path_problem(fds.root, link, &exe_st)) child_fails(fds.status, "its executable: ", why);
  if (const char* why = root_owned_path_problem(fds.root, config, nullptr))
    child_fails(fds.status, "its configuration file: ", why);
  // Out of the way of 0-4 first: a source may sit on a target.
  const int sources[] = {fds.null, fds.out, fds.err, fds.exe, fds.status};
  int moved[5];
  for (int i = 0; i < 5; ++i)
    if ((moved[i] = fcntl(sources[i], F_DUPFD, 10)) < 0) child_fails(fds.status, "cannot arrange descriptors", nullptr);
  for (int i = 0; i < 5; ++i)
    if (dup2(moved[i], i) < 0) child_fails(fds.status, "cannot arrange descriptors", nullptr);
  close_range(5, ~0U, 0);
  fcntl(3, F_SETFD, FD_CLOEXEC);  // sshd does not inherit its own executable ...
  fcntl(4, F_SETFD, FD_CLOEXEC);  // ... nor the status pipe: closed by a successful exec
  const struct {
    int resource;
    rlim_t soft, hard;
  } limits[] = {{RLIMIT_CPU, 1, 2}, {RLIMIT_AS, 512u << 20, 512u << 20}, {RLIMIT_FSIZE, 0, 0}, {RLIMIT_CORE, 0, 0},
                {RLIMIT_NOFILE, 64, 64}};
  for (const auto& limit : limits) {
    const rlimit value{limit.soft, limit.hard};
    if (setrlimit(limit.resource, &value) != 0) child_fails(4, "cannot set its resource limits", nullptr);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fails(4, "cannot set no_new_privs", nullptr);
  char* const environment[] = {nullptr};
  syscall(SYS_execveat, 3, "", argv, environment, AT_EMPTY_PATH);
  child_fails(4, "cannot execute it: ", strerror(errno));
}

}  // namespace

std::string sshd_config_argument(std::string_view cmdline, bool* refused) {
  if (refused) *refused = false;
  const std::vector<std::string_view> words = command_words(cmdline);
  std::optional<std::string_view> config;
  // sshd's getopt options that take an argument (9.2 and 10.0 alike).
  constexpr std::string_view kWithArgument = "CEbcfghkopu";
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string_view word = words[i];
    if (word == "--") break;
    if (word.size() < 2 || word[0] != '-') continue;
    for (size_t at = 1; at < word.size(); ++at) {
      if (kWithArgument.find(word[at]) == std::string_view::npos) continue;
      std::string_view value = word.substr(at + 1);
      if (value.empty() && i + 1 < words.size()) value = words[++i];
      if (word[at] == 'f') config = value;  // the last -f wins, as in getopt
      break;
    }
  }
  if (!config) return "";
  if (plain_absolute_path(*config)) return std::string(*config);
  if (refused) *refused = true;
  return "";
}

Result<std::string> run_sshd_test_mode(pid_t pid, int cancel_fd) {
  Fd proc(open(("/proc/" + std::to_string(pid)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return Failure{"the listener is gone"};
  struct stat st {};
  if (fstatat(proc.get(), "ns/user", &st, 0) != 0) return Failure{"its user namespace cannot be read"};
  if (st.st_ino != own_user_ns())
    return Failure{"it runs in user namespace " + std::to_string(st.st_ino) + ", not the initial one"};
  uid_t uid = 0;
  gid_t gid = 0;
  if (!process_ids(proc.get(), uid, gid)) return Failure{"its credentials cannot be read"};
  if (uid != 0) return Failure{"it runs as uid " + std::to_string(uid) + ", not root"};
  // A container without a user namespace is uid 0 too, with fewer capabilities, a seccomp filter
  // or a pid namespace of its own: its binary must not run with the broker's whole root. So only a
  // listener already as privileged as the broker, for which running its sshd grants nothing new.
  Privileges theirs, ours;
  Fd self(open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!self || !privileges(proc.get(), theirs) || !privileges(self.get(), ours))
    return Failure{"its capabilities cannot be read"};
  if ((theirs.effective & ours.effective) != ours.effective || (theirs.bounding & ours.bounding) != ours.bounding)
    return Failure{"it holds fewer capabilities than rsttrace's broker (a container?)"};
  if (theirs.seccomp && !ours.seccomp) return Failure{"it runs under a seccomp filter (a container?)"};
  struct stat their_pid {}, our_pid {};
  if (fstatat(proc.get(), "ns/pid", &their_pid, 0) != 0 || fstatat(self.get(), "ns/pid", &our_pid, 0) != 0)
    return Failure{"its pid namespace cannot be read"};
  if (their_pid.st_ino != our_pid.st_ino) return Failure{"it runs in a pid namespace of its own (a container?)"};
  Fd exe(openat(proc.get(), "exe", O_RDONLY | O_CLOEXEC));
  struct stat exe_st {};
  if (!exe || fstat(exe.get(), &exe_st) != 0) return Failure{"its executable cannot be opened"};
  if (!S_ISREG(exe_st.st_mode)) return Failure{"its executable is not a regular file"};
  if (exe_st.st_uid != 0) return Failure{"its executable is owned by uid " + std::to_string(exe_st.st_uid) + ", not root"};
  if (exe_st.st_mode & 022) return Failure{"its executable is writable by its group or others"};
  Fd root(openat(proc.get(), "root", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Failure{"its root cannot be opened"};
  struct stat their_mnt {}, our_mnt {};
  if (fstatat(proc.get(), "ns/mnt", &their_mnt, 0) != 0 || stat("/proc/self/ns/mnt", &our_mnt) != 0)
    return Failure{"its mount namespace cannot be read"};
  Fd mnt(their_mnt.st_ino != our_mnt.st_ino ? openat(proc.get(), "ns/mnt", O_RDONLY | O_CLOEXEC) : -1);
  if (their_mnt.st_ino != our_mnt.st_ino && !mnt) return Failure{"its mount namespace cannot be opened"};
  std::string cmdline(4096, '\0');
  {
    Fd file(openat(proc.get(), "cmdline", O_RDONLY | O_CLOEXEC));
    const ssize_t n = file ? read(file.get(), cmdline.data(), cmdline.size()) : -1;
    if (n < 0) return Failure{"its command line cannot be read"};
    cmdline.resize(static_cast<size_t>(n));
  }
  bool refused_config = false;
  std::string config = sshd_config_argument(cmdline, &refused_config);
  if (refused_config) return Failure{"its -f argument is not an absolute plain path"};
  if (config.empty()) config = kDefaultConfig;
  Fd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  int out[2], err[2], status[2];
  if (!null || pipe2(out, O_CLOEXEC) != 0) return Failure{"cannot make its pipes"};
  Fd out_read(out[0]), out_write(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return Failure{"cannot make its pipes"};
  Fd err_read(err[0]), err_write(err[1]);
  if (pipe2(status, O_CLOEXEC) != 0) return Failure{"cannot make its pipes"};
  Fd status_read(status[0]), status_write(status[1]);
  std::string argv0 = "sshd", test = "-T", f = "-f";
  char* const argv[] = {argv0.data(), test.data(), f.data(), config.data(), nullptr};
  const ChildFds fds{proc.get(), root.get(), mnt.get(), exe.get(), null.get(), out[1], err[1], status[1]};
  const pid_t child = fork();
  if (child < 0) return Failure{"cannot fork: " + errno_text(errno)};
  if (child == 0) run_child(fds, exe_st, config.c_str(), argv);
  out_write.reset();
  err_write.reset();
  status_write.reset();

  std::string output, errors, child_said;
  const auto deadline = std::chrono::steady_clock::now() + kWallLimit;
  std::string stop;  // why it was killed
  for (;;) {
    pollfd polls[4] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}, {status_read.get(), POLLIN, 0},
                       {cancel_fd, POLLIN, 0}};
    if (!out_read && !err_read && !status_read) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      stop = "it did not finish within 2 s";
      break;
    }
    const int ready = poll(polls, 4, static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno != EINTR) {
      stop = "cannot wait for it";
      break;
    }
    if (polls[3].revents) {
      stop = "rsttrace is stopping";
      break;
    }
    struct Stream {
      Fd& fd;
      std::string& text;
      size_t cap;
    } streams[3] = {{out_read, output, kMaxSshdTestOutput + 1}, {err_read, errors, kMaxErrorText}, {status_read, child_said, kMaxErrorText}};
    for (int i = 0; i < 3; ++i) {
      if (!streams[i].fd || !polls[i].revents) continue;
      char buffer[8192];
      const ssize_t n = read(streams[i].fd.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        streams[i].fd.reset();
        continue;
      }
      streams[i].text.append(buffer, std::min(static_cast<size_t>(n), streams[i].cap - std::min(streams[i].cap, streams[i].text.size())));
    }
    if (output.size() > kMaxSshdTestOutput) {
      stop = "its output passed " + std::to_string(kMaxSshdTestOutput / 1024) + " KiB";
      break;
    }
  }
  // Its pipes are closed: it has ended, or it lingers without them (never past the deadline).
  int wait_status = 0;
  while (stop.empty()) {
    const pid_t waited = waitpid(child, &wait_status, WNOHANG);
    if (waited == child) break;
    if (waited < 0 && errno != EINTR) {
      stop = "cannot wait for it";
    } else if (std::chrono::steady_clock::now() >= deadline) {
      stop = "it did not finish within 2 s";
    } else {
      usleep(2000);
    }
  }
  if (!stop.empty()) {
    kill(child, SIGKILL);
    while (waitpid(child, &wait_status, 0) < 0 && errno == EINTR) {
    }
  }
  if (!stop.empty()) return Failure{stop};
  if (!child_said.empty()) return Failure{child_said};
  if (WIFSIGNALED(wait_status)) {
    const char* name = sigabbrev_np(WTERMSIG(wait_status));
    return Failure{std::string("sshd -T was killed by SIG") + (name ? name : "?")};
  }
  if (WEXITSTATUS(wait_status) != 0)
    return Failure{"sshd -T exited with status " + std::to_string(WEXITSTATUS(wait_status)) +
                   (errors.empty() ? "" : ": " + first_line(errors))};
  return output;
}

Result<std::string> SshdTestRuns::output(pid_t pid, int cancel_fd) {
  Identity identity;
  {
    Fd proc(open(("/proc/" + std::to_string(pid)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat exe {};
    if (!proc || !start_ticks(proc.get(), identity.start_ticks) || fstatat(proc.get(), "exe", &exe, 0) != 0)
      return Failure{"the listener is gone"};
    identity.exe_dev = exe.st_dev, identity.exe_ino = exe.st_ino;
  }
  const uint64_t now = monotonic_now_ns();
  auto found = entries_.find(pid);
  if (found != entries_.end() && found->second.identity == identity && now - found->second.run_ns < kRerunAfterNs)
    return found->second.answer;
  if (found == entries_.end() && entries_.size() >= kMaxEntries) {
    // The entry run longest ago makes room.
    entries_.erase(std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.run_ns < b.second.run_ns;
    }));
  }
  Entry& entry = entries_[pid];
  entry.identity = identity;
  entry.run_ns = now;
  entry.answer = run_sshd_test_mode(pid, cancel_fd);
  return entry.answer;
}

}  // namespace rsttrace
