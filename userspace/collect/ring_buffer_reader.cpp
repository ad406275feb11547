#include "collect/ring_buffer_reader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace rsttrace {

uint64_t read_ring_records(const uint8_t* data, uint64_t mask, uint64_t consumer, uint64_t producer,
                           std::vector<std::byte>& scratch, const RecordSink& sink,
                           const std::function<void(uint64_t)>& release, uint64_t release_every) {
  const uint64_t size = mask + 1;
  uint64_t released = consumer;
  while (consumer < producer) {
    const uint64_t offset = consumer & mask;
    // The producer writes the record, then its length with release order.
    const uint32_t length_word =
        __atomic_load_n(reinterpret_cast<const uint32_t*>(data + offset), __ATOMIC_ACQUIRE);
    if (length_word & kRingRecordBusy) break;
    const uint32_t length = length_word & ~(kRingRecordBusy | kRingRecordDiscard);
    const uint64_t total = (static_cast<uint64_t>(length) + kRingHeaderSize + 7) & ~uint64_t{7};
    if (total > size || consumer + total > producer) break;  // cannot be: a corrupt ring is not read past
    if (!(length_word & kRingRecordDiscard)) {
      const uint64_t start = (offset + kRingHeaderSize) & mask;
      if (start + length <= size) {
        sink(std::span(reinterpret_cast<const std::byte*>(data + start), length));
      } else {  // wraps: the head is at the end of the area, the rest at its start
        const uint64_t head = size - start;
        scratch.resize(length);
        std::memcpy(scratch.data(), data + start, head);
        std::memcpy(scratch.data() + head, data, length - head);
        sink(std::span<const std::byte>(scratch.data(), length));
      }
    }
    consumer += total;
    if (consumer - released >= release_every) {
      release(consumer);
      released = consumer;
    }
  }
  return consumer;
}

RingBufferReader::RingBufferReader(int map_fd, uint32_t data_size, RecordSink sink)
    : sink_(std::move(sink)), page_size_(static_cast<size_t>(sysconf(_SC_PAGESIZE))), mask_(data_size - 1) {
  if (data_size == 0 || (data_size & (data_size - 1)) != 0 || data_size % page_size_ != 0)
    throw failed("map", "ring buffer", "size " + std::to_string(data_size) + " is not a power-of-two number of pages");
  void* consumer = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (consumer == MAP_FAILED) throw failed("map", "ring buffer consumer page", errno_text(errno));
  consumer_page_ = static_cast<uint8_t*>(consumer);
  // The producer page and the data, once (the kernel also offers the data a second time after it).
  producer_length_ = page_size_ + data_size;
  void* producer = mmap(nullptr, producer_length_, PROT_READ, MAP_SHARED, map_fd, static_cast<off_t>(page_size_));
  if (producer == MAP_FAILED) {
    const int err = errno;
    munmap(consumer_page_, page_size_);
    throw failed("map", "ring buffer data", errno_text(err));
  }
  producer_page_ = static_cast<uint8_t*>(producer);
}

RingBufferReader::~RingBufferReader() {
  munmap(producer_page_, producer_length_);
  munmap(consumer_page_, page_size_);
}

double RingBufferReader::consume() {
  auto* consumer_pos = reinterpret_cast<uint64_t*>(consumer_page_);
  const auto* producer_pos = reinterpret_cast<const uint64_t*>(producer_page_);
  const uint8_t* data = producer_page_ + page_size_;
  auto release = [consumer_pos](uint64_t position) { __atomic_store_n(consumer_pos, position, __ATOMIC_RELEASE); };
  double waiting = -1;
  // Until the producers stop getting ahead: records committed while we read are taken too.
  for (;;) {
    const uint64_t consumer = __atomic_load_n(consumer_pos, __ATOMIC_ACQUIRE);
    const uint64_t producer = __atomic_load_n(producer_pos, __ATOMIC_ACQUIRE);
    if (waiting < 0) waiting = consumer < producer ? static_cast<double>(producer - consumer) / (mask_ + 1) : 0;
    if (consumer >= producer) break;
    const uint64_t read = read_ring_records(data, mask_, consumer, producer, scratch_, sink_, release,
                                            (mask_ + 1) / 4);
    if (read == consumer) break;  // the next record is still being written
    release(read);
  }
  return waiting;
}

}  // namespace rsttrace
