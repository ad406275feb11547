// hosts_options(5), as Debian's libwrap builds it in: what the options of
// the rule that matched do to the verdict (allow, deny, twist, a bad option).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rsttrace::hosts_access {

struct OptionsOutcome {
  std::optional<bool> allowed;  // set: the options decide, whatever the file says
  bool certain = true;
  std::vector<std::string> notes;
};

// `options`: the rule's text after its client list (fields split at ':').
OptionsOutcome process_options(std::string_view options);

}  // namespace rsttrace::hosts_access
