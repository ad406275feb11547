// --metrics: serves the latest MetricsSnapshot over HTTP (GET /metrics) from
// one thread of its own. The trace loop publishes; the server never touches
// the pipeline, so a slow or hostile scraper cannot stall tracing.
//
// Why hand-written (a poll() loop and a pure parser) rather than a library,
// measured on Debian 12:
// - cpp-httplib: Debian's build maps libssl, libcrypto and brotli into the
//   process, about 4 MB of RSS for a root-started daemon that needs no TLS.
// - prometheus-cpp: not packaged.
// - civetweb (libcivetweb-dev 1.15): small enough (a trivial server with 2
//   workers: 1.9 MB RSS against 1.1 MB for an empty C program; rsttrace's
//   collector idles at 11.4 MB), but one worker thread per connection. 200
//   idle connections, then 20 scrapes with a 2 s timeout, request_timeout_ms
//   5000: 0 of 20 served with 2 workers, 13 of 20 (in 15 s) with 64 workers.
//   Idle clients hold its workers, and it cannot drop the idlest.
// This server: one thread, a poll() loop over non-blocking sockets, a deadline
// for each whole exchange, at most max_connections at once, the idlest dropped
// for a newcomer. The same attack, and 200 clients trickling their heads:
// 20 of 20 served at once, collector RSS unchanged.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "fd.h"
#include "metrics/listen_address.h"

namespace rsttrace {

// The response to one request head (request line and headers, without the
// blank line), given the current page. Pure; any input gets an HTTP answer.
std::string http_response(std::string_view request_head, const std::string& metrics_page);

// Where a request head ends in the bytes received so far. Pure.
struct RequestHeadScan {
  enum class State { Incomplete, Complete, TooLarge } state = State::Incomplete;
  size_t head_length = 0;  // Complete: the head's length, without its blank line
};
RequestHeadScan scan_request_head(std::string_view received, size_t max_head);

// The 431 sent for a head longer than MetricsServer::kMaxRequestHead.
std::string_view http_head_too_large_response();

// What one client may hold; the defaults serve a Prometheus scrape with room to spare.
struct MetricsLimits {
  // Open connections at once; a newcomer at the bound closes the idlest.
  size_t max_connections = 64;
  // The whole exchange: reading the head, writing the reply, the lingering close.
  std::chrono::milliseconds exchange_deadline{5000};
  // After the reply, how long and how much is read for a clean close.
  std::chrono::milliseconds linger_time{1000};
  size_t max_linger_bytes = 64 * 1024;
};

class MetricsServer {
 public:
  // Largest request head read; longer ones get 431.
  static constexpr size_t kMaxRequestHead = 8192;

  // Binds at once (throws Error "failed to bind metrics address ...").
  explicit MetricsServer(const ListenAddress& address, MetricsLimits limits = {});
  // Serves from a thread of its own: call it after privileges are dropped,
  // since capabilities belong to each thread.
  void serve();
  // Stops the thread (it wakes at once on the eventfd) and closes every client.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Thread-safe; the caller waits for a pointer swap at most.
  void publish(std::string page);
  // The bound port (the kernel's choice when the address asked for port 0).
  uint16_t port() const { return port_; }

 private:
  void run();
  std::shared_ptr<const std::string> current_page();

  MetricsLimits limits_;
  Fd listener_;
  Fd stop_;  // eventfd: written once to end run()
  std::thread thread_;
  std::mutex mutex_;
  std::shared_ptr<const std::string> page_;
  uint16_t port_ = 0;
};

}  // namespace rsttrace
