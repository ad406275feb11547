// Reader of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF), in place of
// libbpf's ring_buffer__consume(), for two reasons measured in storms:
// - libbpf 1.1 maps the data area twice (so a record that wraps is
//   contiguous), and the kernel populates both mappings at mmap(): a 4 MiB
//   ring was 8 MiB of RSS from the start. Here it is mapped once; the rare
//   record that wraps is copied.
// - libbpf 1.1 stores the consumer position after every record, a cache line
//   the producing CPUs keep reading; here it is stored once per batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace rsttrace {

// The kernel's record header (uapi linux/bpf.h: BPF_RINGBUF_HDR_SZ, _BUSY_BIT, _DISCARD_BIT).
inline constexpr uint32_t kRingRecordBusy = 1u << 31;     // reserved, not yet committed
inline constexpr uint32_t kRingRecordDiscard = 1u << 30;  // committed as discarded: skip
inline constexpr uint32_t kRingHeaderSize = 8;

// Where each record goes: the ring buffer reader and BpfSession hand records on with it.
using RecordSink = std::function<void(std::span<const std::byte>)>;

// The pure part: reads the records committed in data[consumer, producer)
// (positions grow forever; data has size mask + 1, a power of two), stops at
// the first one still being written, and returns the position after the last
// record read. `release(position)` is called every `release_every` bytes so
// producers get space back during a long drain. A record that wraps past the
// end is copied into `scratch`.
uint64_t read_ring_records(const uint8_t* data, uint64_t mask, uint64_t consumer, uint64_t producer,
                           std::vector<std::byte>& scratch, const RecordSink& sink,
                           const std::function<void(uint64_t)>& release, uint64_t release_every);

class RingBufferReader {
 public:
  // Maps the ring buffer map `map_fd` of `data_size` bytes; throws Error.
  RingBufferReader(int map_fd, uint32_t data_size, RecordSink sink);
  ~RingBufferReader();
  RingBufferReader(const RingBufferReader&) = delete;
  RingBufferReader& operator=(const RingBufferReader&) = delete;

  // Hands every committed record to the sink; returns the share of the ring
  // (0 to 1) that was waiting when it started.
  double consume();

 private:
  RecordSink sink_;
  size_t page_size_;
  uint64_t mask_;
  uint8_t* consumer_page_ = nullptr;  // writable: consumer position at offset 0
  uint8_t* producer_page_ = nullptr;  // read-only: producer position, then the data
  size_t producer_length_ = 0;
  std::vector<std::byte> scratch_;
};

}  // namespace rsttrace
