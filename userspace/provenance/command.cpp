#include "provenance/command.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

namespace rsttrace {
namespace {

constexpr const char* kCommandPath = "/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

std::optional<std::string> capture_output(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                          int inherit_fd, int cancel_fd, int* wait_status) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return std::nullopt;
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(pipe_fds[1], 1);
    dup2(null, 2);
    if (inherit_fd == 3)
      fcntl(3, F_SETFD, 0);
    else if (inherit_fd >= 0 && dup2(inherit_fd, 3) != 3)
      _exit(127);
    // The readers run as root: found on the system's own PATH, never one a
    // caller's environment names, and with a fixed locale (their output is parsed).
    setenv("PATH", kCommandPath, 1);
    char path_entry[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char locale_entry[] = "LC_ALL=C";
    char* environment[] = {path_entry, locale_entry, nullptr};
    execvpe(args[0], args.data(), environment);
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;  // or cancelled, or too much output: killed, a failure
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfds[2] = {{pipe_fds[0], POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    if (poll(pfds, cancel_fd >= 0 ? 2 : 1, static_cast<int>(left.count())) <= 0) continue;
    if (cancel_fd >= 0 && pfds[1].revents) {
      timed_out = true;
      break;
    }
    char buffer[65536];
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > kMaxCommandOutput) {
      timed_out = true;
      break;
    }
  }
  close(pipe_fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (wait_status && !timed_out) *wait_status = status;
  if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

namespace {
constexpr std::string_view kKilledBySignal = "\x01rsttrace: killed by signal ";
}

std::string killed_by_signal_output(int signal) { return std::string(kKilledBySignal) + std::to_string(signal); }

std::optional<int> killed_by_signal(std::string_view output) {
  if (!output.starts_with(kKilledBySignal) || output.size() > kKilledBySignal.size() + 3) return std::nullopt;
  int signal = 0;
  for (const char c : output.substr(kKilledBySignal.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    signal = signal * 10 + (c - '0');
  }
  return signal > 0 ? std::optional<int>(signal) : std::nullopt;
}

std::string netns_path(uint32_t inode, SystemAccess& access) {
  auto is_it = [&](const std::string& path) {
    const auto st = access.stat_file(path);
    return st && st->st_ino == inode;
  };
  if (DIR* dir = opendir("/run/netns")) {
    while (dirent* entry = readdir(dir)) {
      const std::string path = std::string("/run/netns/") + entry->d_name;
      if (entry->d_name[0] != '.' && is_it(path)) {
        closedir(dir);
        return path;
      }
    }
    closedir(dir);
  }
  if (DIR* dir = opendir("/proc")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      const std::string path = std::string("/proc/") + entry->d_name + "/ns/net";
      if (is_it(path)) {
        closedir(dir);
        return path;
      }
    }
    closedir(dir);
  }
  return "";
}

}  // namespace rsttrace
