// --metrics: counts reports by their Prometheus labels and publishes the
// page about once a second, with events/s over that span. Without --metrics
// it counts nothing and publishes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "attribute/storm.h"
#include "cli/options.h"
#include "metrics/exposition.h"
#include "metrics/peers.h"
#include "metrics/server.h"

namespace rsttrace {

class MetricsPublisher {
 public:
  // Binds the address now (a taken port fails the start); throws Error.
  explicit MetricsPublisher(const TraceOptions& options);
  bool enabled() const { return server_ != nullptr; }
  void serve();  // starts answering scrapes

  void add(const Attribution& report) {
    if (!server_) return;
    events_.add(report);
    peers_.add(report, 1);
  }
  // class_storm: a class storm's line (its top peers and prefixes), nullptr for a peer's storm.
  void add_storm(const Attribution& verdict, uint16_t port, uint64_t count, uint64_t connections,
                 const StormReport* class_storm = nullptr) {
    if (!server_) return;
    storm_events_.add(verdict, port, count);
    if (connections) storm_connections_.add(verdict, port, connections);
    if (!connections) return;
    if (!class_storm) {
      peers_.add(verdict, connections);  // the event that started the storm: its class's peer
      return;
    }
    // A class storm: its top peers and its top prefixes (/24, /64), each with its own connections.
    Attribution peer = verdict;
    for (const StormReport::PeerShare& share : class_storm->top_peers) {
      peer.event.remote.addr = share.peer.addr;
      if (share.delta) peers_.add(peer, share.delta, false);
    }
    for (const StormReport::PeerShare& share : class_storm->top_prefixes)
      if (share.delta) peers_.add_prefix(class_peer_text(share.peer), share.delta);
  }

  // Publishes if a second has passed since the last page (or force):
  // `fill` adds the counters this publisher does not own; reports_total is
  // the reports so far, for events/s.
  void maybe_publish(uint64_t reports_total, const std::function<void(MetricsSnapshot&)>& fill, bool force = false);

 private:
  std::unique_ptr<MetricsServer> server_;
  EventCounters events_;
  EventCounters storm_events_;
  EventCounters storm_connections_;
  PeerCounters peers_;
  double start_unix_;
  bool bpf_stats_;
  uint64_t last_ns_ = 0;
  uint64_t last_reports_ = 0;
};

}  // namespace rsttrace
