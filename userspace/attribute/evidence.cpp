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
  if (inserted || open.monotonic_ns > check.last_ns + 60'000'000'000ULL) {
    check = WrapperCheck{open.monotonic_ns};
    check.sequence = next_sequence_++;
    order_.emplace_back(open.process.pid, check.sequence);
  }
  check.last_ns = open.monotonic_ns;
  check.mnt_ns = open.mnt_ns;
  check.uid = open.uid;
  check.user_ns = open.user_ns;
  (open.file == WrapperFile::HostsAllow ? check.hosts_allow : check.hosts_deny) = true;
  while (checks_.size() > max_processes_ && !order_.empty()) {
    const auto [pid, sequence] = order_.front();
    order_.pop_front();
    auto oldest = checks_.find(pid);
    if (oldest == checks_.end() || oldest->second.sequence != sequence) continue;  // restarted since
    checks_.erase(oldest);
    ++evicted_;
  }
  // Restarted entries leave stale places behind; keep the queue bounded too.
  if (order_.size() > 2 * max_processes_) {
    std::erase_if(order_, [this](const auto& entry) {
      auto found = checks_.find(entry.first);
      return found == checks_.end() || found->second.sequence != entry.second;
    });
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
