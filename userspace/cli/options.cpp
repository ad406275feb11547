#include "cli/options.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>

#include "error.h"
#include "output/capture_file.h"
#include "rsttrace_version.h"  // generated at configure time (CMakeLists.txt)
#include "text/escape.h"

namespace rsttrace {

uint32_t parse_netns(const std::string& text) {
  uint64_t inode = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), inode);
  if (ec == std::errc() && end == text.data() + text.size()) {
    if (inode == 0 || inode > UINT32_MAX)
      throw failed("parse", "--netns " + text, "a namespace inode is a number from 1 to 4294967295");
    return static_cast<uint32_t>(inode);
  }
  struct stat st {};
  if (stat(text.c_str(), &st) != 0) throw failed("open", "--netns " + text, errno_text(errno));
  return static_cast<uint32_t>(st.st_ino);
}

void check_host_label(const std::string& label) {
  if (label.empty() || label.size() > kMaxHostLabel)
    throw failed("use", "--host-label", "a label has 1 to " + std::to_string(kMaxHostLabel) + " bytes");
  for (const char c : label)
    if (c <= 0x20 || c >= 0x7f)
      throw failed("use", "--host-label " + escape_untrusted(label), "a label is printable ASCII without spaces");
}

std::string local_host_label() {
  char name[256] = {};  // HOST_NAME_MAX is 64; the kernel ends it with a NUL within the buffer
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  const std::string hostname(name);
  try {
    check_host_label(hostname);
    return hostname;
  } catch (const Error&) {
    // Set by root, but anything the UTS namespace allows: escaped, spaces too, then cut.
    std::string label;
    for (const char c : escape_untrusted(hostname)) label += c == ' ' ? std::string("\\x20") : std::string(1, c);
    return label.substr(0, kMaxHostLabel);
  }
}

std::string version_text() {
  return std::string("rsttrace ") + RSTTRACE_VERSION + " (git " + RSTTRACE_GIT_REVISION + ")";
}

void check_writable_path(const std::string& option, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path file(path);
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw failed("use", option + " " + path, "it is a directory");
  fs::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec))
    throw failed("use", option + " " + path, "directory " + dir.string() + " does not exist");
  if (access(dir.c_str(), W_OK) != 0)
    throw failed("use", option + " " + path, "directory " + dir.string() + " is not writable");
}

