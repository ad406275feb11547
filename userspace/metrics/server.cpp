#include "metrics/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>

#include "error.h"

namespace rsttrace {

MetricsServer::MetricsServer(const ListenAddress& address) : server_(std::make_unique<httplib::Server>()) {
  // One worker: scrapes are rare and cheap; the default pool would start 8 threads.
  server_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_payload_max_length(4096);
  // SO_REUSEADDR without httplib's default SO_REUSEPORT: a second rsttrace on
  // the same port must fail to bind, not silently take half the scrapes.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    std::lock_guard lock(mutex_);
    response.set_content(page_, "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("rsttrace: metrics at /metrics\n", "text/plain");
  });
  errno = 0;
  if (!server_->bind_to_port(address.host, address.port))
    throw failed("bind", "metrics address " + address.text(), errno ? errno_text(errno) : "address unavailable");
  port_ = address.port;
}

void MetricsServer::serve() {
  if (!thread_.joinable()) thread_ = std::thread([this] { server_->listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::publish(std::string page) {
  std::lock_guard lock(mutex_);
  page_ = std::move(page);
}

}  // namespace rsttrace
