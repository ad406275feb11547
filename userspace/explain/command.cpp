#include "explain/command.h"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "error.h"
#include "explain/probe.h"
#include "output/format.h"
#include "privsep/system_access.h"

namespace rsttrace {
namespace explain {

std::string explanation_json(const Facts& facts, const Explanation& explanation) {
  using Json = nlohmann::ordered_json;
  const Attribution& a = explanation.attribution;
  Json out;
  out["type"] = "explain";
  out["family"] = facts.client.family;
  out["remote_addr"] = format_address(facts.client.family, facts.client.addr);
  out["remote_port"] = facts.client.port ? Json(facts.client.port) : Json(nullptr);
  out["local_addr"] = facts.server_address;
  out["local_port"] = facts.port;
  out["netns"] = facts.netns;
  Json steps = Json::array();
  for (const Step& step : explanation.steps)
    steps.push_back({{"step", step.name}, {"result", step.result}, {"certain", step.certain}, {"detail", step.detail}});
  out["steps"] = steps;
  out["verdict"] = verdict_text(explanation);
  out["certain"] = explanation.certain;
  out["detail"] = explanation.allowed ? Json("nothing on the path refuses it") : Json(a.detail);
  if (a.rule) {
    const FirewallRule& r = *a.rule;
    out["rule"] = {{"backend", r.backend},
                   {"family", r.family},
                   {"table", escape_untrusted(r.table)},
                   {"chain", escape_untrusted(r.chain)},
                   {"handle", r.handle ? Json(*r.handle) : Json(nullptr)},
                   {"text", escape_untrusted(r.text)},
                   {"verdict", r.verdict},
                   {"packets", r.packets ? Json(*r.packets) : Json(nullptr)},
                   {"certain", r.certain},
                   {"undecided", r.certain ? Json(nullptr) : Json(escape_untrusted(r.undecided))},
                   {"counter_moved", nullptr},
                   {"set_element", r.set_element ? Json(escape_untrusted(*r.set_element)) : Json(nullptr)}};
  } else {
    out["rule"] = nullptr;
  }
  out["fail2ban_jail"] = a.fail2ban_jail ? Json(escape_untrusted(*a.fail2ban_jail)) : Json(nullptr);
  if (a.blocker)
    out["blocker"] = {{"tool", a.blocker->tool},
                      {"name", escape_untrusted(a.blocker->name)},
                      {"rule_number", a.blocker->rule_number ? Json(*a.blocker->rule_number) : Json(nullptr)},
                      {"permanent", a.blocker->permanent ? Json(*a.blocker->permanent) : Json(nullptr)}};
  else
    out["blocker"] = nullptr;
  if (a.wrapper_rule)
    out["wrapper_rule"] = {{"file", a.wrapper_rule->file},
                           {"line", a.wrapper_rule->line},
                           {"text", escape_untrusted(a.wrapper_rule->text)}};
  else
    out["wrapper_rule"] = nullptr;
  out["remedy"] = explanation.remedy;
  return json_line(out);
}

std::string explanation_text(const Facts& facts, const Explanation& explanation) {
  std::string text = "a connection from " + format_address(facts.client.family, facts.client.addr) +
                     (facts.client.port ? " port " + std::to_string(facts.client.port) : "") + " to " +
                     facts.server_address + " port " + std::to_string(facts.port) + " in netns " +
                     std::to_string(facts.netns) + ":\n";
  for (const Step& step : explanation.steps) {
    char head[64];
    std::snprintf(head, sizeof(head), "  %-13s %-8s", step.name.c_str(), step.result.c_str());
    text += head + step.detail + (step.certain ? "" : " [uncertain]") + "\n";
  }
  text += "verdict: " + verdict_text(explanation) + (explanation.certain ? "" : " (probable: a step is uncertain)") + "\n";
  for (const std::string& command : explanation.remedy) text += "fix: " + command + "\n";
  if (!explanation.allowed && explanation.remedy.empty()) text += "fix: no command rsttrace knows lifts this block\n";
  return text;
}

}  // namespace explain

int run_explain(const ExplainOptions& options) {
  try {
    const auto client = explain::parse_client_address(options.address);
    if (!client) throw failed("parse", "address " + escape_untrusted(options.address), client.reason());
    const uint32_t netns = options.netns.empty() ? 0 : parse_netns(options.netns);
    if (geteuid() != 0)
      throw failed("explain", escape_untrusted(options.address), "rsttrace explain needs root (namespaces, rulesets, other processes' files)");
    DirectAccess access;
    const explain::Facts facts = explain::read_facts(*client, options.port, netns, access);
    const explain::Explanation explanation = explain::explain_facts(facts);
    const std::string out =
        options.json ? explain::explanation_json(facts, explanation) + "\n" : explain::explanation_text(facts, explanation);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return explanation.allowed ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rsttrace: error: %s\n", e.what());
    return 2;
  }
}

}  // namespace rsttrace
