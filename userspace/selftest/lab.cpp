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
#include <iterator>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "error.h"

namespace rsttrace::lab {
namespace {

constexpr const char* kPrefix = "rsttrace-lab-";

}  // namespace

const char* userland_name(Userland userland) {
  return userland == Userland::Debian13 ? "debian13" : "debian12";
}

const char* placement_name(Placement placement) {
  switch (placement) {
    case Placement::Loopback: return "loopback";
    case Placement::Remote: return "remote";
    case Placement::RemoteNetns: return "remote-netns";
  }
  return "?";
}

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

Namespace::Namespace(const WorkDir& dir, const std::string& tag, UserlandRoot userland)
    : dir_(dir), name_(kPrefix + std::to_string(getpid()) + "-" + tag), userland_(std::move(userland)) {
  // To the end, not interruptible: a stop signal that killed `ip netns add`
  // half-way would leave its namespace with nobody to delete it. The next step
  // notices the signal, inside the try below that deletes it.
  if (const Result added = run_cleanup({"ip", "netns", "add", name_}, dir_.file("netns-add")); added.exit_code != 0)
    throw failed("add", "network namespace " + name_, added.err.substr(0, added.err.find('\n')));
  try {
    struct stat st {};
    if (stat(("/run/netns/" + name_).c_str(), &st) != 0) throw failed("stat", "/run/netns/" + name_, errno_text(errno));
    inode_ = static_cast<uint32_t>(st.st_ino);
    run_checked({"ip", "link", "set", "lo", "up"});
    run_checked({"ip", "-6", "addr", "add", std::string(kServer6) + "/128", "dev", "lo", "nodad"});
    run_checked({"ip", "-6", "addr", "add", std::string(kClient6) + "/128", "dev", "lo", "nodad"});
    set_client_ports(kClientPort, kClientPort);
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

void Namespace::set_client_ports(uint16_t low, uint16_t high) const {
  run_checked({"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=" + std::to_string(low) + " " + std::to_string(high)});
}

Result Namespace::run_checked(const std::vector<std::string>& argv) const {
  return lab::run_checked(exec(argv), dir_.file(name_ + "-run" + std::to_string(++runs_)));
}

void Namespace::wait_socket(const std::string& state, const std::string& filter, const std::string& contains,
                            const std::string& what) const {
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const Result ss = run({"ss", "-Htnp", "state", state, filter});
    if (ss.exit_code == 0 && ss.out.find(contains) != std::string::npos) return;
    sleep_checked(std::chrono::milliseconds(20));
  }
  throw failed("wait for", what, "not seen within " + std::to_string(limit.count()) + " s");
}

void link_remote(const Namespace& server, const Namespace& client) {
  client.server_ = &server;  // its clients' connections are explained in the server's namespace
  // Both ends are created inside the namespaces: no interface on the host.
  lab::run_checked({"ip", "-n", client.name(), "link", "add", "lab0", "type", "veth", "peer", "name", "lab0", "netns",
                    server.name()},
                   server.dir().file(client.name() + "-veth"));
  server.run_checked({"ip", "addr", "add", std::string(kRemoteServer4) + "/24", "dev", "lab0"});
  server.run_checked({"ip", "-6", "addr", "add", std::string(kRemoteServer6) + "/64", "dev", "lab0", "nodad"});
  server.run_checked({"ip", "link", "set", "lab0", "up"});
  client.run_checked({"ip", "addr", "add", std::string(kRemoteClient4) + "/24", "dev", "lab0"});
  client.run_checked({"ip", "addr", "add", std::string(kRemoteOtherClient4) + "/24", "dev", "lab0"});
  client.run_checked({"ip", "-6", "addr", "add", std::string(kRemoteClient6) + "/64", "dev", "lab0", "nodad"});
  client.run_checked({"ip", "link", "set", "lab0", "up"});
  // Usable once both ends have a carrier (the addresses skip DAD).
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (const Namespace* end : {&server, &client}) {
    while (end->run({"ip", "-br", "link", "show", "lab0"}).out.find("LOWER_UP") == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline)
        throw failed("link", "the remote client's namespace",
                     "no carrier on its veth after " + std::to_string(limit.count()) + " s");
      sleep_checked(std::chrono::milliseconds(20));
    }
  }
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

Sshd::Sshd(const Namespace& ns, const WorkDir& dir, const SshdSettings& settings) : ns_(ns), dir_(dir) {
  const std::string tag = "sshd" + std::to_string(settings.port);
  dir.write(tag + ".hosts.allow", settings.hosts_allow, 0644);
  dir.write(tag + ".hosts.deny", settings.hosts_deny, 0644);
  lab::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.file(tag + ".host_key")},
                   dir.file(tag + "-keygen"));
  log_path_ = dir.file(tag) + ".err";  // sshd -e logs to stderr, which Child keeps here
  if (ns.userland().userland == Userland::Debian13)
    start_debian13(settings, tag);
  else
    start_debian12(settings, tag);
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (!process_->running()) throw failed("start", "sshd", "it exited: " + process_->err());
    const Result ss = ns.run({"ss", "-Htln", "sport = :" + std::to_string(settings.port)});
    if (ss.exit_code == 0 && !ss.out.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("start", "sshd", "not listening after " + std::to_string(limit.count()) + " s");
    sleep_checked(std::chrono::milliseconds(20));
  }
}

