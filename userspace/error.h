// One error type and one message shape: "failed to <verb> <object>: <reason>".
#pragma once

#include <stdexcept>
#include <string>

namespace rsttrace {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// failed("attach", "program handle_kfree_skb", "No such file or directory")
inline Error failed(const std::string& verb, const std::string& object, const std::string& reason) {
  return Error("failed to " + verb + " " + object + ": " + reason);
}

// The text of an errno value (libbpf returns -errno).
std::string errno_text(int error_number);

}  // namespace rsttrace
