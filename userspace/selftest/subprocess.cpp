#include "selftest/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "error.h"

namespace rsttrace::lab {

void block_stop_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
}

void throw_if_interrupted() {
  sigset_t pending;
  sigpending(&pending);
  if (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) || sigismember(&pending, SIGHUP))
    throw Interrupted{};
}

void sleep_checked(std::chrono::milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    throw_if_interrupted();
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(duration, std::chrono::milliseconds(20)));
  }
}

bool wait_stopped(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const size_t end = stat.rfind(')');
    if (stat.empty()) return false;
    if (end != std::string::npos && end + 2 < stat.size() && stat[end + 2] == 'T') return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleep_checked(std::chrono::milliseconds(5));
  }
}

int time_scale() {
  const char* text = getenv("RSTTRACE_LAB_TIME_SCALE");
  if (!text || !*text) return 1;
  char* end = nullptr;
  const long factor = strtol(text, &end, 10);
  return *end == '\0' && factor >= 1 && factor <= 20 ? static_cast<int>(factor) : 1;
}

std::chrono::seconds scaled(std::chrono::seconds base) { return base * time_scale(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Child::Child(const std::vector<std::string>& argv, const std::string& output_prefix)
    : out_path_(output_prefix + ".out"), err_path_(output_prefix + ".err") {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw failed("start", argv.front(), errno_text(errno));
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed selftest takes its children along
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the lab's children take signals normally
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvp(args[0], args.data());
    dprintf(2, "failed to run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid_, pid_);  // also from here: no race with the first kill
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), status_(other.status_), reaped_(other.reaped_), out_path_(std::move(other.out_path_)),
      err_path_(std::move(other.err_path_)) {
  other.pid_ = -1;
}

Child::~Child() {
  if (pid_ <= 0 || reaped_) return;
  kill(-pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
}

bool Child::running() {
  if (reaped_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

void Child::signal(int sig) {
  if (!reaped_) kill(-pid_, sig);
}

std::string Child::out() const { return read_file(out_path_); }
std::string Child::err() const { return read_file(err_path_); }

Result Child::wait(std::chrono::milliseconds timeout, Wait mode) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Result result;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      reaped_ = true;
      result.timed_out = true;
      break;
    }
    if (mode == Wait::Interruptible)
      sleep_checked(std::chrono::milliseconds(10));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid_, SIGKILL);  // leftovers of its group (sshd children, helpers)
  if (!result.timed_out) result.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  result.out = out();
  result.err = err();
  return result;
}

Result run(const std::vector<std::string>& argv, const std::string& output_prefix, std::chrono::milliseconds timeout,
           Wait mode) {
  Child child(argv, output_prefix);
  return child.wait(timeout, mode);
}

Result run_cleanup(const std::vector<std::string>& argv, const std::string& output_prefix) {
  return run(argv, output_prefix, std::chrono::seconds(30), Wait::ToTheEnd);
}

Result run_checked(const std::vector<std::string>& argv, const std::string& output_prefix,
                   std::chrono::milliseconds timeout) {
  Result result = run(argv, output_prefix, timeout);
  if (result.exit_code != 0) {
    std::string command;
    for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
    std::string why = result.timed_out ? "timed out" : "exit " + std::to_string(result.exit_code);
    const std::string err = result.err.substr(0, result.err.find('\n'));
    if (!err.empty()) why += ": " + err;
    throw failed("run", command, why);
  }
  return result;
}

}  // namespace rsttrace::lab
