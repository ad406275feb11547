// Ring buffer bytes -> TcpEvent. Pure: unit-tested on synthetic bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "collect/tcp_event.h"

namespace rsttrace {

struct DecodeError {
  std::string message;
};

using DecodeResult = std::variant<TcpEvent, WrapperOpen, DecodeError>;

DecodeResult decode_record(std::span<const std::byte> bytes);

}  // namespace rsttrace
