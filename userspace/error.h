// How rsttrace reports failure: one message shape, "failed to <verb> <object>: <reason>",
// and two carriers, chosen by what the caller does next.
//
//  - Error (an exception) for a failure that ends the run or the command:
//    setup (BTF, loading and attaching, the capture file at start, the
//    broker's fork, dropping privileges) and bad arguments. main() prints it
//    as one line and exits 1. Nothing on the per-record path throws it.
//  - Result<T> (a value or a Failure with its reason) for a failure the caller
//    counts or reports and then carries on from: a record that does not
//    decode, a capture file that cannot be reopened, a ready file, a missing
//    tracefs, a kernel map read, a feature probe. Result<void> has no value.
//    Parsers of untrusted input return these and never throw past their caller.
//  - std::optional<T> only where "none" is an ordinary answer that needs no
//    reason: a lookup (an enum's name, a tracepoint's argument count, a
//    command's output when it is absent for any reason).
// Reasons keep the errno text (errno_text()). Descriptors are owned by Fd (fd.h).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

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

// Why something did not work, for a caller that carries on.
struct Failure {
  std::string reason;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::in_place_index<0>, std::move(value)) {}
  Result(Failure failure) : value_(std::in_place_index<1>, std::move(failure)) {}
  // Built in place: a decoded record is not moved once more.
  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args) : value_(std::in_place_index<0>, std::forward<Args>(args)...) {}

  bool ok() const { return value_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return *std::get_if<0>(&value_); }
  const T& operator*() const { return *std::get_if<0>(&value_); }
  T* operator->() { return std::get_if<0>(&value_); }
  const T* operator->() const { return std::get_if<0>(&value_); }
  const std::string& reason() const { return std::get_if<1>(&value_)->reason; }  // only when !ok()

 private:
  std::variant<T, Failure> value_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure failure) : failure_(std::move(failure)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& reason() const { return failure_.reason; }  // only when !ok()

 private:
  Failure failure_;
  bool ok_ = true;
};

}  // namespace rsttrace
