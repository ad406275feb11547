// Command line -> validated options. Everything the user can get wrong is
// caught here, before any BPF is loaded, with one line of explanation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "metrics/listen_address.h"

namespace rsttrace {

struct TraceOptions {
  std::vector<uint16_t> ports{22};
  bool json = false;
  bool raw = false;             // one line per kernel event, no correlation
  double duration_seconds = 0;  // 0: until SIGINT/SIGTERM
  std::string ready_file;       // created once every program is attached
  uint32_t netns = 0;           // 0: every network namespace
  bool verbose = false;
  uint32_t ring_buffer_kib = 4096;
  uint32_t poll_interval_ms = 50;
  bool bpf_stats = false;  // per-program run counts and time in the summary
  double summary_interval = 0;  // seconds between summaries on stderr; 0: only at exit
  std::string output;           // capture file of JSON lines, besides stdout
  uint64_t rotate_bytes = 0;    // 0: never rotate
  unsigned rotate_keep = 5;
  std::optional<ListenAddress> metrics;  // --metrics: Prometheus text over HTTP
  std::string user;              // after attach, run as this user (else rsttrace, or nobody)
  bool keep_privileges = false;  // do not drop privileges after attach
  // Events per second of one class (attribute/storm.h) from which the kernel
  // counts them instead of emitting each; 0: never. --raw turns it off.
  uint64_t storm_threshold = 1000;
  // How long a line waits for its provenance (rule, wrappers line, jail) before
  // it goes out without it (provenance/worker.h). Slow machines and huge
  // rulesets need seconds; the trace loop never waits for it.
  double provenance_deadline_seconds = 10;
  // accept() and wrapper-file opens through syscall tracepoints; off: cheaper for
  // every other process, without acceptors and TCP wrappers evidence.
  bool syscall_tracepoints = true;
  std::string host_label;  // --host-label: "host" of every JSON line; empty: the hostname
};

// `rsttrace selftest`: the scenario lab as a product command.
struct SelftestOptions {
  std::vector<std::string> scenarios;  // empty: all
  bool json = false;
  bool list = false;
  bool verbose = false;
  std::string userland = "all";  // debian12 | debian13 | all
  std::string clients = "all";   // loopback | remote (with and without --netns) | all
  bool rebuild_userland = false;  // build the cached Debian 13 root again
  std::string userland_cache = "/var/cache/rsttrace-lab";
};

// `rsttrace report FILE...`: the story of capture files.
struct ReportOptions {
  std::vector<std::string> files;
  std::string html;  // also write a self-contained HTML page here
};

// `rsttrace check`: what this kernel offers and which fallbacks are in use.
struct CheckOptions {
  bool verbose = false;
};

// `rsttrace explain ADDR`: what a connection from ADDR would meet (explain/command.h).
struct ExplainOptions {
  std::string address;  // ADDR, ADDR:PORT, [V6]:PORT
  uint16_t port = 22;
  std::string netns;    // inode or path; "": rsttrace's own
  bool json = false;
};

// `rsttrace lab-client` (hidden): a raw TCP client the lab runs in its namespaces.
struct LabClientOptions {
  std::string connect;
  uint16_t port = 22;
  std::string bind;
  uint16_t bind_port = 0;
  std::string send;  // \r \n understood
  bool read_first = false;
  bool linger0 = false;
  double hold_seconds = 0;  // 0: until the peer ends it
  std::string later;        // sent after --send, once the file `send_when` exists (the lab stops the server first)
  std::string send_when;
  std::string after_close;  // sent once the server has closed (EOF), then how the connection ends
  bool until_answered = false;  // after sending: once the peer answers, half-close and read until it ends
  std::string connect_when;     // connects once this file exists (started ahead, it follows the lab's cue at once)
};

// Parsing ended without something to run: help was printed, or the input
// was bad (message is one line, without the program name).
struct CliExit {
  int code = 0;
  std::string message;
  bool to_stderr = false;
};

using ParsedCommandLine =
    std::variant<TraceOptions, SelftestOptions, CheckOptions, ReportOptions, LabClientOptions, ExplainOptions, CliExit>;

ParsedCommandLine parse_command_line(const std::vector<std::string>& args);

// "4026531840" or a path such as /proc/1/ns/net or /run/netns/NAME.
uint32_t parse_netns(const std::string& text);  // throws Error

// --host-label NAME: 1 to kMaxHostLabel bytes of printable ASCII without spaces
// (a label goes into every line and every report table). Throws Error.
inline constexpr size_t kMaxHostLabel = 253;  // a DNS name's longest
void check_host_label(const std::string& label);
// The hostname as a host label: itself when it is one, else escaped and cut to fit.
std::string local_host_label();

// rsttrace 0.1.0 (git 0123456789ab): the version and the revision it was built from.
std::string version_text();

// A file rsttrace will create can be written: its directory exists and is
// writable and it is not a directory. `option` names it in the error.
void check_writable_path(const std::string& option, const std::string& path);  // throws Error

}  // namespace rsttrace
