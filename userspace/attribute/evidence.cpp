#include "attribute/evidence.h"

namespace rsttrace {

void Evidence::add(const WrapperOpen& open) {
  if (open.for_writing()) {  // a writer (fail2ban, an editor) is not a check
    if (writers_.size() >= max_processes_) writers_.clear();
    writers_[{open.mnt_ns, open.file}] = open;
    return;
  }
  auto [it, inserted] = checks_.try_emplace(open.process.pid);
  WrapperCheck& check = it->second;
  // A pid seen long ago may be a new process now: start over after a minute.
  if (inserted || open.monotonic_ns > check.last_ns + 60'000'000'000ULL) check = WrapperCheck{open.monotonic_ns};
  check.mnt_ns = open.mnt_ns;
  check.last_ns = open.monotonic_ns;
  (open.file == WrapperFile::HostsAllow ? check.hosts_allow : check.hosts_deny) = true;
  if (!inserted) return;
  order_.push_back(open.process.pid);
  while (checks_.size() > max_processes_) {
    checks_.erase(order_.front());
    order_.pop_front();
    ++evicted_;
  }
}

std::optional<WrapperOpen> Evidence::last_writer(uint32_t mnt_ns, WrapperFile file) const {
  auto it = writers_.find({mnt_ns, file});
  if (it == writers_.end()) return std::nullopt;
  return it->second;
}

std::optional<WrapperCheck> Evidence::wrapper_check(uint32_t pid, uint64_t from_ns, uint64_t to_ns) const {
  auto it = checks_.find(pid);
  if (it == checks_.end() || it->second.last_ns < from_ns || it->second.first_ns > to_ns) return std::nullopt;
  return it->second;
}

}  // namespace rsttrace
