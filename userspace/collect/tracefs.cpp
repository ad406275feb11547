#include "collect/tracefs.h"

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "error.h"

namespace rsttrace {
namespace {

// The places libbpf looks for tracepoint ids.
bool tracefs_visible() {
  return access("/sys/kernel/tracing/events", F_OK) == 0 ||
         access("/sys/kernel/debug/tracing/events", F_OK) == 0;
}

}  // namespace

Result<void> ensure_tracefs() {
  if (tracefs_visible()) return {};
  if (unshare(CLONE_NEWNS) != 0) return Failure{"tracefs is not mounted and unshare(CLONE_NEWNS) failed: " + errno_text(errno)};
  // Slave: the host's later mounts still reach rsttrace; its own stay private.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    return Failure{"failed to make rsttrace's mount namespace a slave: " + errno_text(errno)};
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
    return Failure{"tracefs is not mounted and mounting it privately failed: " + errno_text(errno)};
  return {};
}

}  // namespace rsttrace
