// Ring buffer bytes -> TcpEvent (with its storm class), WrapperOpen or ConnectionNote, each
// record's bytes read once. Pure: unit-tested on synthetic bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "collect/tcp_event.h"
#include "error.h"
#include "rsttrace/records.h"

namespace rsttrace {

struct DecodedEvent {
  TcpEvent event;
  // The event's storm class, computed from the raw record by the function
  // the BPF side uses (rsttrace_storm_key_of()): set when storm keys were
  // asked for and the event's class may form a storm.
  std::optional<rsttrace_storm_key> storm_key;
};

using DecodedRecord = std::variant<DecodedEvent, WrapperOpen, ConnectionNote>;
// A record that does not decode is a Failure with the reason: counted, never fatal.
using DecodeResult = Result<DecodedRecord>;

// Index: a local port; true where rsttrace watches it (which side is the peer).
using WatchedPorts = std::array<bool, 65536>;

// storm_ports: the watched ports when storms are on; nullptr computes no storm key.
DecodeResult decode_record(std::span<const std::byte> bytes, const WatchedPorts* storm_ports = nullptr);

}  // namespace rsttrace
