// SIGINT/SIGTERM/SIGHUP arrive on a file descriptor: no handler, no global flag.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "error.h"
#include "fd.h"

namespace rsttrace {

class SignalFd {
 public:
  SignalFd() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    sigaddset(&mask_, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask_, &previous_) != 0) throw failed("block", "signals", errno_text(errno));
    fd_.reset(signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) {
      const int err = errno;
      sigprocmask(SIG_SETMASK, &previous_, nullptr);
      throw failed("open", "signalfd", errno_text(err));
    }
  }
  ~SignalFd() {
    fd_.reset();
    sigprocmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;

  // Waits up to timeout_ms; the signal that arrived, or 0.
  int wait(int timeout_ms) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return 0;
    signalfd_siginfo info{};
    return read(fd_.get(), &info, sizeof(info)) == sizeof(info) ? static_cast<int>(info.ssi_signo) : 0;
  }

 private:
  sigset_t mask_{}, previous_{};
  Fd fd_;
};

}  // namespace rsttrace
