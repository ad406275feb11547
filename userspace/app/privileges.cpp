#include "app/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <string>

#include "error.h"

namespace rsttrace {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t effective_capabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

// capset(2) for this thread, without libcap.
void set_capabilities(uint64_t permitted, uint64_t effective) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int word = 0; word < 2; ++word) {
    data[word].permitted = static_cast<uint32_t>(permitted >> (32 * word));
    data[word].effective = static_cast<uint32_t>(effective >> (32 * word));
  }
  if (syscall(SYS_capset, &header, data) != 0) throw failed("drop", "privileges", "capset: " + errno_text(errno));
}

int last_capability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = 40;
  in >> last;
  return last;
}

}  // namespace

void require_bpf_privileges() {
  const uint64_t caps = effective_capabilities();
  auto has = [caps](int cap) { return (caps >> cap) & 1; };
  if (has(kCapSysAdmin) || (has(kCapBpf) && has(kCapPerfmon))) return;
  throw failed("load", "BPF programs",
               geteuid() == 0 ? "root without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN in its effective set"
                              : "permission denied; rsttrace needs root, or CAP_BPF and CAP_PERFMON");
}

std::string default_collector_user() {
  if (geteuid() != 0) return "";
  for (const char* name : {"rsttrace", "nobody"})
    if (getpwnam(name)) return name;
  throw failed("drop", "privileges", "no user rsttrace or nobody (create rsttrace, or use --user or --keep-privileges)");
}

DroppedPrivileges drop_privileges(const std::string& user, const std::function<bool()>& maps_readable) {
  DroppedPrivileges dropped;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!user.empty()) {
    errno = 0;
    const passwd* entry = getpwnam(user.c_str());
    if (!entry) throw failed("drop", "privileges", "no user " + user);
    uid = entry->pw_uid;
    gid = entry->pw_gid;
    dropped.user = user;
  }
  // While CAP_SETPCAP is still held: no capability can come back through exec.
  for (int cap = 0; cap <= last_capability(); ++cap)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      throw failed("drop", "privileges", "bounding set: " + errno_text(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    throw failed("drop", "privileges", "ambient set: " + errno_text(errno));
  if (!user.empty()) {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) throw failed("drop", "privileges", "keepcaps: " + errno_text(errno));
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
      throw failed("drop", "privileges", "switch to user " + user + ": " + errno_text(errno));
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  const uint64_t cap_bpf = 1ULL << kCapBpf;
  set_capabilities(cap_bpf, 0);
  if (maps_readable()) {
    set_capabilities(0, 0);
  } else {
    set_capabilities(cap_bpf, cap_bpf);
    if (!maps_readable()) throw failed("drop", "privileges", "the BPF maps cannot be read without them");
    dropped.kept_cap_bpf = true;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw failed("drop", "privileges", "no_new_privs: " + errno_text(errno));
  return dropped;
}

std::string privilege_summary() {
  std::ifstream status("/proc/self/status");
  std::string line, summary;
  while (std::getline(status, line)) {
    for (const char* key : {"Uid:", "CapEff:", "CapPrm:", "CapBnd:", "NoNewPrivs:"}) {
      if (line.rfind(key, 0) != 0) continue;
      std::string value = line.substr(std::string(key).size());
      value.erase(0, value.find_first_not_of(" \t"));
      if (std::string(key) == "Uid:") value = value.substr(0, value.find_first_of(" \t"));
      summary += (summary.empty() ? "" : ", ") + std::string(key, std::string(key).size() - 1) + " " + value;
    }
  }
  return summary;
}

}  // namespace rsttrace
