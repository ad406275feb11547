#include "privsep/safe_access.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "fd.h"
#include "privsep/fd_passing.h"
#include "provenance/command.h"

namespace rsttrace {
namespace {

int sys_openat2(int dir, const char* path, const open_how& how) {
  return static_cast<int>(syscall(SYS_openat2, dir, path, &how, sizeof(how)));
}

// Opens `relative` below `root` and returns a read-only descriptor, or -errno.
int open_in_root(int root, const std::string& relative) {
  open_how how{};
  // RESOLVE_IN_ROOT: a symlink (etc/hosts.deny -> /etc/shadow) or ".." is
  // resolved inside the process's root, never in ours. NO_MAGICLINKS: no
  // /proc/PID/fd/N or /proc/PID/root inside it leads out either. O_PATH
  // first: nothing is opened for real (a FIFO, a device with side effects on
  // open) before it is known to be a regular file.
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  Fd path(sys_openat2(root, relative.c_str(), how));
  if (!path) return -errno;
  struct stat first {};
  if (fstat(path.get(), &first) != 0) return -errno;
  if (!S_ISREG(first.st_mode)) return -EINVAL;  // FIFOs would block, devices are no hosts file
  // Re-open the very inode found (the path may have changed since), with the
  // caller's own permission checks; non-blocking, never a controlling tty.
  Fd file(open(("/proc/self/fd/" + std::to_string(path.get())).c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!file) return -errno;
  struct stat second {};
  if (fstat(file.get(), &second) != 0) return -errno;
  if (second.st_dev != first.st_dev || second.st_ino != first.st_ino) return -EAGAIN;
  return file.release();
}

// 0 and the descriptor, or -errno alone.
bool send_fd(int socket, int fd_or_error) {
  return send_word_and_fd(socket, fd_or_error < 0 ? fd_or_error : 0, fd_or_error);
}

// The descriptor, or -errno (-EIO when the child said nothing usable).
int receive_fd(int socket) {
  int32_t status = -EIO;
  int fd = -1;
  if (!receive_word_and_fd(socket, status, fd)) return -EIO;
  if (status < 0 || fd < 0) {
    if (fd >= 0) close(fd);
    return status < 0 ? status : -EIO;
  }
  return fd;
}

}  // namespace

// The process's real uid and gid as the initial user namespace sees them
// (/proc/PID/status, read by the broker, which lives there).
bool process_ids(int proc_dir, uid_t& uid, gid_t& gid) {
  Fd status(openat(proc_dir, "status", O_RDONLY | O_CLOEXEC));
  if (!status) return false;
  char buffer[4096];
  const ssize_t n = read(status.get(), buffer, sizeof(buffer) - 1);
  if (n <= 0) return false;
  buffer[n] = '\0';
  std::istringstream in(buffer);
  std::string line;
  bool have_uid = false, have_gid = false;
  while (std::getline(in, line)) {
    unsigned long value = 0;
    if (std::sscanf(line.c_str(), "Uid: %lu", &value) == 1) uid = static_cast<uid_t>(value), have_uid = true;
    if (std::sscanf(line.c_str(), "Gid: %lu", &value) == 1) gid = static_cast<gid_t>(value), have_gid = true;
  }
  return have_uid && have_gid;
}

namespace {

// open_in_root() in a child that holds only uid/gid and no capabilities, so
// that the open grants nothing that user could not open already.
int open_in_root_as(int root, const std::string& relative, uid_t uid, gid_t gid) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0) return -errno;
  Fd mine(pair[0]), theirs(pair[1]);
  const pid_t child = fork();
  if (child < 0) return -errno;
  if (child == 0) {
    // Raw syscalls: this thread's credentials, nothing of libc's thread sync.
    int result = -EPERM;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2] = {};
    if (syscall(SYS_setgroups, 0, nullptr) == 0 && syscall(SYS_setresgid, gid, gid, gid) == 0 &&
        syscall(SYS_setresuid, uid, uid, uid) == 0 && syscall(SYS_capset, &header, none) == 0)
      result = open_in_root(root, relative);
    send_fd(theirs.get(), result);
    _exit(0);
  }
  close(theirs.release());
  const int fd = receive_fd(mine.get());
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return fd;
}

}  // namespace

