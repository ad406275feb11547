// One scenario of the lab: it builds its namespaces, starts the tracer, plays
// the cause (sshd config, wrappers, firewall, clients) and states what
// rsttrace must report.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attribute/verdict.h"
#include "selftest/lab.h"

namespace rsttrace::lab {

struct Expectation {
  std::optional<Verdict> verdict;  // none: rsttrace must report nothing in this namespace
  std::string remote_addr;
  uint16_t remote_port = kClientPort;
  uint16_t local_port = 22;
  std::optional<std::string> peer_saw;
  std::string detail_says;  // a phrase the detail must contain
  std::string client_says;  // a phrase the client must have printed
  std::string rule_backend; // firewall: the backend of the rule rsttrace must name
  std::string rule_says;    // ... and a phrase of its text
  int wrapper_line = 0;     // tcp-wrappers: the hosts.deny line that must be named
  // What `rsttrace explain` must predict before the client connects: "" the
  // expected verdict (or "allowed" when none is expected); "allowed" for a
  // block that only what the client does after connecting causes.
  std::string explain_says;
};

struct Check {
  std::string where;  // namespace tag
  uint32_t netns = 0;
  Expectation expected;
  nlohmann::ordered_json event;  // null if none
  std::string client_output;
  std::string ruleset;  // `nft -a list ruleset` of the namespace, to check handles against
  std::string explain;  // the verdict `rsttrace explain` predicted before the client connected, "" not run
  std::vector<std::string> problems;
};

// What a scenario uses: namespaces, the tracer, the checks.
class Lab {
 public:
  explicit Lab(bool verbose) : verbose_(verbose) {}
  ~Lab();

  const WorkDir& dir() const { return dir_; }
  Namespace& ns(const std::string& tag);
  // Starts `rsttrace --json` on these ports and waits for its ready file.
  void start_tracer(const std::vector<uint16_t>& ports = {22});
  // Waits for rsttrace's report of the client's connection and checks it.
  void expect(const Namespace& ns, const Result& client, const Expectation& expectation);
  void stop_tracer();

  const std::vector<Check>& checks() const { return checks_; }
  std::string tracer_log() const;

 private:
  std::vector<nlohmann::ordered_json> events() const;

  bool verbose_;
  WorkDir dir_;
  std::vector<std::pair<std::string, std::unique_ptr<Namespace>>> namespaces_;
  std::unique_ptr<Child> tracer_;
  std::vector<Check> checks_;
};

struct Scenario {
  std::string name;
  std::string summary;
  std::function<void(Lab&)> play;
};

const std::vector<Scenario>& scenarios();

}  // namespace rsttrace::lab
