#include "selftest/userland.h"

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

std::vector<std::string> required_packages() {
  std::vector<std::string> packages;
  std::istringstream list(kDebian13Packages);
  for (std::string package; std::getline(list, package, ',');) packages.push_back(package);
  return packages;
}

// Why `root` is not a usable Debian 13 root, or empty.
std::string invalid_root_reason(const std::string& root) {
  if (access(root.c_str(), F_OK) != 0) return "there is no root at " + root;
  if (std::string unsafe = unsafe_path_reason(root); !unsafe.empty()) return unsafe;
  if (read_file(root + "/etc/debian_version").rfind("13.", 0) != 0) return root + " is not Debian 13 (etc/debian_version)";
  // Judged by dpkg alone: a root that holds more than this build needs (one
  // built by a newer rsttrace, or by hand) serves it as well.
  const std::string status = read_file(root + "/var/lib/dpkg/status");
  for (const auto& package : required_packages()) {
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
  const std::string mirror = machine_debian_mirror();
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