uint32_t own_user_ns() {
  struct stat st {};
  // 0xEFFFFFFD: PROC_USER_INIT_INO, the initial user namespace's fixed inode.
  return stat("/proc/self/ns/user", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0xEFFFFFFDu;
}

bool openat2_supported() {
  open_how how{};
  return syscall(SYS_openat2, -1, nullptr, &how, sizeof(how)) < 0 && errno != ENOSYS;
}

int open_process_file(pid_t pid, const std::string& relative) {
  if (pid == 0) {
    Fd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    return root ? open_in_root(root.get(), relative) : -errno;
  }
  // One /proc/PID directory for every lookup: if the pid is reused by
  // another process meanwhile, lookups below it fail instead of reaching the newcomer.
  Fd proc(open(("/proc/" + std::to_string(pid)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return -errno;
  struct stat user_ns {};
  if (fstatat(proc.get(), "ns/user", &user_ns, 0) != 0) return -errno;
  Fd root(openat(proc.get(), "root", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return -errno;
  if (user_ns.st_ino == own_user_ns()) return open_in_root(root.get(), relative);
  // In a user namespace of its own, a user can bind-mount a root-only file
  // (/etc/shadow) over its etc/hosts.deny; RESOLVE_IN_ROOT does not see
  // mounts. So its files are opened as that user, never as root.
  uid_t uid = 0;
  gid_t gid = 0;
  if (!process_ids(proc.get(), uid, gid)) return -ESRCH;
  return open_in_root_as(root.get(), relative, uid, gid);
}

namespace {

// fail2ban-client's answer to `question`, asked of the checked fail2ban only.
std::optional<std::string> ask_fail2ban(const std::vector<std::string>& question) {
  // Every directory from / to the socket root-owned and writable by root
  // alone: nobody else can put a socket of theirs at the fixed path (a
  // fail2ban-client unpickles what the socket answers: code execution).
  Fd at(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  const char* components[] = {"run", "fail2ban", "fail2ban.sock"};
  struct stat st {};
  if (!at || fstat(at.get(), &st) != 0 || st.st_uid != 0 || (st.st_mode & 022)) return std::nullopt;
  for (const char* component : components) {
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    Fd next(sys_openat2(at.get(), component, how));
    if (!next || fstat(next.get(), &st) != 0 || st.st_uid != 0) return std::nullopt;
    const bool last = component == components[2];
    if (last ? !S_ISSOCK(st.st_mode) : (!S_ISDIR(st.st_mode) || (st.st_mode & 022))) return std::nullopt;
    at = std::move(next);
  }
  // The process listening on it must be root (SO_PEERCRED): a socket file
  // left by a root fail2ban and bound again by someone else is not trusted.
  const std::string pinned = "/proc/self/fd/" + std::to_string(at.get());
  Fd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", pinned.c_str());
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (!probe || connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0 ||
      getsockopt(probe.get(), SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.uid != 0)
    return std::nullopt;
  // fail2ban-client reaches the very socket checked, through the descriptor
  // it inherits as fd 3, not a path that could be swapped meanwhile.
  std::vector<std::string> argv{"fail2ban-client", "-s", "/proc/self/fd/3"};
  argv.insert(argv.end(), question.begin(), question.end());
  return capture_output(argv, std::chrono::seconds(5), at.get());
}

}  // namespace

// Raw syscalls and fixed buffers only: it runs in a child forked from a
// process that may have threads (no allocation after fork()).
const char* root_owned_path_problem(int root, const char* path, const struct stat* expected) {
  const auto only_root_writes = [](const struct stat& st) {
    // A sticky directory (/tmp) lets nobody else rename or remove root's entries in it.
    return st.st_uid == 0 && (!(st.st_mode & 022) || (st.st_mode & S_ISVTX));
  };
  struct stat st {};
  if (fstat(root, &st) != 0 || !S_ISDIR(st.st_mode) || !only_root_writes(st))
    return "its root directory is not root's alone";
  char copy[4096];
  const size_t length = strnlen(path, sizeof(copy));
  if (length == 0 || length >= sizeof(copy) || path[0] != '/') return "not an absolute path";
  memcpy(copy, path, length + 1);
  Fd at(fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!at) return "cannot open its root";
  char* component = copy + 1;
  for (;;) {
    char* slash = strchr(component, '/');
    if (slash) *slash = '\0';
    if (component[0] == '\0' || strcmp(component, ".") == 0 || strcmp(component, "..") == 0)
      return "not a plain path (empty, . or .. components)";
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    Fd next(sys_openat2(at.get(), component, how));
    if (!next || fstat(next.get(), &st) != 0) return "a component of it cannot be opened without following a link";
    if (!slash) {
      if (!S_ISREG(st.st_mode)) return "not a regular file";
      if (st.st_uid != 0 || (st.st_mode & 022)) return "the file is not root's alone (owner or group/other write)";
      if (expected && (st.st_dev != expected->st_dev || st.st_ino != expected->st_ino))
        return "not the file the process runs (its executable is elsewhere)";
      return nullptr;
    }
    if (!S_ISDIR(st.st_mode) || !only_root_writes(st)) return "a directory on it is not root's alone";
    at = std::move(next);
    component = slash + 1;
  }
}

std::optional<std::string> fail2ban_banned(const std::string& address) { return ask_fail2ban({"banned", address}); }

std::optional<std::string> fail2ban_ban_times(const std::string& jail) {
  return ask_fail2ban({"get", jail, "banip", "--with-time"});
}

}  // namespace rsttrace
