// The lab's driver: rows, tracer, expectations and their checks in one place (451 lines; the checks could move to a file of their own).
#include "selftest/selftest.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "error.h"
#include "output/format.h"
#include "selftest/scenario.h"
#include "selftest/userland.h"

namespace rsttrace {
namespace lab {
namespace {

constexpr auto kReportDeadline = std::chrono::seconds(15);
// How long "nothing" is waited for, where rsttrace must report nothing.
constexpr auto kSilence = std::chrono::milliseconds(1500);

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", seconds);
  return text;
}

std::string first_line(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return escape_untrusted(line);
}

// The front-end facts of an event (issue 16): blocker, remedy, rule chain, undecided match, DNAT, flags.
void check_front_end(const nlohmann::ordered_json& event, const Expectation& expected,
                     std::vector<std::string>& problems) {
  const auto& blocker = event["blocker"];
  if (expected.blocker_tool == "-" && !blocker.is_null()) problems.push_back("blocker " + blocker.dump() + ", expected null");
  if (!expected.blocker_tool.empty() && expected.blocker_tool != "-") {
    const nlohmann::ordered_json number = expected.blocker_rule_number.value_or(0)
                                              ? nlohmann::ordered_json(*expected.blocker_rule_number)
                                              : nlohmann::ordered_json(nullptr);
    if (blocker.is_null() || blocker["tool"] != expected.blocker_tool || blocker["name"] != expected.blocker_name ||
        (expected.blocker_rule_number && blocker["rule_number"] != number))
      problems.push_back("blocker " + blocker.dump() + ", expected " + expected.blocker_tool + " " +
                         expected.blocker_name + " rule_number " + number.dump());
  }
  if (!expected.remedy_says.empty()) {
    std::string remedy;
    if (event["remedy"].is_array())
      for (const auto& command : event["remedy"]) remedy += (remedy.empty() ? "" : " ; ") + command.get<std::string>();
    if (remedy.find(expected.remedy_says) == std::string::npos)
      problems.push_back("remedy \"" + remedy + "\" lacks \"" + expected.remedy_says + "\"");
  }
  const auto& rule = event["rule"];
  if (!expected.rule_chain.empty() && (rule.is_null() || rule["chain"] != expected.rule_chain))
    problems.push_back("rule chain " + (rule.is_null() ? std::string("(no rule)") : rule["chain"].dump()) +
                       ", expected " + expected.rule_chain);
  if (!expected.undecided_says.empty() &&
      (rule.is_null() || !rule["undecided"].is_string() ||
       rule["undecided"].get<std::string>().find(expected.undecided_says) == std::string::npos))
    problems.push_back("rule.undecided " + (rule.is_null() ? std::string("(no rule)") : rule["undecided"].dump()) +
                       " lacks \"" + expected.undecided_says + "\"");
  if (expected.original_port) {
    const auto& original = event["original_dst"];
    if (original.is_null() || original["port"] != *expected.original_port)
      problems.push_back("original_dst " + original.dump() + ", expected port " + std::to_string(*expected.original_port));
  }
  if (!expected.tcp_flags.empty() && event["tcp_flags"] != expected.tcp_flags)
    problems.push_back("tcp_flags " + event["tcp_flags"].dump() + ", expected " + expected.tcp_flags);
}

}  // namespace

Lab::~Lab() { stop_tracer(); }

Namespace& Lab::ns(const std::string& tag) {
  for (auto& server : namespaces_)
    if (server.tag == tag) return *server.ns;
  Server server{tag, std::make_unique<Namespace>(dir_, tag, config_.userland), nullptr, nullptr};
  if (config_.placement == Placement::Loopback) {
    server.clients = std::make_unique<ClientSide>(ClientSide{*server.ns, kServer4, kClient4, "127.0.0.3", kServer6, kClient6});
  } else {
    server.client_ns = std::make_unique<Namespace>(dir_, tag + "-client", config_.userland);
    link_remote(*server.ns, *server.client_ns);
    server.clients = std::make_unique<ClientSide>(ClientSide{*server.client_ns, kRemoteServer4, kRemoteClient4,
                                                             kRemoteOtherClient4, kRemoteServer6, kRemoteClient6});
  }
  namespaces_.push_back(std::move(server));
  return *namespaces_.back().ns;
}

const ClientSide& Lab::client_side(const Namespace& server) {
  for (auto& entry : namespaces_)
    if (entry.ns.get() == &server) return *entry.clients;
  throw failed("find", "the clients of " + server.name(), "not a server namespace of this lab");
}

void Lab::start_tracer(const std::vector<uint16_t>& ports) {
  const std::string ready = dir_.file("tracer.ready");
  std::vector<std::string> argv{self_path(), "--json", "--ready-file", ready};
  for (uint16_t port : ports) argv.insert(argv.end(), {"--port", std::to_string(port)});
  if (config_.verbose) argv.push_back("-v");
  // A slow machine reads the rulesets and files for provenance slowly too (default 10 s).
  if (time_scale() > 1)
    argv.insert(argv.end(), {"--provenance-deadline", std::to_string(scaled(std::chrono::seconds(10)).count())});
  if (config_.placement == Placement::RemoteNetns) {
    if (namespaces_.empty()) throw failed("start", "the tracer", "--netns needs a server namespace first");
    argv.insert(argv.end(), {"--netns", "/run/netns/" + namespaces_.front().ns->name()});
    traced_netns_ = namespaces_.front().ns->inode();
  }
  tracer_ = std::make_unique<Child>(argv, dir_.file("tracer"));
  const auto limit = scaled(std::chrono::seconds(60));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (access(ready.c_str(), F_OK) != 0) {
    if (!tracer_->running()) throw failed("start", "the tracer", first_line(tracer_->err()));
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("start", "the tracer", "no ready file after " + std::to_string(limit.count()) + " s");
    sleep_checked(std::chrono::milliseconds(20));
  }
}

void Lab::stop_tracer() {
  if (!tracer_ || !tracer_->running()) return;
  tracer_->signal(SIGINT);
  tracer_->wait(std::chrono::seconds(30), Wait::ToTheEnd);
}

std::string Lab::tracer_log() const { return tracer_ ? tracer_->err() : ""; }

std::vector<nlohmann::ordered_json> Lab::events() const {
  std::vector<nlohmann::ordered_json> events;
  std::istringstream lines(tracer_ ? tracer_->out() : "");
  std::string line;
  while (std::getline(lines, line)) {
    auto record = nlohmann::ordered_json::parse(line, nullptr, false);
    if (!record.is_discarded() && record.value("type", "") == "event") events.push_back(std::move(record));
  }
  return events;
}

void Lab::expect(const Namespace& ns, const Result& client, const Expectation& expectation) {
  Expectation expected = expectation;
  // A tracer bound to another namespace must report nothing here.
  if (traced_netns_ != 0 && ns.inode() != traced_netns_) expected.verdict.reset();
  Check check{.where = ns.name(), .netns = ns.inode(), .expected = expected, .event = nullptr,
              .client_output = client.err + client.out};
  auto of_connection = [&] {
    std::vector<nlohmann::ordered_json> found;
    for (auto& event : events())
      if (event["netns"] == ns.inode() && event["local_port"] == expected.local_port &&
          event["remote_addr"] == expected.remote_addr && event["remote_port"] == expected.remote_port)
        found.push_back(event);
    return found;
  };
  auto& problems = check.problems;
  check.ruleset = ns.run({"nft", "-a", "list", "ruleset"}).out;
  if (!expected.verdict) {
    sleep_checked(kSilence);
    for (auto& event : events())
      if (event["netns"] == ns.inode() && event["local_port"] == expected.local_port)
        problems.push_back("reported a connection on unwatched port " + std::to_string(expected.local_port));
  } else {
    const auto report_limit = scaled(kReportDeadline);
    const auto deadline = std::chrono::steady_clock::now() + report_limit;
    std::vector<nlohmann::ordered_json> found;
    while ((found = of_connection()).empty() && std::chrono::steady_clock::now() < deadline)
      sleep_checked(std::chrono::milliseconds(50));
    // A second line for the same connection would come within the settle time.
    sleep_checked(std::chrono::milliseconds(400));
    found = of_connection();
    if (found.empty()) {
      problems.push_back("no report for " + expected.remote_addr + ":" + std::to_string(expected.remote_port) +
                         " within " + std::to_string(report_limit.count()) + " s");
    } else {
      check.event = found.front();
      if (found.size() > 1) problems.push_back(std::to_string(found.size()) + " lines for one connection");
      const auto& event = check.event;
      if (!event["verdict"].is_string() || parse_verdict(event["verdict"].get<std::string>()) != expected.verdict)
        problems.push_back("verdict " + event["verdict"].dump() + ", expected " + std::string(verdict_name(*expected.verdict)));
      if (expected.peer_saw && event["peer_saw"] != *expected.peer_saw)
        problems.push_back("peer_saw " + event["peer_saw"].dump() + ", expected " + *expected.peer_saw);
      if (event["detail"].get<std::string>().find(expected.detail_says) == std::string::npos)
        problems.push_back("detail lacks \"" + expected.detail_says + "\"");
      if (expected.wrapper_line) {
        const auto& line = event["wrapper_rule"];
        if (line.is_null() || line["line"] != expected.wrapper_line || line["file"] != "/etc/hosts.deny")
          problems.push_back("wrapper_rule " + line.dump() + ", expected /etc/hosts.deny line " +
                             std::to_string(expected.wrapper_line));
      }
      if (!expected.rule_backend.empty()) {
        const auto& rule = event["rule"];
        if (rule.is_null())
          problems.push_back("no rule named");
        else if (rule["backend"] != expected.rule_backend ||
                 rule["text"].get<std::string>().find(expected.rule_says) == std::string::npos)
          problems.push_back("rule " + rule.dump() + ", expected " + expected.rule_backend + " \"" +
                             expected.rule_says + "\"");
        else if (expected.rule_certain && rule["certain"] != *expected.rule_certain)
          problems.push_back("rule certain " + rule["certain"].dump() + ", expected " +
                             (*expected.rule_certain ? "true" : "false"));
      }
      check_front_end(event, expected, problems);
      if (expected.min_folded_drops && !(event["folded_drops"].is_number() &&
                                         event["folded_drops"].get<int>() >= expected.min_folded_drops))
        problems.push_back("folded_drops " + event["folded_drops"].dump() + ", expected at least " +
                           std::to_string(expected.min_folded_drops));
      if (expected.packets && event["packets"] != expected.packets)
        problems.push_back("packets " + event["packets"].dump() + ", expected " + std::to_string(expected.packets));
      if (!expected.netfilter_reset_rule_says.empty()) {
        const auto& built = event["netfilter_reset"];
        if (!built.is_object() || !built["rule"].is_object() ||
            built["rule"]["text"].get<std::string>().find(expected.netfilter_reset_rule_says) == std::string::npos)
          problems.push_back("netfilter_reset " + built.dump() + ", expected the rule \"" +
                             expected.netfilter_reset_rule_says + "\"");
      }
    }
  }
  // The explain column: the prediction made before the client connected must be the verdict traced.
  // (Explain asks the namespace itself: what a tracer bound elsewhere reports does not change it.)
  const std::string predicted_verdict = !expectation.explain_says.empty() ? expectation.explain_says
                                        : expectation.verdict ? std::string(verdict_name(*expectation.verdict))
                                                              : "allowed";
  check.explain = ns.predicted(expected.remote_addr, expected.local_port).value_or("");
  if (!expectation.explained)
    ;  // a client's own end: explain predicts for servers
  else if (check.explain.empty())
    problems.push_back("rsttrace explain did not run before the client connected");
  else if (check.explain.substr(0, check.explain.find(" (probable)")) != predicted_verdict)
    problems.push_back("rsttrace explain predicted " + check.explain + ", expected " + predicted_verdict);
  if (check.client_output.find(expected.client_says) == std::string::npos)
    problems.push_back("the client printed \"" + first_line(check.client_output) + "\", expected \"" +
                       expected.client_says + "\"");
  checks_.push_back(std::move(check));
}

}  // namespace lab