ParsedCommandLine parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"rsttrace: who reset this TCP connection, from the kernel, live"};
  app.name(args.empty() ? "rsttrace" : args[0]);
  TraceOptions options;
  std::vector<int> ports;
  std::string netns;
  app.add_option("-p,--port", ports, "TCP port to watch, repeatable (default 22)")
      ->check(CLI::Range(1, 65535));
  app.add_flag("--json", options.json, "one JSON object per line on stdout (docs/events.md)");
  app.add_flag("--raw", options.raw, "one line per kernel event, without folding a connection's events into one");
  app.add_option("-d,--duration", options.duration_seconds, "stop after SECONDS (0: until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ready-file", options.ready_file,
                 "create PATH once every BPF program is attached (removed at exit; a symlink there is replaced, "
                 "not followed)");
  app.add_option("--netns", netns, "only this network namespace: inode number or a path like /run/netns/NAME");
  app.add_flag("-v,--verbose", options.verbose, "debug logs, including libbpf's and the verifier's");
  app.add_option("--ring-buffer-kib", options.ring_buffer_kib, "kernel ring buffer size in KiB (power of two)")
      ->check(CLI::Range(64u, 1u << 20));
  app.add_option("--poll-interval-ms", options.poll_interval_ms, "the longest wait between two drains of the ring buffer (shorter while it fills fast)")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--summary-interval", options.summary_interval,
                 "every SECONDS, a summary on stderr: counts by verdict, top remote addresses, losses")
      ->check(CLI::NonNegativeNumber);
  std::string rotate_size;
  app.add_option("-o,--output", options.output,
                 "also write JSON lines (the --json contract) to FILE, mode 0600; SIGHUP reopens it. A symlink, FIFO, "
                 "hard link or another user's file there is refused");
  app.add_option("--rotate-size", rotate_size, "rotate FILE when it would grow past SIZE (e.g. 100M)");
  app.add_option("--rotate-keep", options.rotate_keep, "rotated files to keep: FILE.1 ... FILE.N (default 5)")
      ->check(CLI::Range(0u, 1000u));
  std::string metrics;
  bool metrics_allow_remote = false;
  app.add_option("--metrics", metrics,
                 "serve Prometheus metrics at http://ADDR:PORT/metrics (loopback only, e.g. 127.0.0.1:9822)");
  app.add_flag("--metrics-allow-remote", metrics_allow_remote,
               "let --metrics listen on a non-loopback address (put it behind a firewall)");
  app.add_option("--user", options.user,
                 "after attaching, run as USER (default: the system user rsttrace, or nobody if there is none); "
                 "the broker, still root, opens and rotates --output and writes --ready-file");
  app.add_flag("--keep-privileges", options.keep_privileges,
               "do not drop privileges after attaching (rulesets and hosts files are then read directly)");
  app.add_option("--provenance-deadline", options.provenance_deadline_seconds,
                 "seconds a firewall or TCP wrappers line waits for its rule, wrappers line or jail to be read "
                 "(off the trace loop) before it is printed without them (default 10)")
      ->check(CLI::Range(0.1, 600.0));
  CLI::Option* storm_option = app.add_option(
      "--storm-threshold", options.storm_threshold,
      "events per second of one class (refused, reset for no socket, or dropped, from one client on one port) "
      "above which they are counted in the kernel and reported once a second as a storm line (default 1000; "
      "0: never; --raw: never unless given)");
  storm_option->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32));
  bool no_syscall_tracepoints = false;
  app.add_flag("--no-syscall-tracepoints", no_syscall_tracepoints,
               "do not attach to accept() and openat(): every syscall of every process stays on the kernel's fast "
               "path, but TCP wrappers refusals and the accepting process go unseen");
  CLI::Option* host_label_option = app.add_option("--host-label", options.host_label,
                 "the \"host\" of every JSON line (default: the hostname); printable ASCII, at most 253 bytes");
  app.set_version_flag("--version", version_text(), "print the version and the git revision it was built from");
  app.add_flag("--bpf-stats", options.bpf_stats,
               "count each BPF program's runs and run time (BPF_ENABLE_STATS) and add them to the summary");

  SelftestOptions selftest;
  CLI::App* selftest_command = app.add_subcommand(
      "selftest", "prove rsttrace on this kernel: real sshd, ssh, iptables and nft scenarios in throwaway namespaces");
  selftest_command->add_option("-s,--scenario", selftest.scenarios, "run only this scenario (repeatable)");
  selftest_command->add_flag("--json", selftest.json, "one JSON result per scenario");
  selftest_command->add_flag("--list", selftest.list, "list the scenarios and exit");
  selftest_command->add_flag("-v,--verbose", selftest.verbose, "show the lab's commands and logs");
  selftest_command->add_option("--userland", selftest.userland, "whose sshd, fail2ban and firewall tools: debian12 (the host's), debian13 (a cached trixie root) or all")
      ->check(CLI::IsMember({"debian12", "debian13", "all"}));
  selftest_command->add_option("--clients", selftest.clients, "where the clients run: loopback (in the server's namespace), remote (own namespace over veth, tracer with and without --netns), remote-netns (remote, the tracer with --netns only) or all")
      ->check(CLI::IsMember({"loopback", "remote", "remote-netns", "all"}));
  selftest_command->add_flag("--rebuild-userland", selftest.rebuild_userland, "build the cached Debian 13 root again (debootstrap) before running");
  selftest_command->add_option("--userland-cache", selftest.userland_cache, "where the Debian 13 root is cached (root-owned, no group or world write on any component)");

  ReportOptions report;
  CLI::App* report_command = app.add_subcommand(
      "report", "the incident story of capture files (--output): counts by verdict, top remotes and jails, timeline");
  report_command->add_option("files", report.files, "capture files, rotated ones too (FILE FILE.1 ...)")->required();
  report_command->add_option("--html", report.html, "also write a self-contained HTML page with a timeline chart");

  CheckOptions check;
  CLI::App* check_command = app.add_subcommand(
      "check", "what this kernel offers rsttrace (tracepoints, reasons, kprobes, fentry) and the fallbacks in use");
  check_command->add_flag("-v,--verbose", check.verbose, "libbpf's and the verifier's logs");

  ExplainOptions explain;
  CLI::App* explain_command = app.add_subcommand(
      "explain", "what a new connection from ADDR would meet (routing, firewall, listener, sshd, TCP wrappers, "
                 "bans), the verdict a live trace would give, and the fix; exit 0 allowed, 1 blocked, 2 error");
  explain_command->add_option("address", explain.address, "client address: IPv4, IPv6, ADDR:PORT or [V6]:PORT")
      ->required();
  explain_command->add_option("-p,--port", explain.port, "server port (default 22)")->check(CLI::Range(1, 65535));
  explain_command->add_option("--netns", explain.netns, "the server's network namespace: inode or path (default: this one)");
  explain_command->add_flag("--json", explain.json, "one JSON object, \"type\": \"explain\" (docs/events.md)");

  LabClientOptions lab_client;
  CLI::App* lab_client_command = app.add_subcommand("lab-client", "raw TCP client used by selftest");
  lab_client_command->group("");  // internal: not in --help
  lab_client_command->add_option("--connect", lab_client.connect)->required();
  lab_client_command->add_option("--port", lab_client.port);
  lab_client_command->add_option("--bind", lab_client.bind);
  lab_client_command->add_option("--bind-port", lab_client.bind_port);
  lab_client_command->add_option("--send", lab_client.send);
  lab_client_command->add_flag("--read-first", lab_client.read_first);
  lab_client_command->add_flag("--linger0", lab_client.linger0);
  lab_client_command->add_option("--hold", lab_client.hold_seconds);
  lab_client_command->add_option("--send-when", lab_client.send_when);
  lab_client_command->add_option("--later", lab_client.later);
  lab_client_command->add_option("--after-close", lab_client.after_close);
  lab_client_command->add_flag("--until-answered", lab_client.until_answered);
  lab_client_command->add_option("--connect-when", lab_client.connect_when);

  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    return CliExit{0, app.help(), false};
  } catch (const CLI::CallForVersion&) {
    return CliExit{0, version_text() + "\n", false};
  } catch (const CLI::ParseError& e) {
    return CliExit{2, e.what(), true};
  }

  if (selftest_command->parsed()) return selftest;
  if (lab_client_command->parsed()) return lab_client;
  if (check_command->parsed()) return check;
  if (explain_command->parsed()) return explain;
  if (report_command->parsed()) {
    try {
      if (!report.html.empty()) check_writable_path("--html", report.html);
    } catch (const Error& e) {
      return CliExit{2, e.what(), true};
    }
    return report;
  }
  try {
    if (!ports.empty()) {
      std::sort(ports.begin(), ports.end());
      ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
      options.ports.assign(ports.begin(), ports.end());
    }
    const uint32_t kib = options.ring_buffer_kib;
    if ((kib & (kib - 1)) != 0)
      throw failed("use", "--ring-buffer-kib " + std::to_string(kib), "the size must be a power of two");
    if (options.raw && storm_option->count() == 0) options.storm_threshold = 0;
    options.syscall_tracepoints = !no_syscall_tracepoints;
    if (!netns.empty()) options.netns = parse_netns(netns);
    if (!options.host_label.empty() || host_label_option->count()) check_host_label(options.host_label);
    if (!options.ready_file.empty()) check_writable_path("--ready-file", options.ready_file);
    if (!options.output.empty()) check_writable_path("--output", options.output);
    if (metrics_allow_remote && metrics.empty()) throw failed("use", "--metrics-allow-remote", "it needs --metrics");
    if (options.keep_privileges && !options.user.empty())
      throw failed("use", "--user", "it drops privileges, --keep-privileges keeps them");
    if (!options.user.empty() && !getpwnam(options.user.c_str()))
      throw failed("use", "--user " + options.user, "no such user");
    if (!metrics.empty()) options.metrics = parse_listen_address(metrics, metrics_allow_remote);
    if (!rotate_size.empty()) {
      if (options.output.empty()) throw failed("use", "--rotate-size", "it needs --output");
      options.rotate_bytes = parse_size(rotate_size);
      if (options.rotate_bytes < 4096) throw failed("use", "--rotate-size " + rotate_size, "the least is 4K");
    }
  } catch (const Error& e) {
    return CliExit{2, e.what(), true};
  }
  return options;
}

}  // namespace rsttrace
