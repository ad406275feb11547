// The correlator's hash index (attribute/flat_index.h) against a plain map:
// colliding hashes, probes that wrap around the end, growth and deletion by
// backward shift must find exactly what the map holds.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "attribute/flat_index.h"

using namespace rsttrace;

namespace {

bool holds(const FlatIndex& index, uint32_t hash, uint32_t value) {
  return index.find(hash, [&](uint32_t candidate) { return candidate == value; }) == value;
}

}  // namespace

TEST_CASE("flat index: insert, find, erase", "[flat_index]") {
  FlatIndex index;
  CHECK(index.cells() == FlatIndex::kMinCells);
  CHECK(index.find(7, [](uint32_t) { return true; }) == FlatIndex::kNone);
  index.insert(7, 1);
  index.insert(7, 2);  // the same hash, another value: both found
  index.insert(7 + FlatIndex::kMinCells, 3);  // the same home cell
  CHECK(index.size() == 3);
  CHECK(holds(index, 7, 1));
  CHECK(holds(index, 7, 2));
  CHECK(holds(index, 7 + FlatIndex::kMinCells, 3));
  CHECK(!holds(index, 7, 3));  // found by hash and match, not by cell
  index.erase(7, 1);
  CHECK(!holds(index, 7, 1));
  CHECK(holds(index, 7, 2));
  CHECK(holds(index, 7 + FlatIndex::kMinCells, 3));
  index.clear();
  CHECK(index.size() == 0);
  CHECK(!holds(index, 7, 2));
}

TEST_CASE("flat index: random operations agree with a map", "[flat_index]") {
  for (const uint32_t hash_range : {16u, 4096u, 1u << 30}) {
    std::mt19937 random(hash_range);
    FlatIndex index;
    std::map<uint32_t, uint32_t> model;  // value -> hash
    uint32_t next_value = 0;
    for (int step = 0; step < 60000; ++step) {
      // Probes that wrap: hashes at the end of the table too.
      const uint32_t hash = random() % 2 ? random() % hash_range : static_cast<uint32_t>(index.cells() - 1 - random() % 4);
      const bool grow = step < 30000 ? random() % 3 != 0 : random() % 3 == 0;  // fill, then drain
      if (grow || model.empty()) {
        index.insert(hash, next_value);
        model[next_value++] = hash;
      } else {
        auto victim = model.lower_bound(static_cast<uint32_t>(random() % next_value));
        if (victim == model.end()) victim = model.begin();
        index.erase(victim->second, victim->first);
        model.erase(victim);
      }
      REQUIRE(index.size() == model.size());
      REQUIRE(2 * index.size() <= index.cells());  // at most half full
      if (step % 997 == 0)
        for (const auto& [value, stored_hash] : model) REQUIRE(holds(index, stored_hash, value));
    }
    for (const auto& [value, stored_hash] : model) REQUIRE(holds(index, stored_hash, value));
    for (uint32_t gone = 0; gone < next_value; ++gone)
      if (!model.count(gone)) REQUIRE(index.find(gone % hash_range, [&](uint32_t v) { return v == gone; }) == FlatIndex::kNone);
  }
}
