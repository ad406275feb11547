#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "cli/options.h"

using namespace rsttrace;

namespace {

ParsedCommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "rsttrace");
  return parse_command_line(args);
}

std::string error_of(std::vector<std::string> args) {
  const ParsedCommandLine parsed = parse(std::move(args));
  REQUIRE(std::holds_alternative<CliExit>(parsed));
  const CliExit& exit = std::get<CliExit>(parsed);
  CHECK(exit.code != 0);
  CHECK(exit.to_stderr);
  CHECK(exit.message.find('\n') == std::string::npos);  // one line
  return exit.message;
}

}  // namespace

TEST_CASE("defaults: port 22, text, until a signal") {
  const auto options = std::get<TraceOptions>(parse({}));
  CHECK(options.ports == std::vector<uint16_t>{22});
  CHECK_FALSE(options.json);
  CHECK(options.duration_seconds == 0);
  CHECK(options.netns == 0);
}

TEST_CASE("ports are repeatable and deduplicated") {
  const auto options = std::get<TraceOptions>(parse({"--port", "2222", "-p", "22", "--port", "2222"}));
  CHECK(options.ports == std::vector<uint16_t>{22, 2222});
}

TEST_CASE("bad ports are refused in one line") {
  CHECK_THAT(error_of({"--port", "0"}), Catch::Contains("--port"));
  CHECK_THAT(error_of({"--port", "65536"}), Catch::Contains("65536"));
  CHECK_THAT(error_of({"--port", "ssh"}), Catch::Contains("--port"));
}

TEST_CASE("duration, ring buffer and poll interval are checked") {
  CHECK(std::get<TraceOptions>(parse({"--duration", "2.5"})).duration_seconds == 2.5);
  error_of({"--duration", "-1"});
  CHECK_THAT(error_of({"--ring-buffer-kib", "100"}), Catch::Contains("power of two"));
  error_of({"--poll-interval-ms", "0"});
  error_of({"--no-such-flag"});
}

TEST_CASE("the ready file must be writable before anything is loaded") {
  CHECK_THAT(error_of({"--ready-file", "/nonexistent-dir/ready"}), Catch::Contains("does not exist"));
  CHECK_THAT(error_of({"--ready-file", "/tmp"}), Catch::Contains("is a directory"));
  CHECK(std::get<TraceOptions>(parse({"--ready-file", "/tmp/rsttrace-ready"})).ready_file == "/tmp/rsttrace-ready");
}

TEST_CASE("the netns filter takes an inode or a namespace path") {
  CHECK(std::get<TraceOptions>(parse({"--netns", "4026531840"})).netns == 4026531840u);
  struct stat st {};
  REQUIRE(stat("/proc/self/ns/net", &st) == 0);
  CHECK(std::get<TraceOptions>(parse({"--netns", "/proc/self/ns/net"})).netns == st.st_ino);
  CHECK_THAT(error_of({"--netns", "/run/netns/does-not-exist"}), Catch::Contains("No such file"));
  error_of({"--netns", "0"});
  error_of({"--netns", "99999999999"});
}

TEST_CASE("storms: on at 1000 a second, off under --raw unless asked, the threshold checked") {
  CHECK(std::get<TraceOptions>(parse({})).storm_threshold == 1000);
  CHECK(std::get<TraceOptions>(parse({"--raw"})).storm_threshold == 0);
  CHECK(std::get<TraceOptions>(parse({"--raw", "--storm-threshold", "50"})).storm_threshold == 50);
  CHECK(std::get<TraceOptions>(parse({"--storm-threshold", "0"})).storm_threshold == 0);
  CHECK(error_of({"--storm-threshold", "-1"}).find("storm-threshold") != std::string::npos);
  CHECK(error_of({"--storm-threshold", "many"}).find("storm-threshold") != std::string::npos);
}

TEST_CASE("syscall tracepoints are on unless turned off") {
  CHECK(std::get<TraceOptions>(parse({})).syscall_tracepoints);
  CHECK_FALSE(std::get<TraceOptions>(parse({"--no-syscall-tracepoints"})).syscall_tracepoints);
}

TEST_CASE("help prints usage and exits 0") {
  const auto exit = std::get<CliExit>(parse({"--help"}));
  CHECK(exit.code == 0);
  CHECK_THAT(exit.message, Catch::Contains("--ready-file"));
}

TEST_CASE("a --host-label is printable ASCII without spaces, at most 253 bytes", "[options][host]") {
  CHECK(std::get<TraceOptions>(parse({})).host_label.empty());  // the hostname, read at start
  CHECK(std::get<TraceOptions>(parse({"--host-label", "web-01.dc2"})).host_label == "web-01.dc2");
  CHECK(std::get<TraceOptions>(parse({"--host-label", std::string(253, 'h')})).host_label.size() == 253);
  CHECK_THAT(error_of({"--host-label", std::string(254, 'h')}), Catch::Contains("1 to 253 bytes"));
  CHECK_THAT(error_of({"--host-label", ""}), Catch::Contains("1 to 253 bytes"));
  CHECK_THAT(error_of({"--host-label", "two words"}), Catch::Contains("printable ASCII without spaces"));
  // The refused label is escaped in the message: no raw control byte reaches the terminal.
  const std::string message = error_of({"--host-label", "evil\x1b[2J"});
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK_THAT(message, Catch::Contains("evil\\x1b[2J"));
}

TEST_CASE("the hostname as a label is a valid label", "[options][host]") {
  const std::string label = local_host_label();
  CHECK_NOTHROW(check_host_label(label));
}

TEST_CASE("rsttrace --version prints the version and the git revision, exit 0", "[options]") {
  const auto exit = std::get<CliExit>(parse({"--version"}));
  CHECK(exit.code == 0);
  CHECK_FALSE(exit.to_stderr);
  CHECK_THAT(exit.message, Catch::StartsWith("rsttrace 0.") && Catch::Contains(" (git "));
  CHECK(exit.message == version_text() + "\n");
}
