#include "selftest/selftest.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "error.h"
#include "output/format.h"
#include "selftest/scenario.h"

namespace rsttrace {
namespace lab {
namespace {

constexpr auto kReportDeadline = std::chrono::seconds(15);
// How long "nothing" is waited for, where rsttrace must report nothing.
constexpr auto kSilence = std::chrono::milliseconds(1500);

std::string first_line(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return escape_untrusted(line);
}

}  // namespace

Lab::~Lab() { stop_tracer(); }

Namespace& Lab::ns(const std::string& tag) {
  for (auto& [name, ns] : namespaces_)
    if (name == tag) return *ns;
  namespaces_.emplace_back(tag, std::make_unique<Namespace>(dir_, tag));
  return *namespaces_.back().second;
}

void Lab::start_tracer(const std::vector<uint16_t>& ports) {
  const std::string ready = dir_.file("tracer.ready");
  std::vector<std::string> argv{self_path(), "--json", "--ready-file", ready};
  for (uint16_t port : ports) argv.insert(argv.end(), {"--port", std::to_string(port)});
  if (verbose_) argv.push_back("-v");
  tracer_ = std::make_unique<Child>(argv, dir_.file("tracer"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (access(ready.c_str(), F_OK) != 0) {
    if (!tracer_->running()) throw failed("start", "the tracer", first_line(tracer_->err()));
    if (std::chrono::steady_clock::now() >= deadline) throw failed("start", "the tracer", "no ready file after 60 s");
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

void Lab::expect(const Namespace& ns, const Result& client, const Expectation& expected) {
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
    const auto deadline = std::chrono::steady_clock::now() + kReportDeadline;
    std::vector<nlohmann::ordered_json> found;
    while ((found = of_connection()).empty() && std::chrono::steady_clock::now() < deadline)
      sleep_checked(std::chrono::milliseconds(50));
    // A second line for the same connection would come within the settle time.
    sleep_checked(std::chrono::milliseconds(400));
    found = of_connection();
    if (found.empty()) {
      problems.push_back("no report for " + expected.remote_addr + ":" + std::to_string(expected.remote_port) +
                         " within " + std::to_string(kReportDeadline.count()) + " s");
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
      }
    }
  }
  // The explain column: the prediction made before the client connected must be the verdict traced.
  const std::string predicted_verdict = !expected.explain_says.empty() ? expected.explain_says
                                        : expected.verdict             ? std::string(verdict_name(*expected.verdict))
                                                                       : "allowed";
  check.explain = ns.predicted(expected.remote_addr, expected.local_port).value_or("");
  if (check.explain.empty())
    problems.push_back("rsttrace explain did not run before the client connected");
  else if (check.explain != predicted_verdict)
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
  std::vector<lab::Check> checks;
  std::string error;  // the scenario could not be played
  bool passed() const {
    if (!error.empty()) return false;
    for (const auto& check : checks)
      if (!check.problems.empty()) return false;
    return !checks.empty();
  }
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
          {"result", outcome.passed() ? "pass" : "fail"},
          {"error", outcome.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(outcome.error)},
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
  std::vector<Outcome> outcomes;
  bool interrupted = false;
  if (!options.json)
    std::printf("%-22s %-26s %-26s %-26s %s\n", "scenario", "expected", "observed", "explain", "result");
  for (const auto* scenario : chosen) {
    Outcome outcome{scenario, {}, ""};
    try {
      lab::Lab lab(options.verbose);
      try {
        scenario->play(lab);
      } catch (const Error& e) {
        outcome.error = e.what();
      }
      lab.stop_tracer();
      outcome.checks = lab.checks();
      if (options.verbose || !outcome.passed()) outcome.error += (outcome.error.empty() ? "" : "\n") + lab.tracer_log();
    } catch (const lab::Interrupted&) {
      interrupted = true;
    } catch (const Error& e) {
      outcome.error = e.what();
    }
    if (interrupted) break;
    if (options.json) {
      std::printf("%s\n", json_line(outcome_json(outcome)).c_str());
    } else {
      std::printf("%-22s %-26s %-26s %-26s %s\n", scenario->name.c_str(), expected(outcome).c_str(),
                  observed(outcome).c_str(), explained(outcome).c_str(), outcome.passed() ? "pass" : "FAIL");
      for (const auto& check : outcome.checks)
        for (const auto& problem : check.problems) std::printf("    %s: %s\n", check.where.c_str(), problem.c_str());
      if (!outcome.error.empty() && !outcome.passed()) std::printf("    %s\n", outcome.error.c_str());
    }
    std::fflush(stdout);
    outcomes.push_back(std::move(outcome));
  }
  if (interrupted) {
    std::fprintf(stderr, "rsttrace: selftest interrupted; the lab was cleaned up\n");
    return 130;
  }
  const auto passed = std::count_if(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.passed(); });
  if (!options.json)
    std::printf("%zd passed, %zd failed\n", passed, static_cast<ssize_t>(outcomes.size()) - passed);
  return passed == static_cast<ssize_t>(outcomes.size()) ? 0 : 1;
}

}  // namespace rsttrace
