// Loopback load for the benchmarks: as many TCP connections per second as
// the machine allows, for a fixed time, each ending the way the workload says.
//   fin  PORT SECONDS THREADS: connect to a listener (served here), which closes
//                             first; the client reads the FIN, then closes (the
//                             TIME_WAIT stays with the server's port, so client
//                             ports never run out between rounds)
//   rst  PORT SECONDS THREADS: connect to a closed port: the kernel answers RST
//   syn  PORT SECONDS THREADS: non-blocking connect, close at once: one SYN each
//                             (to a port whose SYNs a firewall drops)
// Prints one JSON line: {"mode", "connections", "seconds", "rate"}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int serve(uint16_t port) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = loopback(port);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener, 4096) != 0) {
    std::perror("loadgen: listen");
    std::exit(2);
  }
  // Blocking: it ends with the process.
  std::thread([listener] {
    for (;;) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd >= 0) close(fd);
    }
  }).detach();
  return listener;
}

uint64_t one_connection(const std::string& mode, const sockaddr_in& addr) {
  const bool syn = mode == "syn";
  const int fd = socket(AF_INET, SOCK_STREAM | (syn ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return 0;
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  if (mode == "fin" && rc == 0) {
    char byte;
    while (read(fd, &byte, 1) > 0) {
    }
  }
  const bool counted = mode == "fin" ? rc == 0 : mode == "rst" ? (rc != 0 && errno == ECONNREFUSED)
                                                               : (rc != 0 && errno == EINPROGRESS);
  close(fd);
  return counted ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s fin|rst|syn PORT SECONDS THREADS\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const uint16_t port = static_cast<uint16_t>(std::atoi(argv[2]));
  const double seconds = std::atof(argv[3]);
  const int threads = std::max(1, std::atoi(argv[4]));
  if (mode != "fin" && mode != "rst" && mode != "syn") return 2;
  if (mode == "fin") serve(port);
  const sockaddr_in addr = loopback(port);
  std::atomic<uint64_t> total{0};
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      uint64_t done = 0;
      while (std::chrono::steady_clock::now() < end)
        for (int i = 0; i < 64; ++i) done += one_connection(mode, addr);
      total += done;
    });
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"mode\": \"%s\", \"connections\": %llu, \"seconds\": %.3f, \"rate\": %.1f}\n", mode.c_str(),
              static_cast<unsigned long long>(total.load()), elapsed, total.load() / elapsed);
  return 0;
}
