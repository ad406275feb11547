// A hash index from 32-bit hashes to 32-bit values (slots in the caller's own
// table, which holds the keys): open addressing, linear probing, deletion by
// backward shift, 8-byte cells. One cache line per lookup, no nodes: the
// correlator (attribute/correlator.h) looks one connection up per event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace rsttrace {

class FlatIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;  // no value: not a storable value
  static constexpr size_t kMinCells = 1024;

  // The value stored under `hash` for which matches(value) holds, or kNone.
  template <typename Matches>
  uint32_t find(uint32_t hash, Matches&& matches) const {
    const size_t mask = cells_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Cell& cell = cells_[i];
      if (cell.value == kNone) return kNone;
      if (cell.hash == hash && matches(cell.value)) return cell.value;
    }
  }

  // `value` must not be stored yet.
  void insert(uint32_t hash, uint32_t value) {
    if (2 * (size_ + 1) > cells_.size()) grow();  // at most half full: short probes
    place(hash, value);
  }

  // `value` must be stored under `hash`.
  void erase(uint32_t hash, uint32_t value) {
    const size_t mask = cells_.size() - 1;
    size_t hole = hash & mask;
    while (cells_[hole].value != value) hole = (hole + 1) & mask;
    // Shift back the cells after it that the hole would hide from their home.
    for (size_t next = (hole + 1) & mask; cells_[next].value != kNone; next = (next + 1) & mask) {
      const size_t home = cells_[next].hash & mask;
      // Does `home` lie cyclically in (hole, next]? Then the cell may stay.
      const bool stays = hole < next ? (home > hole && home <= next) : (home > hole || home <= next);
      if (stays) continue;
      cells_[hole] = cells_[next];
      hole = next;
    }
    cells_[hole] = Cell{};
    --size_;
  }

  void clear() { reset(kMinCells); }
  size_t size() const { return size_; }
  size_t cells() const { return cells_.size(); }

 private:
  struct Cell {
    uint32_t hash = 0;
    uint32_t value = kNone;
  };

  void place(uint32_t hash, uint32_t value) {
    const size_t mask = cells_.size() - 1;
    size_t i = hash & mask;
    while (cells_[i].value != kNone) i = (i + 1) & mask;
    cells_[i] = Cell{hash, value};
    ++size_;
  }
  void grow() {
    std::vector<Cell> old = std::move(cells_);
    reset(2 * old.size());
    for (const Cell& cell : old)
      if (cell.value != kNone) place(cell.hash, cell.value);
  }
  void reset(size_t cells) {
    cells_.assign(cells, Cell{});
    size_ = 0;
  }

  std::vector<Cell> cells_ = std::vector<Cell>(kMinCells);
  size_t size_ = 0;
};

}  // namespace rsttrace