namespace {

struct Outcome {
  const lab::Scenario* scenario;
  lab::Userland userland;
  lab::Placement placement;
  std::vector<lab::Check> checks;
  std::string error;        // the scenario could not be played
  std::string skip_reason;  // not played on this userland, and why
  bool skipped() const { return !skip_reason.empty(); }
  bool passed() const {
    if (!error.empty() || skipped()) return false;
    for (const auto& check : checks)
      if (!check.problems.empty()) return false;
    return !checks.empty();
  }
  const char* result() const { return skipped() ? "skip" : passed() ? "pass" : "fail"; }
};

nlohmann::ordered_json outcome_json(const Outcome& outcome) {
  nlohmann::ordered_json checks = nlohmann::ordered_json::array();
  for (const auto& check : outcome.checks) {
    const auto& e = check.expected;
    checks.push_back({
        {"namespace", check.where},
        {"netns", check.netns},
        {"expected", {{"verdict", e.verdict ? nlohmann::ordered_json(verdict_name(*e.verdict)) : nlohmann::ordered_json(nullptr)},
                      {"remote_addr", e.remote_addr},
                      {"remote_port", e.remote_port},
                      {"local_port", e.local_port},
                      {"client_says", e.client_says}}},
        {"event", check.event},
        {"client_output", escape_untrusted(check.client_output)},
        {"ruleset", check.ruleset},
        {"explain", check.explain},
        {"problems", check.problems},
    });
  }
  return {{"type", "selftest"},
          {"scenario", outcome.scenario->name},
          {"userland", lab::userland_name(outcome.userland)},
          {"clients", lab::placement_name(outcome.placement)},
          {"result", outcome.result()},
          {"error", outcome.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(outcome.error)},
          {"skip_reason", outcome.skipped() ? nlohmann::ordered_json(outcome.skip_reason) : nlohmann::ordered_json(nullptr)},
          {"checks", checks}};
}

std::string observed(const Outcome& outcome) {
  std::string text;
  for (const auto& check : outcome.checks) {
    if (!text.empty()) text += ",";
    text += check.event.is_null() ? "-" : check.event["verdict"].get<std::string>();
  }
  return text.empty() ? "-" : text;
}

std::string explained(const Outcome& outcome) {
  std::string text;
  for (const auto& check : outcome.checks) text += (text.empty() ? "" : ",") + (check.explain.empty() ? "-" : check.explain);
  return text.empty() ? "-" : text;
}

std::string expected(const Outcome& outcome) {
  std::string text;
  for (const auto& check : outcome.checks) {
    if (!text.empty()) text += ",";
    text += check.expected.verdict ? std::string(verdict_name(*check.expected.verdict)) : "(nothing)";
  }
  return text.empty() ? "-" : text;
}

std::vector<lab::Userland> chosen_userlands(const std::string& name) {
  if (name == "debian12") return {lab::Userland::Debian12};
  if (name == "debian13") return {lab::Userland::Debian13};
  return {lab::Userland::Debian12, lab::Userland::Debian13};
}

std::vector<lab::Placement> chosen_placements(const std::string& name) {
  if (name == "loopback") return {lab::Placement::Loopback};
  if (name == "remote") return {lab::Placement::Remote, lab::Placement::RemoteNetns};
  if (name == "remote-netns") return {lab::Placement::RemoteNetns};
  return {lab::Placement::Loopback, lab::Placement::Remote, lab::Placement::RemoteNetns};
}

// The first of `programs` the userland at `root` ("" for the host) lacks, or empty.
std::string missing_program(const std::string& root, const std::vector<std::string>& programs) {
  for (const auto& program : programs) {
    bool found = false;
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"})
      found = found || access((root + dir + program).c_str(), X_OK) == 0;
    if (!found) return program;
  }
  return "";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Stage times go to stderr under --json: stdout holds only result records.
void stage(bool json, const std::string& text) {
  std::fprintf(json ? stderr : stdout, "-- %s\n", text.c_str());
  std::fflush(json ? stderr : stdout);
}

Outcome play(const lab::Scenario& scenario, const lab::LabConfig& config) {
  Outcome outcome{&scenario, config.userland.userland, config.placement, {}, "", ""};
  try {
    lab::Lab lab(config);
    try {
      scenario.play(lab);
    } catch (const Error& e) {
      outcome.error = e.what();
    }
    lab.stop_tracer();
    outcome.checks = lab.checks();
    if (config.verbose || !outcome.passed()) outcome.error += (outcome.error.empty() ? "" : "\n") + lab.tracer_log();
  } catch (const Error& e) {
    outcome.error = e.what();
  }
  return outcome;
}

}  // namespace

int run_selftest(const SelftestOptions& options) {
  const auto& all = lab::scenarios();
  if (options.list) {
    for (const auto& scenario : all) std::printf("%-22s %s\n", scenario.name.c_str(), scenario.summary.c_str());
    return 0;
  }
  std::vector<const lab::Scenario*> chosen;
  for (const auto& name : options.scenarios) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& s) { return s.name == name; });
    if (it == all.end()) throw failed("find", "scenario " + name, "see rsttrace selftest --list");
    chosen.push_back(&*it);
  }
  if (chosen.empty())
    for (const auto& scenario : all) chosen.push_back(&scenario);

  lab::block_stop_signals();
  lab::remove_stale_leftovers();
  // In CI a Debian 13 root that cannot be had is a failure, not a skip.
  const bool ci = getenv("CI") && *getenv("CI");
  std::vector<Outcome> outcomes;
  bool interrupted = false;
  const auto started = std::chrono::steady_clock::now();
  if (!options.json)
    std::printf("%-22s %-9s %-13s %-26s %-26s %-26s %s\n", "scenario", "userland", "clients", "expected", "observed",
                "explain", "result");
  try {
    for (const lab::Userland userland : chosen_userlands(options.userland)) {
      lab::UserlandRoot root{userland, ""};
      std::optional<lab::Debian13Root> debian13;
      std::string unavailable;
      if (userland == lab::Userland::Debian13) {
        const auto start = std::chrono::steady_clock::now();
        debian13.emplace(options.userland_cache, options.rebuild_userland, options.verbose);
        root.root = debian13->path();
        unavailable = debian13->reason();
        stage(options.json, "debian13 root: " + (unavailable.empty() ? root.root + (debian13->built() ? " built" : " cached")
                                                                         : "unavailable: " + unavailable) +
                                 " (" + lab::format_seconds(seconds_since(start)) + ")");
      }
      for (const lab::Placement placement : chosen_placements(options.clients)) {
        const auto start = std::chrono::steady_clock::now();
        for (const auto* scenario : chosen) {
          Outcome outcome{scenario, userland, placement, {}, "", ""};
          const std::string missing = missing_program(root.root, scenario->needs);
          if (!unavailable.empty() && ci)
            outcome.error = "the Debian 13 userland is required in CI: " + unavailable;
          else if (!unavailable.empty())
            outcome.skip_reason = unavailable;
          else if (!missing.empty())
            outcome.skip_reason = missing + " is not packaged in " + lab::userland_name(userland);
          else if (!scenario->remote_only.empty() && placement == lab::Placement::Loopback)
            outcome.skip_reason = "remote clients only: " + scenario->remote_only;
          else
            outcome = play(*scenario, {.verbose = options.verbose, .userland = root, .placement = placement});
          if (options.json) {
            std::printf("%s\n", json_line(outcome_json(outcome)).c_str());
          } else {
            std::printf("%-22s %-9s %-13s %-26s %-26s %-26s %s\n", scenario->name.c_str(), lab::userland_name(userland),
                        lab::placement_name(placement), expected(outcome).c_str(), observed(outcome).c_str(),
                        explained(outcome).c_str(), outcome.skipped() ? "skip" : outcome.passed() ? "pass" : "FAIL");
            for (const auto& check : outcome.checks)
              for (const auto& problem : check.problems) std::printf("    %s: %s\n", check.where.c_str(), problem.c_str());
            if (outcome.skipped()) std::printf("    %s\n", outcome.skip_reason.c_str());
            if (!outcome.error.empty() && !outcome.passed()) std::printf("    %s\n", outcome.error.c_str());
          }
          std::fflush(stdout);
          outcomes.push_back(std::move(outcome));
        }
        stage(options.json, std::string(lab::userland_name(userland)) + " " + lab::placement_name(placement) + ": " +
                                std::to_string(chosen.size()) + " scenarios in " + lab::format_seconds(seconds_since(start)));
      }
    }
  } catch (const lab::Interrupted&) {
    interrupted = true;
  }
  if (interrupted) {
    std::fprintf(stderr, "rsttrace: selftest interrupted; the lab was cleaned up\n");
    return 130;
  }
  const auto count = [&](const char* result) {
    return std::count_if(outcomes.begin(), outcomes.end(), [&](const auto& o) { return std::string(o.result()) == result; });
  };
  stage(options.json, "total: " + lab::format_seconds(seconds_since(started)));
  if (!options.json) std::printf("%zd passed, %zd failed, %zd skipped\n", count("pass"), count("fail"), count("skip"));
  return count("fail") == 0 ? 0 : 1;
}

}  // namespace rsttrace
