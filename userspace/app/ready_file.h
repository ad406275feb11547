// The --ready-file: written atomically (output/capture_file.h, replace_file())
// once everything is attached, removed at exit if it is still the file
// written. After the drop the broker does both: the collector's user may not
// write the directory.
#pragma once

#include <string>

#include "output/capture_file.h"

namespace rsttrace {

class BrokerAccess;

class ReadyFile {
 public:
  explicit ReadyFile(std::string path) : path_(std::move(path)) {}
  ~ReadyFile();
  ReadyFile(const ReadyFile&) = delete;
  ReadyFile& operator=(const ReadyFile&) = delete;
  void use(BrokerAccess* broker) { broker_ = broker; }  // it must outlive this
  void write();  // throws Error: a caller waiting for it would wait forever

 private:
  std::string path_;
  BrokerAccess* broker_ = nullptr;
  FileIdentity identity_;
  bool written_ = false;
};

}  // namespace rsttrace
