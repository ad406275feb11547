// Privilege separation. Once its programs are attached, rsttrace keeps
// privileges only in a small broker process, forked before they are dropped,
// that runs the allowlisted ruleset readers and opens allowlisted files for
// the collector (descriptors passed over a socket). The collector, which parses
// untrusted kernel and network strings and may serve HTTP, then runs without
// capabilities (see drop_privileges()).
#pragma once

#include <sys/types.h>

#include "privsep/system_access.h"

namespace rsttrace {

class BrokerAccess final : public SystemAccess {
 public:
  BrokerAccess();  // forks the broker; throws Error
  ~BrokerAccess() override;
  BrokerAccess(const BrokerAccess&) = delete;
  BrokerAccess& operator=(const BrokerAccess&) = delete;

  std::optional<std::string> run(const std::vector<std::string>& argv) override;
  int open_read(const std::string& path) override;
  pid_t pid() const { return pid_; }

 private:
  bool send_request(char op, const std::vector<std::string>& strings);
  int socket_ = -1;
  pid_t pid_ = -1;
};

}  // namespace rsttrace
