#include "selftest/userland.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "error.h"
#include "selftest/apt_sources.h"
#include "selftest/subprocess.h"

namespace rsttrace::lab {
namespace {

constexpr const char* kSuite = "trixie";
constexpr const char* kStamp = ".rsttrace-lab-stamp";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

std::string text_of(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string host_codename() {
  for (const auto& line : split(text_of("/etc/os-release"), '\n'))
    if (line.rfind("VERSION_CODENAME=", 0) == 0) {
      std::string value = line.substr(17);
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      return value;
    }
  return "";
}

std::string machine_mirror() {
  std::vector<std::pair<std::string, std::string>> files;
  if (access("/etc/apt/sources.list", R_OK) == 0) files.emplace_back("sources.list", text_of("/etc/apt/sources.list"));
  std::vector<std::string> names;
  if (DIR* dir = opendir("/etc/apt/sources.list.d")) {
    while (dirent* entry = readdir(dir)) names.push_back(entry->d_name);
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    if (ends_with(name, ".list") || ends_with(name, ".sources"))
      files.emplace_back(name, text_of("/etc/apt/sources.list.d/" + name));
  return debian_mirror(files, host_codename());
}

std::vector<std::string> required_packages() { return split(kDebian13Packages, ','); }

// Why `root` is not a usable Debian 13 root, or empty.
std::string invalid_root_reason(const std::string& root) {
  if (access(root.c_str(), F_OK) != 0) return "there is no root at " + root;
  if (std::string unsafe = unsafe_path_reason(root); !unsafe.empty()) return unsafe;
  if (text_of(root + "/etc/debian_version").rfind("13.", 0) != 0) return root + " is not Debian 13 (etc/debian_version)";
  // Our builds leave a stamp with the package list; a root built by hand
  // with the same debootstrap line has none, and is judged by dpkg alone.
  const std::string stamp = text_of(root + "/" + kStamp);
  const std::string status = text_of(root + "/var/lib/dpkg/status");
  for (const auto& package : required_packages()) {
    if (!stamp.empty() && stamp.find("packages: " + std::string(kDebian13Packages) + "\n") == std::string::npos)
      return root + "/" + kStamp + " lists other packages than " + kDebian13Packages;
    const size_t at = status.find("Package: " + package + "\n");
    const size_t next = status.find("\n\n", at);
    if (at == std::string::npos ||
        status.substr(at, next == std::string::npos ? std::string::npos : next - at).find("Status: install ok installed") ==
            std::string::npos)
      return "the root at " + root + " lacks the package " + package;
  }
  for (const char* program : {"/usr/sbin/sshd", "/usr/bin/fail2ban-server", "/usr/sbin/nft"})
    if (access((root + program).c_str(), X_OK) != 0) return "the root at " + root + " lacks " + program;
  return "";
}

// flock, polled so that a stop signal still ends the wait.
void lock(int fd, int operation) {
  for (;;) {
    if (flock(fd, operation | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK && errno != EINTR) throw failed("lock", "the userland cache", errno_text(errno));
    sleep_checked(std::chrono::milliseconds(200));
  }
}

}  // namespace

Debian13Root::Debian13Root(const std::string& cache, bool rebuild, bool verbose) {
  // The cache itself: made root-only if missing, refused if anyone else could write to it or above it.
  if (mkdir(cache.c_str(), 0700) != 0 && errno != EEXIST) {
    reason_ = "cannot create " + cache + ": " + errno_text(errno);
    return;
  }
  if (std::string unsafe = unsafe_path_reason(cache); !unsafe.empty()) {
    reason_ = "refusing the userland cache: " + unsafe;
    return;
  }
  const std::string root = cache + "/debian13", lock_path = cache + "/debian13.lock";
  lock_.reset(open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock_) {
    reason_ = "cannot open " + lock_path + ": " + errno_text(errno);
    return;
  }
  lock(lock_.get(), LOCK_SH);
  std::string invalid = rebuild ? "a rebuild was asked for" : invalid_root_reason(root);
  if (!invalid.empty()) {
    // One builder at a time; whoever waited finds the root built.
    flock(lock_.get(), LOCK_UN);
    lock(lock_.get(), LOCK_EX);
    if (!rebuild) invalid = invalid_root_reason(root);
    if (!invalid.empty()) {
      if (verbose) std::fprintf(stderr, "rsttrace: building the Debian 13 root (%s)\n", invalid.c_str());
      if (std::string error = build(cache, verbose); !error.empty()) {
        reason_ = "no Debian 13 root (" + invalid + ") and building it failed: " + error;
        return;
      }
      built_ = true;
    }
    flock(lock_.get(), LOCK_UN);
    lock(lock_.get(), LOCK_SH);
    invalid = invalid_root_reason(root);
  }
  if (!invalid.empty()) {
    reason_ = invalid;
    return;
  }
  path_ = root;
}

std::string Debian13Root::build(const std::string& cache, bool verbose) {
  (void)verbose;
  const std::string mirror = machine_mirror();
  if (mirror.empty()) return "no Debian mirror for this release in /etc/apt/sources.list(.d)";
  if (access("/usr/sbin/debootstrap", X_OK) != 0) return "debootstrap is not installed (scripts/install-deps --test)";
  std::string temp = cache + "/debian13.build-XXXXXX";
  if (!mkdtemp(temp.data())) return "cannot create a build directory in " + cache + ": " + errno_text(errno);
  chmod(temp.c_str(), 0755);
  auto remove = [](const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  };
  const std::string log = cache + "/debian13.build";
  const Result result = run({"debootstrap", "--variant=minbase", std::string("--include=") + kDebian13Packages, kSuite,
                             temp, mirror},
                            log, std::chrono::minutes(20));
  if (result.exit_code != 0) {
    remove(temp);
    const std::string tail = result.out.size() > 400 ? result.out.substr(result.out.size() - 400) : result.out;
    return "debootstrap " + std::string(kSuite) + " from " + mirror + " exited " + std::to_string(result.exit_code) +
           " (log " + log + ".out): " + tail;
  }
  std::ofstream(temp + "/" + kStamp) << "packages: " << kDebian13Packages << "\nsuite: " << kSuite
                                      << "\nmirror: " << mirror << "\n";
  // The new root replaces the old in one rename; the old is then removed.
  const std::string root = cache + "/debian13";
  std::string old;
  if (access(root.c_str(), F_OK) == 0) {
    old = cache + "/debian13.old-XXXXXX";
    if (!mkdtemp(old.data()) || rename(root.c_str(), (old + "/root").c_str()) != 0) {
      remove(temp);
      return "cannot move the old root aside: " + errno_text(errno);
    }
  }
  if (rename(temp.c_str(), root.c_str()) != 0) {
    remove(temp);
    return "cannot rename the new root into place: " + errno_text(errno);
  }
  if (!old.empty()) remove(old);
  return "";
}

}  // namespace rsttrace::lab
