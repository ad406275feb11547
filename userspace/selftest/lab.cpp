#include "selftest/lab.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "error.h"

namespace rsttrace::lab {
namespace {

constexpr const char* kPrefix = "rsttrace-lab-";

}  // namespace

std::string self_path() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) throw failed("find", "own executable", errno_text(errno));
  return std::string(path, static_cast<size_t>(n));
}

WorkDir::WorkDir() {
  std::string pattern = "/tmp/" + std::string(kPrefix) + std::to_string(getpid()) + "-XXXXXX";
  if (!mkdtemp(pattern.data())) throw failed("create", "lab directory", errno_text(errno));
  path_ = pattern;
  chmod(path_.c_str(), 0755);  // sshd (privsep user) must reach its config
}

WorkDir::~WorkDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WorkDir::write(const std::string& name, const std::string& text, unsigned mode) const {
  const std::string path = file(name);
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw failed("write", path, errno_text(errno));
  }
  chmod(path.c_str(), mode);
}

Namespace::Namespace(const WorkDir& dir, const std::string& tag)
    : dir_(dir), name_(kPrefix + std::to_string(getpid()) + "-" + tag) {
  lab::run_checked({"ip", "netns", "add", name_}, dir_.file("netns-add"));
  try {
    struct stat st {};
    if (stat(("/run/netns/" + name_).c_str(), &st) != 0) throw failed("stat", "/run/netns/" + name_, errno_text(errno));
    inode_ = static_cast<uint32_t>(st.st_ino);
    run_checked({"ip", "link", "set", "lo", "up"});
    run_checked({"ip", "-6", "addr", "add", std::string(kServer6) + "/128", "dev", "lo", "nodad"});
    run_checked({"ip", "-6", "addr", "add", std::string(kClient6) + "/128", "dev", "lo", "nodad"});
    const std::string range = std::to_string(kClientPort) + " " + std::to_string(kClientPort);
    run_checked({"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=" + range});
  } catch (...) {
    run_cleanup({"ip", "netns", "del", name_}, dir_.file("netns-del"));
    throw;
  }
}

Namespace::~Namespace() {
  // Whatever still runs inside (sshd children, clients) goes first.
  const Result pids = run_cleanup({"ip", "netns", "pids", name_}, dir_.file("netns-pids"));
  size_t start = 0;
  while (start < pids.out.size()) {
    const size_t end = pids.out.find('\n', start);
    const int pid = std::atoi(pids.out.substr(start, end - start).c_str());
    if (pid > 0) kill(pid, SIGKILL);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  run_cleanup({"ip", "netns", "del", name_}, dir_.file("netns-del"));
}

std::vector<std::string> Namespace::exec(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  return argv;
}

Result Namespace::run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
  return lab::run(exec(argv), dir_.file(name_ + "-run" + std::to_string(++runs_)), timeout);
}

Result Namespace::run_checked(const std::vector<std::string>& argv) const {
  return lab::run_checked(exec(argv), dir_.file(name_ + "-run" + std::to_string(++runs_)));
}

void Namespace::wait_socket(const std::string& state, const std::string& filter, const std::string& contains,
                            const std::string& what) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    const Result ss = run({"ss", "-Htnp", "state", state, filter});
    if (ss.exit_code == 0 && ss.out.find(contains) != std::string::npos) return;
    sleep_checked(std::chrono::milliseconds(20));
  }
  throw failed("wait for", what, "not seen within 15 s");
}

namespace {

// Entries of `directory` named rsttrace-lab-<pid>-... whose selftest is gone.
std::vector<std::string> stale_entries(const char* directory) {
  std::vector<std::string> stale;
  DIR* dir = opendir(directory);
  if (!dir) return stale;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind(kPrefix, 0) != 0) continue;
    const int pid = std::atoi(name.c_str() + std::char_traits<char>::length(kPrefix));
    if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) continue;  // its selftest still runs
    stale.push_back(name);
  }
  closedir(dir);
  return stale;
}

}  // namespace

void remove_stale_leftovers() {
  for (const auto& name : stale_entries("/tmp")) {
    std::error_code ec;
    std::filesystem::remove_all("/tmp/" + name, ec);
  }
  const std::vector<std::string> stale = stale_entries("/run/netns");
  WorkDir scratch;
  for (const auto& name : stale) {
    const Result pids = run_cleanup({"ip", "netns", "pids", name}, scratch.file("pids"));
    std::string pid_list = pids.out;
    for (char& c : pid_list)
      if (c == '\n') c = ' ';
    if (!pid_list.empty()) run_cleanup({"sh", "-c", "kill -9 " + pid_list}, scratch.file("kill"));
    run_cleanup({"ip", "netns", "del", name}, scratch.file("del"));
  }
}

Sshd::Sshd(const Namespace& ns, const WorkDir& dir, const SshdSettings& settings) {
  for (const char* file : {"/etc/hosts.allow", "/etc/hosts.deny"})
    if (access(file, F_OK) != 0)
      throw failed("set up", "TCP wrappers files", std::string(file) + " is missing (is libwrap0 installed?)");
  const std::string tag = "sshd" + std::to_string(settings.port);
  dir.write(tag + ".hosts.allow", settings.hosts_allow, 0644);
  dir.write(tag + ".hosts.deny", settings.hosts_deny, 0644);
  lab::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.file(tag + ".host_key")},
                   dir.file(tag + "-keygen"));
  std::string config = "Port " + std::to_string(settings.port) +
                       "\n"
                       "HostKey " + dir.file(tag + ".host_key") +
                       "\n"
                       "PidFile " + dir.file(tag + ".pid") +
                       "\n"
                       "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                       "LogLevel VERBOSE\n";
  for (const auto& line : settings.config) config += line + "\n";
  dir.write(tag + ".config", config, 0644);
  // In a mount namespace of its own: the wrapper files and /run are the lab's.
  const std::string script = "set -e\n"
                             "mount --bind \"$1\" /etc/hosts.allow\n"
                             "mount --bind \"$2\" /etc/hosts.deny\n"
                             "mount -t tmpfs -o mode=0755 rsttrace-lab /run\n"
                             "mkdir -m 0755 /run/sshd\n"
                             "exec /usr/sbin/sshd -D -e -f \"$3\"\n";
  process_ = std::make_unique<Child>(
      ns.exec({"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sshd-lab",
               dir.file(tag + ".hosts.allow"), dir.file(tag + ".hosts.deny"), dir.file(tag + ".config")}),
      dir.file(tag));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    if (!process_->running()) throw failed("start", "sshd", "it exited: " + process_->err());
    const Result ss = ns.run({"ss", "-Htln", "sport = :" + std::to_string(settings.port)});
    if (ss.exit_code == 0 && !ss.out.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) throw failed("start", "sshd", "not listening after 15 s");
    sleep_checked(std::chrono::milliseconds(20));
  }
}

Sshd::~Sshd() = default;

Result ssh_client(const Namespace& ns, const std::string& bind, const std::string& host, uint16_t port,
                  int connect_timeout_s) {
  return ns.run({"ssh", "-b", bind, "-p", std::to_string(port), "-o", "BatchMode=yes", "-o",
                 "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o",
                 "ConnectTimeout=" + std::to_string(connect_timeout_s), "-o", "ConnectionAttempts=1",
                 "rsttrace-selftest@" + host, "true"},
                std::chrono::seconds(connect_timeout_s + 30));
}

std::unique_ptr<Child> start_raw_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::vector<std::string>& args) {
  std::vector<std::string> argv{self_path(), "lab-client"};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Child>(ns.exec(argv), dir.file(tag));
}

}  // namespace rsttrace::lab
