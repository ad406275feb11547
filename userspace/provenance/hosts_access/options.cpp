#include "provenance/hosts_access/options.h"

#include <algorithm>
#include <utility>

#include "provenance/hosts_access/tokens.h"

namespace rsttrace::hosts_access {

OptionsOutcome process_options(std::string_view options) {
  enum Flags { kNeedArg = 1, kOptArg = 2, kUseLast = 4 };
  static const std::vector<std::pair<std::string_view, int>> kOptions = {
      {"user", kNeedArg},  {"group", kNeedArg},    {"umask", kNeedArg},   {"linger", kNeedArg},
      {"keepalive", 0},    {"aclexec", kNeedArg},  {"spawn", kNeedArg},   {"twist", kNeedArg | kUseLast},
      {"rfc931", kOptArg}, {"setenv", kNeedArg},   {"nice", kOptArg},     {"severity", kNeedArg},
      {"allow", kUseLast}, {"deny", kUseLast},     {"banners", kNeedArg},
  };
  OptionsOutcome outcome;
  // get_field: fields end at an unescaped ':'; a backslash quotes any character.
  std::vector<std::string> fields;
  std::string field;
  for (size_t i = 0; i <= options.size(); ++i) {
    if (i == options.size() || options[i] == ':') {
      // A trailing ':' leaves an empty field: "missing option name".
      fields.push_back(field);
      field.clear();
      continue;
    }
    if (options[i] == '\\' && i + 1 < options.size()) ++i;
    field += options[i];
  }
  // tcpd_jump: libwrap refuses service when a matched rule's options are bad.
  auto refuse = [&](std::string why) {
    outcome.allowed = false;
    outcome.notes.push_back(why + ": libwrap refuses the connection");
    return outcome;
  };
  for (size_t f = 0; f < fields.size(); ++f) {
    std::string_view opt = fields[f];
    const size_t begin = opt.find_first_not_of(kBlanks);
    opt = begin == std::string_view::npos ? std::string_view{} : opt.substr(begin, opt.find_last_not_of(kBlanks) - begin + 1);
    const size_t key_end = std::min(opt.find_first_of(" \t\r\n="), opt.size());
    std::string_view key = opt.substr(0, key_end);
    std::string_view value = opt.substr(key_end);
    value.remove_prefix(std::min(value.find_first_not_of(" \t\r\n"), value.size()));
    if (!value.empty() && value.front() == '=') {  // exactly one '=' is ignored
      value.remove_prefix(1);
      value.remove_prefix(std::min(value.find_first_not_of(" \t\r\n"), value.size()));
    }
    if (key.empty()) return refuse("missing option name");
    auto known = std::find_if(kOptions.begin(), kOptions.end(), [&](const auto& o) { return iequals(o.first, key); });
    if (known == kOptions.end()) return refuse("bad option name \"" + std::string(key) + "\"");
    const int flags = known->second;
    const std::string name(known->first);
    if (value.empty() && (flags & kNeedArg)) return refuse("option \"" + name + "\" requires value");
    if (!value.empty() && !(flags & (kNeedArg | kOptArg))) return refuse("option \"" + name + "\" requires no value");
    if (f + 1 < fields.size() && (flags & kUseLast)) return refuse("option \"" + name + "\" must be at end");
    if (name == "allow") outcome.allowed = true;
    if (name == "deny") outcome.allowed = false;
    if (name == "twist") {
      outcome.allowed = false;
      outcome.notes.push_back("twist: the client gets `" + std::string(value) + "` instead of the daemon");
    }
    if (name == "spawn")  // text only: rsttrace never runs a command of the files it reads
      outcome.notes.push_back("spawn: libwrap ran `" + std::string(value) +
                              "` in a child of the refusing process (rsttrace never runs it)");
    if (name == "aclexec") {
      outcome.certain = false;
      outcome.notes.push_back("aclexec: the verdict depends on the exit status of `" + std::string(value) + "`");
    }
    if (name == "user" || name == "group" || name == "severity" || name == "umask" || name == "nice" ||
        name == "linger" || name == "banners")
      outcome.notes.push_back("option " + name + " is not checked: a bad value would make libwrap refuse");
  }
  return outcome;
}

}  // namespace rsttrace::hosts_access
