// Commands rsttrace prints for an operator to paste (remedies): every argument
// quoted for a POSIX shell, so that no argument (a jail, table or chain name a
// namespace owner chose) can become another command, option or redirection.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rsttrace {

// `word` as one shell word: as is when it holds only [A-Za-z0-9_./:@%+=,-]
// and does not start with `~` or `=`, else in single quotes (`'\''` for a quote).
// nullopt for an empty word, or bytes outside printable ASCII: such a command
// could not be shown as it runs (escaping would change it), so none is given.
std::optional<std::string> shell_quote(std::string_view word);

// argv as one command line, each word quoted; nullopt if any word cannot be.
std::optional<std::string> shell_command(const std::vector<std::string>& argv);

}  // namespace rsttrace
