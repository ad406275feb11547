// Splitting one fuzz input into the several texts a parser takes: parts are
// separated by NUL bytes (the seeds use them; the mutator keeps or moves them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rsttrace::fuzz {

inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && parts.size() < max_parts) parts.emplace_back();
    else parts.back() += static_cast<char>(data[i]);
  }
  parts.resize(max_parts);
  return parts;
}

}  // namespace rsttrace::fuzz
