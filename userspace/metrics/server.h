// --metrics: serves the latest MetricsSnapshot over HTTP (GET /metrics) from
// one thread of its own. The trace loop publishes; the server never touches
// the pipeline, so a slow or hostile scraper cannot stall tracing.
//
// A plain HTTP/1.1 responder (one request per connection, then close) on
// sockets: a Prometheus scrape needs no more, and a root-started daemon does
// not need a TLS and compression library mapped for it (Debian's cpp-httplib
// brought libssl, libcrypto and brotli: about 4 MB of RSS).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "metrics/listen_address.h"

namespace rsttrace {

// The response to one request head (request line and headers, without the
// blank line), given the current page. Pure.
std::string http_response(std::string_view request_head, const std::string& metrics_page);

class MetricsServer {
 public:
  // Largest request head read; longer ones get 431.
  static constexpr size_t kMaxRequestHead = 8192;

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
  void run();
  void answer(int client);
  static void linger_close(int client);

  int listener_ = -1;
  int stop_ = -1;  // eventfd: written once to end run()
  std::thread thread_;
  std::mutex mutex_;
  std::string page_;
  uint16_t port_ = 0;
};

}  // namespace rsttrace
