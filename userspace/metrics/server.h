// --metrics: serves the latest MetricsSnapshot over HTTP (GET /metrics) from
// one thread of its own. The trace loop publishes; the server never touches
// the pipeline, so a slow or hostile scraper cannot stall tracing.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "metrics/listen_address.h"

namespace httplib {
class Server;
}

namespace rsttrace {

class MetricsServer {
 public:
  // Binds at once (throws Error "failed to bind metrics address ...").
  explicit MetricsServer(const ListenAddress& address);
  // Serves from a thread of its own: call it after privileges are dropped,
  // since capabilities belong to each thread.
  void serve();
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void publish(std::string page);
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mutex_;
  std::string page_;
  uint16_t port_ = 0;
};

}  // namespace rsttrace
