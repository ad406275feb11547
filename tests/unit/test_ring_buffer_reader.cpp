// The ring buffer reader on synthetic rings laid out as the kernel writes
// them: 8-byte headers (length with busy/discard bits), records rounded to 8.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "collect/drain_pacing.h"
#include "collect/ring_buffer_reader.h"

using namespace rsttrace;

namespace {

struct SyntheticRing {
  std::vector<uint8_t> data;
  uint64_t producer = 0;
  explicit SyntheticRing(size_t size, uint64_t start = 0) : data(size, 0xee), producer(start) {}

  // Writes a record at the producer position, wrapping like the kernel's double mapping would.
  void put(const std::string& payload, uint32_t bits = 0) {
    const uint64_t mask = data.size() - 1;
    uint32_t length = static_cast<uint32_t>(payload.size()) | bits;
    uint8_t header[8] = {};
    std::memcpy(header, &length, 4);
    for (size_t i = 0; i < 8; ++i) data[(producer + i) & mask] = header[i];
    for (size_t i = 0; i < payload.size(); ++i) data[(producer + 8 + i) & mask] = static_cast<uint8_t>(payload[i]);
    producer += (payload.size() + 8 + 7) & ~size_t{7};
  }
};

std::vector<std::string> read_all(const SyntheticRing& ring, uint64_t consumer, uint64_t* end = nullptr,
                                  std::vector<uint64_t>* releases = nullptr, uint64_t release_every = 1 << 20) {
  std::vector<std::string> records;
  std::vector<std::byte> scratch;
  const uint64_t position = read_ring_records(
      ring.data.data(), ring.data.size() - 1, consumer, ring.producer, scratch,
      [&](std::span<const std::byte> r) { records.emplace_back(reinterpret_cast<const char*>(r.data()), r.size()); },
      [&](uint64_t at) {
        if (releases) releases->push_back(at);
      },
      release_every);
  if (end) *end = position;
  return records;
}

}  // namespace

TEST_CASE("ring reader: records in order, discarded ones skipped, lengths not rounded") {
  SyntheticRing ring(64);
  ring.put("abc");
  ring.put("dropped", kRingRecordDiscard);
  ring.put("0123456789");
  uint64_t end = 0;
  CHECK(read_all(ring, 0, &end) == std::vector<std::string>{"abc", "0123456789"});
  CHECK(end == ring.producer);
}

TEST_CASE("ring reader: a record being written stops the read there, and is read once committed") {
  SyntheticRing ring(64);
  ring.put("first");
  const uint64_t busy_at = ring.producer;
  ring.put("second", kRingRecordBusy);
  ring.put("third");
  uint64_t end = 0;
  CHECK(read_all(ring, 0, &end) == std::vector<std::string>{"first"});
  CHECK(end == busy_at);
  ring.data[busy_at + 3] &= 0x7f;  // committed: the busy bit (bit 31, little endian) cleared
  CHECK(read_all(ring, end, &end) == std::vector<std::string>{"second", "third"});
  CHECK(end == ring.producer);
}

TEST_CASE("ring reader: a record that wraps past the end comes out whole, positions keep growing") {
  // Positions far past the size: only position & mask addresses the data.
  SyntheticRing ring(64, (uint64_t{1} << 40) + 40);
  const uint64_t start = ring.producer;
  ring.put("wraps around the end");  // 8-byte header at 40, payload 48..67 -> 48..63 and 0..3
  ring.put("next");
  CHECK(read_all(ring, start) == std::vector<std::string>{"wraps around the end", "next"});
}

TEST_CASE("ring reader: space is handed back during a long drain, a corrupt length is not read past") {
  SyntheticRing ring(256);
  for (int i = 0; i < 12; ++i) ring.put("record" + std::to_string(i));  // 16 bytes each with the header
  std::vector<uint64_t> releases;
  uint64_t end = 0;
  CHECK(read_all(ring, 0, &end, &releases, 64).size() == 12);
  CHECK(releases == std::vector<uint64_t>{64, 128, 192});
  CHECK(end == 192);

  SyntheticRing corrupt(64);
  corrupt.put("ok");
  const uint64_t bad_at = corrupt.producer;
  corrupt.put("x");
  const uint32_t huge = 1000;
  std::memcpy(&corrupt.data[bad_at], &huge, 4);
  CHECK(read_all(corrupt, 0, &end) == std::vector<std::string>{"ok"});
  CHECK(end == bad_at);
}

TEST_CASE("the drain waits less in proportion while the ring buffer fills fast", "[ring]") {
  using rsttrace::next_drain_wait_ms;
  CHECK(next_drain_wait_ms(50, 0) == 50);        // quiet
  CHECK(next_drain_wait_ms(50, 0.125) == 50);    // at the target: an eighth full
  CHECK(next_drain_wait_ms(50, 0.25) == 25);     // twice the target: half the wait
  CHECK(next_drain_wait_ms(50, 1.0) == 6);       // full: an eighth of it
  CHECK(next_drain_wait_ms(5, 1.0) == 1);        // never 0: no busy loop
  CHECK(next_drain_wait_ms(50, -1) == 50);       // nothing read
  CHECK(next_drain_wait_ms(50, std::nan("")) == 50);
}
