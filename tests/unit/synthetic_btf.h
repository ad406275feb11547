// Small BTF blobs built in memory, standing in for a kernel's.
#pragma once

#include <bpf/btf.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rsttrace::testing {

struct BtfFree {
  void operator()(btf* types) const { btf__free(types); }
};
using BtfPtr = std::unique_ptr<btf, BtfFree>;

class SyntheticBtf {
 public:
  SyntheticBtf()
      : types_(btf__new_empty()),
        int_id_(btf__add_int(types_.get(), "int", 4, BTF_INT_SIGNED)),
        void_ptr_id_(btf__add_ptr(types_.get(), 0)) {}

  SyntheticBtf& add_enum(const std::string& name, const std::vector<std::pair<std::string, long long>>& values) {
    btf__add_enum(types_.get(), name.c_str(), 4);
    for (const auto& [constant, value] : values) btf__add_enum_value(types_.get(), constant.c_str(), value);
    return *this;
  }

  // typedef void (*btf_trace_<name>)(void *, <args ints>...);
  SyntheticBtf& add_tracepoint(const std::string& name, int args) {
    // Parameters attach to the type added last: nothing may come in between.
    const int proto = btf__add_func_proto(types_.get(), 0);
    btf__add_func_param(types_.get(), "__data", void_ptr_id_);
    for (int i = 0; i < args; ++i) btf__add_func_param(types_.get(), ("arg" + std::to_string(i)).c_str(), int_id_);
    btf__add_typedef(types_.get(), ("btf_trace_" + name).c_str(), btf__add_ptr(types_.get(), proto));
    return *this;
  }

  const btf* get() const { return types_.get(); }

 private:
  BtfPtr types_;
  int int_id_;
  int void_ptr_id_;
};

}  // namespace rsttrace::testing