namespace {

std::string sshd_config(const SshdSettings& settings, const std::string& host_key, const std::string& pid_file) {
  std::string config = "Port " + std::to_string(settings.port) + "\nHostKey " + host_key + "\nPidFile " + pid_file +
                       "\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n";
  for (const auto& line : settings.config) config += line + "\n";
  return config;
}

}  // namespace

void Sshd::start_debian12(const SshdSettings& settings, const std::string& tag) {
  for (const char* file : {"/etc/hosts.allow", "/etc/hosts.deny"})
    if (access(file, F_OK) != 0)
      throw failed("set up", "TCP wrappers files", std::string(file) + " is missing (is libwrap0 installed?)");
  dir_.write(tag + ".config", sshd_config(settings, dir_.file(tag + ".host_key"), dir_.file(tag + ".pid")), 0644);
  // In a mount namespace of its own, over a copy-on-write /etc: the wrapper
  // files (and whatever fail2ban's actions write, e.g. sed -i's temporary
  // files) are the lab's, never the host's; /run too.
  const std::string upper = dir_.file(tag + ".etc-upper"), work = dir_.file(tag + ".etc-work");
  lab::run_checked({"mkdir", "-p", upper, work}, dir_.file(tag + "-mkdir"));
  const std::string script = "set -e\n"
                             "mount -t overlay rsttrace-lab -o lowerdir=/etc,upperdir=\"$4\",workdir=\"$5\" /etc\n"
                             "cat \"$1\" > /etc/hosts.allow\n"
                             "cat \"$2\" > /etc/hosts.deny\n"
                             "mount -t tmpfs -o mode=0755 rsttrace-lab /run\n"
                             "mkdir -m 0755 /run/sshd\n"
                             "exec /usr/sbin/sshd -D -e -f \"$3\"\n";
  process_ = std::make_unique<Child>(
      ns_.exec({"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sshd-lab",
                dir_.file(tag + ".hosts.allow"), dir_.file(tag + ".hosts.deny"), dir_.file(tag + ".config"), upper,
                work}),
      dir_.file(tag));
}

