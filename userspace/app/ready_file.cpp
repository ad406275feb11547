#include "app/ready_file.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "error.h"
#include "privsep/broker.h"

namespace rsttrace {

ReadyFile::~ReadyFile() {
  if (!written_) return;
  if (!(broker_ && broker_->remove_ready()) && !remove_ready_file(path_, identity_))
    spdlog::debug("ready file {} not removed (replaced, or not allowed)", path_);
}

void ReadyFile::write() {
  if (path_.empty()) return;
  if (broker_) {
    if (Result<void> written = broker_->write_ready(); !written)
      throw failed("write", "ready file " + path_, written.reason());
  } else {
    const Result<FileIdentity> written = write_ready_file(path_, getpid());
    if (!written) throw failed("write", "ready file " + path_, written.reason());
    identity_ = *written;
  }
  written_ = true;
}

}  // namespace rsttrace
