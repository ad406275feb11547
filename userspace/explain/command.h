// `rsttrace explain ADDR`: what a new connection from ADDR to the port would
// meet, step by step, the verdict a live trace would give, and the fix.
// Exit 0 allowed, 1 blocked, 2 on error (one line: failed to <verb> <object>: <reason>).
#pragma once

#include <cstdint>
#include <string>

#include "cli/options.h"
#include "explain/walk.h"

namespace rsttrace {

int run_explain(const ExplainOptions& options);

namespace explain {
// The "type": "explain" object (docs/events.md) and the text form.
std::string explanation_json(const Facts& facts, const Explanation& explanation);
std::string explanation_text(const Facts& facts, const Explanation& explanation);
}  // namespace explain

}  // namespace rsttrace