void Sshd::start_debian13(const SshdSettings& settings, const std::string& tag) {
  // The cached root is the overlay's read-only lower layer: every write (the
  // scenario's /etc files, host keys, fail2ban's actions) lands in the lab's
  // upper directory, and the mounts exist only in this private namespace.
  // The lab directory is bound at its own path inside the root, so the logs
  // and configurations fail2ban reads have the same names inside and out.
  dir_.write(tag + ".config", sshd_config(settings, "/etc/ssh/ssh_host_ed25519_key", "/run/sshd-lab.pid"), 0644);
  const std::string upper = dir_.file(tag + ".root-upper"), work = dir_.file(tag + ".root-work"),
                    merged = dir_.file(tag + ".root");
  lab::run_checked({"mkdir", "-p", upper, work, merged}, dir_.file(tag + "-mkdir"));
  const std::string script =
      "set -e\n"
      "root=$1 upper=$2 work=$3 merged=$4 lab=$5 tag=$6\n"
      "mount -t overlay rsttrace-lab -o \"lowerdir=$root,upperdir=$upper,workdir=$work\" \"$merged\"\n"
      "mount -t proc proc \"$merged/proc\"\n"
      "mount --bind /dev \"$merged/dev\"\n"
      "mount -t tmpfs -o mode=0755 rsttrace-lab \"$merged/run\"\n"
      "mkdir -m 0755 \"$merged/run/sshd\"\n"
      "mkdir -p \"$merged$lab\"\n"
      "mount --bind \"$lab\" \"$merged$lab\"\n"
      "cat \"$lab/$tag.hosts.allow\" > \"$merged/etc/hosts.allow\"\n"
      "cat \"$lab/$tag.hosts.deny\" > \"$merged/etc/hosts.deny\"\n"
      "cat \"$lab/$tag.config\" > \"$merged/etc/ssh/sshd_config\"\n"
      "install -m 0600 \"$lab/$tag.host_key\" \"$merged/etc/ssh/ssh_host_ed25519_key\"\n"
      "install -m 0644 \"$lab/$tag.host_key.pub\" \"$merged/etc/ssh/ssh_host_ed25519_key.pub\"\n"
      "exec chroot \"$merged\" /usr/sbin/sshd -D -e\n";
  process_ = std::make_unique<Child>(ns_.exec({"unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                                               "sshd-lab", ns_.userland().root, upper, work, merged, dir_.path(), tag}),
                                     dir_.file(tag));
}

Sshd::~Sshd() = default;

std::vector<std::string> Sshd::userland_exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> full{"nsenter", "-t", std::to_string(pid()), "-m", "-n"};
  // -w too: in its root the old working directory does not exist (sh: getcwd() failed).
  if (ns_.userland().userland == Userland::Debian13) full.insert(full.end(), {"-r", "-w"});
  full.push_back("--");
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

Result Sshd::run(const std::vector<std::string>& argv) const {
  return lab::run(userland_exec(argv), dir_.file(ns_.name() + "-userland" + std::to_string(++runs_)));
}

Result Sshd::run_checked(const std::vector<std::string>& argv) const {
  return lab::run_checked(userland_exec(argv), dir_.file(ns_.name() + "-userland" + std::to_string(++runs_)));
}

void Sshd::wait_startups(unsigned count) const {
  const std::string want = "[listener] " + std::to_string(count) + " of ";
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/cmdline");
    const std::string title((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (title.find(want) != std::string::npos) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("wait for", "sshd's listener title", "no `" + want + "` within " + std::to_string(limit.count()) +
                                                            " s: " + title);
    sleep_checked(std::chrono::milliseconds(20));
  }
}

Fail2ban::Fail2ban(const Namespace& ns, const WorkDir& dir, const Sshd& sshd, const std::string& jail,
                   const std::string& action)
    : sshd_(sshd), dir_(dir), jail_(jail), config_(dir.file("fail2ban")), socket_(dir.file("fail2ban.sock")) {
  // fail2ban's own actions and filters (the userland's: read from the cached
  // root, never written there), without Debian's enabled sshd jail.
  lab::run_checked({"cp", "-a", ns.userland().root + "/etc/fail2ban", config_}, dir.file("f2b-copy"));
  lab::run_checked({"sh", "-c", "rm -f \"$1\"/jail.d/* \"$1\"/*.local", "f2b", config_}, dir.file("f2b-clean"));
  dir.write("fail2ban/fail2ban.local",
            "[Definition]\nloglevel = INFO\nlogtarget = " + dir.file("fail2ban.log") + "\nsocket = " + socket_ +
                "\npidfile = " + dir.file("fail2ban.pid") + "\ndbfile = :memory:\n",
            0644);
  // sshd -e writes bare messages: no syslog prefix, no time (fail2ban then uses its own clock).
  dir.write("fail2ban/filter.d/rsttrace-lab-sshd.conf",
            "[Definition]\n"
            "failregex = ^Connection closed by (?:authenticating|invalid) user \\S+ <HOST> port \\d+ \\[preauth\\]\\s*$\n"
            "            ^Invalid user \\S* from <HOST> port \\d+\\s*$\n"
            "datepattern = {NONE}\n",
            0644);
  dir.write("fail2ban/jail.local",
            "[DEFAULT]\nbackend = polling\nbantime = 600\nfindtime = 600\nmaxretry = 2\n\n[" + jail +
                "]\nenabled = true\nport = 22\nprotocol = tcp\nfilter = rsttrace-lab-sshd\nlogpath = " + sshd.log_path() +
                "\naction = " + action + "\n",
            0644);
  // In sshd's mount namespace (and root): its /etc/hosts.deny is the lab's copy.
  process_ = std::make_unique<Child>(sshd.userland_exec({"fail2ban-server", "-f", "-x", "-c", config_, "-s", socket_,
                                                         "-p", dir.file("fail2ban.pid")}),
                                     dir.file("fail2ban-server"));
  const auto limit = scaled(std::chrono::seconds(30));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (!process_->running()) throw failed("start", "fail2ban", "it exited: " + process_->err());
    const Result ping = lab::run(client({"ping"}), dir.file("f2b-ping"));
    if (ping.exit_code == 0 && status().find(jail) != std::string::npos) break;
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("start", "fail2ban", "no jail " + jail + " after " + std::to_string(limit.count()) + " s");
    sleep_checked(std::chrono::milliseconds(100));
  }
}

Fail2ban::~Fail2ban() {
  run_cleanup(client({"stop"}), dir_.file("f2b-stop"));
}

std::vector<std::string> Fail2ban::client(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"fail2ban-client", "-c", config_, "-s", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  // The same userland's client (its protocol is the server's).
  return sshd_.userland_exec(argv);
}

void Fail2ban::ban(const std::string& address) const {
  lab::run_checked(client({"set", jail_, "banip", address}), dir_.file("f2b-banip"));
}

std::string Fail2ban::status() const { return lab::run(client({"status"}), dir_.file("f2b-status")).out; }

void Fail2ban::wait_banned(const std::string& address, const std::function<bool()>& in_effect) const {
  // fail2ban lists an address as banned before its action has run: wait for
  // the action's effect itself.
  const auto limit = scaled(std::chrono::seconds(30));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (in_effect()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string log = read_file(dir_.file("fail2ban.log"));
      throw failed("wait for", "fail2ban to ban " + address,
                   "no effect after " + std::to_string(limit.count()) + " s: " + status() + "\nfail2ban.log ends: " + log.substr(log.size() > 1500 ? log.size() - 1500 : 0));
    }
    sleep_checked(std::chrono::milliseconds(50));
  }
}

void Namespace::explain_before_connect(const std::string& client, uint16_t port) const {
  if (server_) return server_->explain_before_connect(client, port);
  const std::string address = client.find(':') != std::string::npos ? "[" + client + "]" : client;
  const Result result = lab::run({self_path(), "explain", address + ":" + std::to_string(kClientPort), "--port",
                                  std::to_string(port), "--netns", "/run/netns/" + name_, "--json"},
                                 dir_.file("explain-" + std::to_string(++runs_)), scaled(std::chrono::seconds(60)));
  const auto record = nlohmann::json::parse(result.out, nullptr, false);
  const std::string said = result.err.empty() ? result.out : result.err;
  std::string verdict = "error: " + said.substr(0, said.find('\n'));
  if (!record.is_discarded() && record.is_object() && record.value("verdict", "").size())
    verdict = record["verdict"].get<std::string>() + (record.value("certain", true) ? "" : " (probable)");
  predictions_.emplace_back(client + " " + std::to_string(port), verdict);
}

std::optional<std::string> Namespace::predicted(const std::string& client, uint16_t port) const {
  for (auto it = predictions_.rbegin(); it != predictions_.rend(); ++it)
    if (it->first == client + " " + std::to_string(port)) return it->second;
  return std::nullopt;
}

namespace {

std::vector<std::string> ssh_argv(const std::string& bind, const std::string& host, uint16_t port,
                                  int connect_timeout_s) {
  return {"ssh", "-b", bind, "-p", std::to_string(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
          "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=" + std::to_string(connect_timeout_s),
          "-o", "ConnectionAttempts=1", "rsttrace-selftest@" + host, "true"};
}

}  // namespace

Result ssh_client(const Namespace& ns, const std::string& bind, const std::string& host, uint16_t port,
                  int connect_timeout_s) {
  ns.explain_before_connect(bind, port);
  return ns.run(ssh_argv(bind, host, port, connect_timeout_s), std::chrono::seconds(connect_timeout_s + 30));
}

std::unique_ptr<Child> start_ssh_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::string& bind, const std::string& host, uint16_t port,
                                        int connect_timeout_s) {
  ns.explain_before_connect(bind, port);
  return std::make_unique<Child>(ns.exec(ssh_argv(bind, host, port, connect_timeout_s)), dir.file(tag));
}

std::unique_ptr<Child> start_raw_client(const Namespace& ns, const WorkDir& dir, const std::string& tag,
                                        const std::vector<std::string>& args) {
  std::vector<std::string> argv{self_path(), "lab-client"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto option = [&](const std::string& name, const std::string& otherwise) {
    const auto it = std::find(args.begin(), args.end(), name);
    return it != args.end() && it + 1 != args.end() ? *(it + 1) : otherwise;
  };
  if (const std::string bind = option("--bind", ""); !bind.empty())
    ns.explain_before_connect(bind, static_cast<uint16_t>(std::stoi(option("--port", "22"))));
  return std::make_unique<Child>(ns.exec(argv), dir.file(tag));
}

}  // namespace rsttrace::lab
