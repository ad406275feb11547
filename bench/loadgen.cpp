// Loopback load for the benchmarks: as many TCP connections per second as
// the machine allows, for a fixed time, each ending the way the workload says.
//   fin  PORT SECONDS THREADS: connect to a listener (served here), which closes
//                             first; the client reads the FIN, then closes (the
//                             TIME_WAIT stays with the server's port, so client
//                             ports never run out between rounds)
//   rst  PORT SECONDS THREADS: connect to a closed port: the kernel answers RST
//   syn  PORT SECONDS THREADS: non-blocking connect, close at once: one SYN each
//                             (to a port whose SYNs a firewall drops)
//   rst-dist, syn-dist: the same, each connection from another source address
//                             of 127.16.0.0/12 (a distributed flood: no one peer)
//   syscalls PORT SECONDS THREADS: no connection: 1-byte read()s of /dev/zero
//                             (PORT unused), counted as "connections"
//   opens PORT SECONDS THREADS: no connection: open() and close() of /dev/null
//                             (PORT unused; fexit on do_filp_open's tax), counted
//   pingpong PORT SECONDS THREADS: one connection per thread to a listener
//                             here that echoes; 1-byte round trips, counted
// Prints one JSON line: {"mode", "connections", "seconds", "rate"}.
#include <arpa/inet.h>
#include <fcntl.h>
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

int listen_on(uint16_t port) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = loopback(port);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener, 4096) != 0) {
    std::perror("loadgen: listen");
    std::exit(2);
  }
  return listener;
}

int serve(uint16_t port) {
  const int listener = listen_on(port);
  // Blocking: it ends with the process.
  std::thread([listener] {
    for (;;) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd >= 0) close(fd);
    }
  }).detach();
  return listener;
}

// Echoes 1-byte messages on every accepted connection (pingpong).
void serve_echo(uint16_t port) {
  const int listener = listen_on(port);
  std::thread([listener] {
    for (;;) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) continue;
      std::thread([fd] {
        char byte;
        while (read(fd, &byte, 1) == 1 && write(fd, &byte, 1) == 1) {
        }
        close(fd);
      }).detach();
    }
  }).detach();
}

// The n-th source address of 127.16.0.0/12, skipping .0 and .255 host bytes.
in_addr_t distributed_source(uint64_t n) {
  const uint32_t host = static_cast<uint32_t>(n % ((1u << 20) - 2)) + 1;
  return htonl((127u << 24) | (16u << 16) | host);
}

uint64_t one_connection(const std::string& mode, const sockaddr_in& addr, uint64_t sequence) {
  const bool syn = mode == "syn" || mode == "syn-dist";
  const int fd = socket(AF_INET, SOCK_STREAM | (syn ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return 0;
  if (mode == "rst-dist" || mode == "syn-dist") {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = distributed_source(sequence);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
      close(fd);
      return 0;
    }
  }
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  if (mode == "fin" && rc == 0) {
    char byte;
    while (read(fd, &byte, 1) > 0) {
    }
  }
  const bool counted = mode == "fin" ? rc == 0 : !syn ? (rc != 0 && errno == ECONNREFUSED)
                                                    : (rc != 0 && errno == EINPROGRESS);
  close(fd);
  return counted ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s fin|rst|syn|rst-dist|syn-dist|syscalls|opens|pingpong PORT SECONDS THREADS\n",
                 argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const uint16_t port = static_cast<uint16_t>(std::atoi(argv[2]));
  const double seconds = std::atof(argv[3]);
  const int threads = std::max(1, std::atoi(argv[4]));
  if (mode != "fin" && mode != "rst" && mode != "syn" && mode != "rst-dist" && mode != "syn-dist" &&
      mode != "syscalls" && mode != "opens" && mode != "pingpong")
    return 2;
  if (mode == "fin") serve(port);
  if (mode == "pingpong") serve_echo(port);
  const sockaddr_in addr = loopback(port);
  std::atomic<uint64_t> total{0};
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      uint64_t done = 0;
      if (mode == "syscalls") {
        const int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        char byte;
        while (std::chrono::steady_clock::now() < end)
          for (int i = 0; i < 256; ++i) done += read(fd, &byte, 1) == 1;
        close(fd);
      } else if (mode == "opens") {
        while (std::chrono::steady_clock::now() < end)
          for (int i = 0; i < 64; ++i) {
            const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            done += fd >= 0 && close(fd) == 0;
          }
      } else if (mode == "pingpong") {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
          char byte = 'x';
          while (std::chrono::steady_clock::now() < end)
            for (int i = 0; i < 64; ++i) done += write(fd, &byte, 1) == 1 && read(fd, &byte, 1) == 1;
        }
        close(fd);
      } else {
        // Each thread its own stretch of source addresses (distributed modes).
        uint64_t sequence = static_cast<uint64_t>(t) << 17;
        while (std::chrono::steady_clock::now() < end)
          for (int i = 0; i < 64; ++i) done += one_connection(mode, addr, sequence++);
      }
      total += done;
    });
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"mode\": \"%s\", \"connections\": %llu, \"seconds\": %.3f, \"rate\": %.1f}\n", mode.c_str(),
              static_cast<unsigned long long>(total.load()), elapsed, total.load() / elapsed);
  return 0;
}
