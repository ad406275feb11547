#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "privsep/system_access.h"

namespace rsttrace {

// Runs argv (no shell) and returns its stdout, or nullopt if it could not run,
// failed, or outlived the timeout (then it is killed). stderr is discarded.
// inherit_fd >= 0: the program gets that descriptor as its fd 3 (nothing else is inherited).
// cancel_fd >= 0: once it is readable (an eventfd written at stop), the program is killed at once.
// Output past kMaxCommandOutput is a failure: a ruleset that big is someone's attack, not a firewall.
constexpr size_t kMaxCommandOutput = 64u << 20;
std::optional<std::string> capture_output(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                          int inherit_fd = -1, int cancel_fd = -1, int* wait_status = nullptr);
// wait_status: set to the program's waitpid() status when it ended by itself (not killed for time or size).

// What a reader's output is replaced with when a signal killed it (nft crashing
// on a ruleset it cannot read): no reader prints a byte 0x01 first.
std::string killed_by_signal_output(int signal);
// The signal, if `output` is such a replacement.
std::optional<int> killed_by_signal(std::string_view output);

// A path that enters network namespace `inode` (/run/netns/NAME or
// /proc/PID/ns/net), or empty if no process or name holds it any more.
std::string netns_path(uint32_t inode, SystemAccess& access);

}  // namespace rsttrace
