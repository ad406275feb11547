// Child processes for the scenario lab: argv only (no shell unless asked),
// each in its own process group, killed with it when its owner goes away,
// output captured to files (no pipe can fill and block).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace rsttrace::lab {

// Thrown when SIGINT/SIGTERM arrived: unwinding cleans up the lab.
struct Interrupted {};

// Stop signals are blocked for the whole selftest and polled here, so that
// every wait can end in an orderly cleanup.
void block_stop_signals();
void throw_if_interrupted();
void sleep_checked(std::chrono::milliseconds duration);

// A wait's deadline on this machine: `base` times RSTTRACE_LAB_TIME_SCALE (a
// whole factor, 1 to 20; unset or invalid: 1). Slow machines (the kernel
// matrix's guests under qemu TCG set 4) get longer deadlines, never sleeps.
std::chrono::seconds scaled(std::chrono::seconds base);
int time_scale();

// Waits until `pid` is stopped (state T in /proc/PID/stat): false when it is
// gone or still running at `limit`.
bool wait_stopped(pid_t pid, std::chrono::seconds limit);

// Cleanup must finish even after a stop signal: its waits are not interruptible.
enum class Wait { Interruptible, ToTheEnd };

struct Result {
  int exit_code = -1;  // -1: killed on timeout
  std::string out;
  std::string err;
  bool timed_out = false;
};

class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& output_prefix);
  ~Child();
  Child(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child& operator=(Child&&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for the exit; kills the group and sets timed_out past the deadline.
  Result wait(std::chrono::milliseconds timeout, Wait mode = Wait::Interruptible);
  std::string out() const;
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string out_path_, err_path_;
};

Result run(const std::vector<std::string>& argv, const std::string& output_prefix,
           std::chrono::milliseconds timeout = std::chrono::seconds(30), Wait mode = Wait::Interruptible);
// For destructors: never throws Interrupted.
Result run_cleanup(const std::vector<std::string>& argv, const std::string& output_prefix);
// run() that throws Error unless the command exits 0.
Result run_checked(const std::vector<std::string>& argv, const std::string& output_prefix,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

std::string read_file(const std::string& path);

}  // namespace rsttrace::lab
